// Deterministic random-weight models in HF layout (config.json, model.safetensors,
// generation_config.json) for tests, benchmarks and `make run`'s embedded default model.
// The same spec and seed always produce byte-identical files. Weights are uniform with the
// given standard deviation (so activations stay O(1) through many layers); norm weights are
// 1 +- norm_jitter so a mis-applied norm weight changes the output.
// Thread-safety: free functions; concurrent calls must target different directories.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "helexa/common/result.h"
#include "helexa/engine/backend.h"
#include "helexa/engine/model_config.h"

namespace helexa::engine {

struct RandomModelSpec {
    std::string model_type = "qwen3";  // qwen3 | llama | qwen2
    int64_t hidden_size = 64;
    int64_t intermediate_size = 128;
    int64_t num_hidden_layers = 2;
    int64_t num_attention_heads = 4;
    int64_t num_key_value_heads = 2;
    int64_t head_dim = 16;
    int64_t vocab_size = 512;
    int64_t max_position_embeddings = 4096;
    double rope_theta = 1000000.0;
    double rms_norm_eps = 1e-6;
    bool tie_word_embeddings = true;
    bool attention_bias = false;  // qwen2 always writes q/k/v biases
    std::optional<RopeConfig> rope_scaling;  // e.g. llama3 scaling
    DType dtype = DType::kBF16;   // F32, F16 or BF16
    uint64_t seed = 0;
    float init_std = 0.02f;
    float norm_jitter = 0.1f;
    std::optional<int32_t> bos_token_id;
    std::vector<int32_t> eos_token_ids;
    bool write_generation_config = true;
};

// The config.json a spec produces (so callers can add fields before writing).
nlohmann::json random_model_config_json(const RandomModelSpec& spec);

// Called once per tensor, in file order, with its freshly drawn f32 values (row-major, `shape`
// as written) before they are converted to spec.dtype, so a caller can give selected tensors a
// structure (the demo model shapes its embeddings and lm_head this way). Must be deterministic
// for the output to stay byte-identical.
using TensorShaper = std::function<void(const std::string& name,
                                        const std::vector<int64_t>& shape,
                                        std::span<float> values)>;

// Creates `dir` if needed and writes the model there. Errors: kIo, kInvalidRequest for an
// unsupported model_type or inconsistent dimensions.
// A tiny char-level tokenizer.json (+ tokenizer_config.json) covering every id of a `vocab`-row
// model: printable ASCII, then filler tokens, "<|im_end|>" last (the eos). For tests that load a
// model again and again: the real 151k-token Qwen3 tokenizer costs seconds per load under the
// sanitizers.
void write_tiny_tokenizer(const std::filesystem::path& dir, int32_t vocab);

Status write_random_model(const RandomModelSpec& spec, const std::filesystem::path& dir);
// The same, with every tensor passed through `shaper` (may be empty) before conversion.
Status write_random_model(const RandomModelSpec& spec, const std::filesystem::path& dir,
                          const TensorShaper& shaper);

// Parameter count of the model the spec describes.
int64_t random_model_parameter_count(const RandomModelSpec& spec);

}  // namespace helexa::engine
