#include "helexa/node/preflight.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

namespace helexa::node {

namespace {

bool ends_with_ci(std::string_view s, std::string_view suffix) {
    if (s.size() < suffix.size()) {
        return false;
    }
    auto tail = s.substr(s.size() - suffix.size());
    return std::equal(tail.begin(), tail.end(), suffix.begin(), [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) ==
               std::tolower(static_cast<unsigned char>(b));
    });
}

std::string_view base_name(std::string_view path) {
    auto slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool is_gguf(std::string_view f) { return ends_with_ci(f, ".gguf"); }
bool is_safetensors(std::string_view f) { return ends_with_ci(f, ".safetensors"); }

std::string normalise(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '_' || c == '-' || c == '.') {
            continue;
        }
        out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    return out;
}

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Files a load needs beside the weights: configs, tokenizer, chat template, processor configs.
bool is_support_file(std::string_view f) {
    auto name = base_name(f);
    return ends_with_ci(name, ".json") || ends_with_ci(name, ".jinja") ||
           ends_with_ci(name, ".model") || name == "merges.txt" || name == "vocab.txt";
}

PreflightRejection reject(std::string kind, const std::string& model_id,
                          std::optional<std::string> suggestion, std::string detail) {
    return PreflightRejection{{std::move(kind), model_id, std::move(suggestion)},
                              std::move(detail)};
}

}  // namespace

std::string_view to_string(SourceFormat format) {
    switch (format) {
        case SourceFormat::kGguf:
            return "gguf";
        case SourceFormat::kDenseSafetensors:
            return "dense_safetensors";
        case SourceFormat::kMixed:
            return "mixed";
        case SourceFormat::kEmpty:
            return "empty";
    }
    return "empty";
}

SourceFormat classify_repo(const std::vector<std::string>& files) {
    bool gguf = std::any_of(files.begin(), files.end(), [](const auto& f) { return is_gguf(f); });
    bool st = std::any_of(files.begin(), files.end(),
                          [](const auto& f) { return is_safetensors(f); });
    if (gguf && st) {
        return SourceFormat::kMixed;
    }
    if (gguf) {
        return SourceFormat::kGguf;
    }
    return st ? SourceFormat::kDenseSafetensors : SourceFormat::kEmpty;
}

std::string gguf_quant_label(std::string_view file_name) {
    auto name = base_name(file_name);
    if (!is_gguf(name)) {
        return "";
    }
    name.remove_suffix(5);
    // Split files: "<stem>-00001-of-00003".
    auto of = name.rfind("-of-");
    if (of != std::string_view::npos && all_digits(name.substr(of + 4))) {
        auto dash = name.rfind('-', of - 1);
        if (dash != std::string_view::npos && all_digits(name.substr(dash + 1, of - dash - 1))) {
            name = name.substr(0, dash);
        }
    }
    auto cut = name.find_last_of("-.");
    auto label = cut == std::string_view::npos ? name : name.substr(cut + 1);
    // Labels like "Q4_K_M", "IQ3_XS", "BF16", "F16", "Q8_0": a letter then a digit somewhere.
    bool has_digit = std::any_of(label.begin(), label.end(), [](char c) { return c >= '0' && c <= '9'; });
    return has_digit ? std::string(label) : std::string();
}

int64_t quant_distance(std::string_view a, std::string_view b) {
    auto x = normalise(a);
    auto y = normalise(b);
    std::vector<int64_t> prev(y.size() + 1);
    std::vector<int64_t> cur(y.size() + 1);
    for (size_t j = 0; j <= y.size(); ++j) {
        prev[j] = static_cast<int64_t>(j);
    }
    for (size_t i = 1; i <= x.size(); ++i) {
        cur[0] = static_cast<int64_t>(i);
        for (size_t j = 1; j <= y.size(); ++j) {
            int64_t sub = prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1);
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
        }
        std::swap(prev, cur);
    }
    return prev[y.size()];
}

std::optional<std::string> gguf_base_repo(std::string_view repo_path) {
    for (std::string_view suffix : {"-GGUF", "-gguf"}) {
        if (repo_path.size() > suffix.size() &&
            repo_path.substr(repo_path.size() - suffix.size()) == suffix) {
            return std::string(repo_path.substr(0, repo_path.size() - suffix.size()));
        }
    }
    return std::nullopt;
}

tl::expected<PlacementPlan, PreflightRejection> preflight(
    const std::vector<std::string>& files, const std::string& model_id,
    const std::string& repo_path, const std::optional<std::string>& quant,
    int64_t tensor_parallel) {
    PlacementPlan plan;
    plan.format = classify_repo(files);
    for (const auto& f : files) {
        if (is_support_file(f)) {
            plan.support_files.push_back(f);
        }
    }
    switch (plan.format) {
        case SourceFormat::kEmpty:
            return tl::unexpected(reject("empty_repo", model_id, std::nullopt,
                                         fmt::format("repo lists {} file(s) and no .safetensors "
                                                     "or .gguf weights",
                                                     files.size())));
        case SourceFormat::kDenseSafetensors:
        case SourceFormat::kMixed:
            // Mixed repos prefer safetensors: they serve every placement, TP included.
            for (const auto& f : files) {
                if (is_safetensors(f)) {
                    plan.weight_files.push_back(f);
                }
            }
            return plan;
        case SourceFormat::kGguf:
            break;
    }
    plan.use_gguf = true;
    std::map<std::string, std::vector<std::string>> by_quant;  // label -> shard files
    std::vector<std::string> order;
    size_t n_gguf = 0;
    for (const auto& f : files) {
        if (!is_gguf(f)) {
            continue;
        }
        ++n_gguf;
        auto label = gguf_quant_label(f);
        if (!by_quant.contains(label)) {
            order.push_back(label);
        }
        by_quant[label].push_back(f);
    }
    if (tensor_parallel > 1) {
        return tl::unexpected(reject(
            "tp_requires_safetensors", model_id, std::nullopt,
            fmt::format("repo is GGUF-only ({} .gguf files); tensor_parallel={} requires dense "
                        "safetensors weights",
                        n_gguf, tensor_parallel)));
    }
    std::string chosen;
    if (quant && !quant->empty()) {
        for (const auto& label : order) {
            if (!label.empty() && normalise(label) == normalise(*quant)) {
                chosen = label;
                break;
            }
        }
        if (chosen.empty()) {
            std::optional<std::string> best;
            int64_t best_d = 0;
            for (const auto& label : order) {
                if (label.empty()) {
                    continue;
                }
                auto d = quant_distance(*quant, label);
                if (!best || d < best_d) {
                    best = label;
                    best_d = d;
                }
            }
            return tl::unexpected(reject(
                "quant_not_found", model_id, best,
                fmt::format("no GGUF file matches quant '{}'{}", *quant,
                            best ? fmt::format(" (nearest: {})", *best) : std::string())));
        }
    } else if (order.size() == 1) {
        chosen = order.front();
    } else {
        return tl::unexpected(reject(
            "quant_required", model_id, order.front().empty() ? std::nullopt
                                                              : std::optional(order.front()),
            fmt::format("repo holds {} GGUF quants; set `quant` to pick one", order.size())));
    }
    plan.weight_files = by_quant[chosen];
    std::sort(plan.weight_files.begin(), plan.weight_files.end());
    if (!chosen.empty()) {
        plan.quant = chosen;
    }
    plan.tokenizer_repo = gguf_base_repo(repo_path);
    return plan;
}

}  // namespace helexa::node
