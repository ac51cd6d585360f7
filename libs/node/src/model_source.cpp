#include "helexa/node/model_source.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace helexa::node {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxIdBytes = 256;

bool id_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

Status check_segment(std::string_view text, std::string_view what, std::string_view seg) {
    if (seg.empty()) {
        return fail(ErrorCode::kInvalidRequest,
                    fmt::format("invalid model id '{}': empty {}", text, what));
    }
    if (seg.front() == '.') {
        return fail(ErrorCode::kInvalidRequest,
                    fmt::format("invalid model id '{}': {} must not start with '.'", text, what));
    }
    for (char c : seg) {
        if (!id_char(c)) {
            return fail(ErrorCode::kInvalidRequest,
                        fmt::format("invalid model id '{}': {} may only hold letters, digits, "
                                    "'.', '_' and '-'",
                                    text, what));
        }
    }
    return ok();
}

}  // namespace

std::string ModelSourceId::to_string() const {
    return scheme.empty() ? repo_path() : scheme + ":" + repo_path();
}

Result<ModelSourceId> parse_model_source_id(std::string_view text) {
    if (text.empty()) {
        return fail(ErrorCode::kInvalidRequest, "invalid model id: empty");
    }
    if (text.size() > kMaxIdBytes) {
        return fail(ErrorCode::kInvalidRequest,
                    fmt::format("invalid model id: longer than {} bytes", kMaxIdBytes));
    }
    ModelSourceId id;
    std::string_view rest = text;
    auto colon = text.find(':');
    auto slash = text.find('/');
    if (colon != std::string_view::npos && (slash == std::string_view::npos || colon < slash)) {
        id.scheme = std::string(text.substr(0, colon));
        rest = text.substr(colon + 1);
        if (id.scheme.empty()) {
            return fail(ErrorCode::kInvalidRequest,
                        fmt::format("invalid model id '{}': empty scheme before ':'", text));
        }
        for (char c : id.scheme) {
            bool ok_char = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
            if (!ok_char) {
                return fail(ErrorCode::kInvalidRequest,
                            fmt::format("invalid model id '{}': scheme may only hold lower-case "
                                        "letters, digits, '_' and '-'",
                                        text));
            }
        }
    } else if (colon != std::string_view::npos) {
        return fail(ErrorCode::kInvalidRequest,
                    fmt::format("invalid model id '{}': ':' is only allowed after the scheme", text));
    }
    auto sep = rest.find('/');
    if (sep == std::string_view::npos) {
        return fail(ErrorCode::kInvalidRequest,
                    fmt::format("invalid model id '{}': expected org/name", text));
    }
    if (rest.find('/', sep + 1) != std::string_view::npos) {
        return fail(ErrorCode::kInvalidRequest,
                    fmt::format("invalid model id '{}': more than one '/'", text));
    }
    if (rest.find(':') != std::string_view::npos) {
        return fail(ErrorCode::kInvalidRequest,
                    fmt::format("invalid model id '{}': ':' is only allowed after the scheme", text));
    }
    id.org = std::string(rest.substr(0, sep));
    id.name = std::string(rest.substr(sep + 1));
    HELEXA_TRY_STATUS(check_segment(text, "org", id.org));
    HELEXA_TRY_STATUS(check_segment(text, "name", id.name));
    return id;
}

ModelSourceId with_default_scheme(ModelSourceId id, const std::string& default_scheme) {
    if (id.scheme.empty()) {
        id.scheme = default_scheme;
    }
    return id;
}

std::string canonical_model_id(const ModelSourceId& id, const std::string& default_scheme) {
    if (id.scheme.empty() || id.scheme == default_scheme) {
        return id.repo_path();
    }
    return id.to_string();
}

std::string repo_cache_dir(const std::string& cache_root, const ModelSourceId& id) {
    return (fs::path(cache_root) / ("models--" + id.org + "--" + id.name)).string();
}

bool safe_relative_path(std::string_view rel) {
    if (rel.empty() || rel.size() > 512 || rel.front() == '/') {
        return false;
    }
    size_t start = 0;
    while (start <= rel.size()) {
        auto end = rel.find('/', start);
        auto seg = rel.substr(start, end == std::string_view::npos ? std::string_view::npos
                                                                   : end - start);
        if (seg.empty() || seg == "." || seg == "..") {
            return false;
        }
        for (char c : seg) {
            bool ok_char = id_char(c) || c == '+' || c == '=' || c == '@' || c == ' ';
            if (!ok_char) {
                return false;
            }
        }
        if (end == std::string_view::npos) {
            break;
        }
        start = end + 1;
    }
    return true;
}

bool safe_revision(std::string_view rev) {
    if (rev.empty() || rev.size() > 128 || rev.front() == '.') {
        return false;
    }
    return std::all_of(rev.begin(), rev.end(), id_char);
}

std::optional<LocalSnapshot> find_local_snapshot(const std::string& cache_root,
                                                 const ModelSourceId& id) {
    std::error_code ec;
    fs::path repo = repo_cache_dir(cache_root, id);
    if (!fs::is_directory(repo, ec)) {
        return std::nullopt;
    }
    LocalSnapshot snap;
    std::ifstream ref(repo / "refs" / "main");
    if (ref) {
        std::getline(ref, snap.revision);
        while (!snap.revision.empty() && std::isspace(static_cast<unsigned char>(
                                             snap.revision.back()))) {
            snap.revision.pop_back();
        }
    } else {
        std::vector<std::string> revs;
        for (const auto& e : fs::directory_iterator(repo / "snapshots", ec)) {
            if (e.is_directory(ec)) {
                revs.push_back(e.path().filename().string());
            }
        }
        if (revs.size() != 1) {
            return std::nullopt;
        }
        snap.revision = revs.front();
    }
    if (!safe_revision(snap.revision)) {
        return std::nullopt;
    }
    fs::path dir = repo / "snapshots" / snap.revision;
    if (!fs::is_directory(dir, ec)) {
        return std::nullopt;
    }
    snap.dir = dir.string();
    for (auto it = fs::recursive_directory_iterator(dir, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec)) {  // follows the blobs/ symlinks of the hub layout
            auto rel = fs::relative(it->path(), dir, ec).generic_string();
            if (!ec && rel.find(".incomplete") == std::string::npos) {
                snap.files.push_back(rel);
            }
        }
    }
    std::sort(snap.files.begin(), snap.files.end());
    return snap;
}

Status write_ref_main(const std::string& cache_root, const ModelSourceId& id,
                      const std::string& revision) {
    std::error_code ec;
    fs::path refs = fs::path(repo_cache_dir(cache_root, id)) / "refs";
    fs::create_directories(refs, ec);
    if (ec) {
        return fail(ErrorCode::kIo, fmt::format("create {}: {}", refs.string(), ec.message()));
    }
    fs::path tmp = refs / "main.tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << revision;
        if (!out) {
            return fail(ErrorCode::kIo, fmt::format("write {}", tmp.string()));
        }
    }
    fs::rename(tmp, refs / "main", ec);
    if (ec) {
        return fail(ErrorCode::kIo, fmt::format("rename {}: {}", tmp.string(), ec.message()));
    }
    return ok();
}

}  // namespace helexa::node
