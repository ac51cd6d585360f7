// Preflight: decides, from a repo's file listing alone (hub siblings or a cached snapshot), whether
// a load can work and which files it needs — before any download or device work (features §5.2).
//
//   format   GGUF only | dense safetensors | mixed (prefer safetensors) | empty (reject)
//   GGUF + tensor_parallel > 1          -> tp_requires_safetensors
//   GGUF + quant matching no file       -> quant_not_found, suggestion = nearest quant (Levenshtein)
//   GGUF + no quant and several quants  -> quant_required, suggestion = the first quant listed
//   no weights at all                   -> empty_repo
// GGUF repos take their tokenizer from the base repo (the id with -GGUF / -gguf stripped).
// Rejections become 422 {"error":{kind, model_id, suggestion}} (wire::PreflightError).
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "helexa/common/result.h"
#include "helexa/wire/neuron_protocol.h"

namespace helexa::node {

enum class SourceFormat { kGguf, kDenseSafetensors, kMixed, kEmpty };

std::string_view to_string(SourceFormat format);

struct PlacementPlan {
    SourceFormat format = SourceFormat::kEmpty;
    bool use_gguf = false;
    std::vector<std::string> weight_files;  // the .gguf shard(s) or the .safetensors files
    std::vector<std::string> support_files;  // config / tokenizer / template files to fetch
    std::optional<std::string> quant;        // the matched GGUF quant label (as spelled)
    std::optional<std::string> tokenizer_repo;  // GGUF: base repo path ("org/name")
};

// A rejection, plus the operator-facing detail logged as `reason=<kind> detail=<msg>`.
struct PreflightRejection {
    wire::PreflightError error;
    std::string detail;
};

SourceFormat classify_repo(const std::vector<std::string>& files);

// "Qwen3-8B-Q4_K_M.gguf" -> "Q4_K_M"; "m-Q6_K_P-00001-of-00002.gguf" -> "Q6_K_P"; "" if none.
std::string gguf_quant_label(std::string_view file_name);

// Edit distance over ASCII-lower-cased, '_'/'-'/'.'-stripped forms ("q6k" vs "Q6_K_P" -> 1).
int64_t quant_distance(std::string_view a, std::string_view b);

// The base repo of a GGUF repo path: "org/Name-GGUF" -> "org/Name"; nullopt when no suffix.
std::optional<std::string> gguf_base_repo(std::string_view repo_path);

// `model_id` is the scheme-qualified id echoed in errors; `repo_path` is "org/name".
tl::expected<PlacementPlan, PreflightRejection> preflight(
    const std::vector<std::string>& files, const std::string& model_id,
    const std::string& repo_path, const std::optional<std::string>& quant, int64_t tensor_parallel);

}  // namespace helexa::node
