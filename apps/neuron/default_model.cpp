#include "default_model.h"

#include <algorithm>
#include <cctype>
#include <fstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "helexa/common/logging.h"

#include "helexa/engine/demo_model.h"

namespace helexa::apps {

namespace fs = std::filesystem;

namespace {

// Bump when the demo model's spec or files change, so old caches are regenerated.
constexpr std::string_view kRevision = "helexa-demo-1";

// Files copied from the tokenizer package when present (tokenizer.json is required).
constexpr std::string_view kTokenizerFiles[] = {
    "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "chat_template.json",
    "special_tokens_map.json"};

bool complete(const fs::path& snapshot) {
    std::error_code ec;
    return fs::exists(snapshot / "config.json", ec) &&
           fs::exists(snapshot / "tokenizer.json", ec) &&
           fs::exists(snapshot / "model.safetensors", ec);
}

// One part of "org/name": the characters HF allows in repo names, and not a path component
// that could climb out of the cache.
bool valid_repo_part(std::string_view part) {
    if (part.empty() || part == "." || part == "..") {
        return false;
    }
    return std::all_of(part.begin(), part.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
}

}  // namespace

Result<fs::path> make_default_model(const DefaultModelRequest& request) {
    const auto slash = request.model_id.find('/');
    if (slash == std::string::npos || !valid_repo_part(request.model_id.substr(0, slash)) ||
        !valid_repo_part(request.model_id.substr(slash + 1))) {
        return fail(ErrorCode::kInvalidRequest,
                    fmt::format("model id '{}' must look like org/name", request.model_id));
    }
    if (!fs::exists(request.tokenizer_from / "tokenizer.json")) {
        return fail(ErrorCode::kInvalidRequest,
                    fmt::format("{} has no tokenizer.json", request.tokenizer_from.string()));
    }
    const fs::path repo = request.hf_cache / fmt::format("models--{}--{}",
                                                         request.model_id.substr(0, slash),
                                                         request.model_id.substr(slash + 1));
    const fs::path snapshot = repo / "snapshots" / std::string(kRevision);
    if (complete(snapshot)) {
        return snapshot;
    }
    log::get("neuron")->info("writing the default model {} to {}", request.model_id,
                             snapshot.string());
    std::error_code ec;
    // Write beside the final place and rename, so an interrupted run leaves no half snapshot.
    const fs::path staging = repo / "snapshots" / fmt::format(".{}.partial", kRevision);
    fs::remove_all(staging, ec);
    fs::create_directories(staging, ec);
    if (ec) {
        return fail(ErrorCode::kIo, fmt::format("creating {}: {}", staging.string(), ec.message()));
    }
    if (auto st = engine::write_demo_model(engine::DemoModelSpec{}, staging); !st) {
        return tl::unexpected(std::move(st).error());
    }
    for (std::string_view name : kTokenizerFiles) {
        const fs::path from = request.tokenizer_from / name;
        if (!fs::exists(from)) {
            continue;
        }
        fs::copy_file(from, staging / name, fs::copy_options::overwrite_existing, ec);
        if (ec) {
            return fail(ErrorCode::kIo, fmt::format("copying {}: {}", from.string(), ec.message()));
        }
    }
    fs::remove_all(snapshot, ec);
    fs::rename(staging, snapshot, ec);
    if (ec) {
        return fail(ErrorCode::kIo,
                    fmt::format("renaming to {}: {}", snapshot.string(), ec.message()));
    }
    fs::create_directories(repo / "refs", ec);
    std::ofstream(repo / "refs" / "main", std::ios::binary | std::ios::trunc) << kRevision;
    return snapshot;
}

}  // namespace helexa::apps
