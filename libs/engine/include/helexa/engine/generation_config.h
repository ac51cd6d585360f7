// Loading a snapshot's generation_config.json (sampling defaults, EOS ids). The field parsing
// itself is sampling_config.h's generation_defaults_from_json; this adds the file handling and
// the merge with config.json's EOS ids that the sampler and the stop logic need.
// Thread-safety: plain values.
#pragma once

#include <filesystem>

#include "helexa/common/result.h"
#include "helexa/engine/model_config.h"
#include "helexa/engine/sampling_config.h"

namespace helexa::engine {

// Reads <dir>/generation_config.json; a missing file gives empty defaults (every value unset).
// EOS ids from `model` (config.json) are appended when not already present, so the result's
// eos_token_ids is the full stop set. Errors: kInvalidJson / kInvalidRequest naming the file.
Result<GenerationDefaults> load_generation_config(const std::filesystem::path& dir,
                                                  const ModelConfig& model);

}  // namespace helexa::engine
