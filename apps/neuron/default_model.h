// `neuron make-default-model`: writes the embedded default model (engine/demo_model.h: a
// Qwen3-architecture model with generated weights) plus a real tokenizer and chat template into
// a HuggingFace cache (`<hf_cache>/models--org--name/{refs/main,snapshots/<rev>/}`), the layout
// neuron resolves every model from. Idempotent: an existing complete snapshot is kept.
// Thread-safety: plain function; one writer per cache directory.
#pragma once

#include <filesystem>
#include <string>

#include "helexa/common/result.h"

namespace helexa::apps {

struct DefaultModelRequest {
    std::filesystem::path hf_cache;        // cache root (what neuron.toml's hf_cache names)
    std::string model_id;                  // "org/name"
    std::filesystem::path tokenizer_from;  // holds tokenizer.json (+ tokenizer_config.json)
};

// Returns the snapshot directory. Errors: kInvalidRequest (bad id, no tokenizer.json), kIo.
Result<std::filesystem::path> make_default_model(const DefaultModelRequest& request);

}  // namespace helexa::apps
