// A decoder model's config.json, parsed and validated: dimensions, RoPE (rope_parameters or the
// legacy rope_theta + rope_scaling, including Llama 3 scaling and partial rotary), tied
// embeddings, biases. Multimodal configs nest the text model under `text_config`; its fields win,
// except `tie_word_embeddings`, which HF keeps at the top level.
// Unsupported model types fail here, before any weight is read, naming the supported set.
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "helexa/common/result.h"

namespace helexa::engine {

enum class RopeType { kDefault, kLinear, kLlama3 };

struct RopeConfig {
    RopeType type = RopeType::kDefault;
    double theta = 10000.0;
    double factor = 1.0;                  // linear / llama3
    double low_freq_factor = 1.0;         // llama3
    double high_freq_factor = 4.0;        // llama3
    int64_t original_max_position_embeddings = 8192;  // llama3
    double partial_rotary_factor = 1.0;   // rotary_dim = head_dim * this
};

struct ModelConfig {
    std::string model_type;  // one of supported_model_types()
    std::vector<std::string> architectures;
    int64_t hidden_size = 0;
    int64_t intermediate_size = 0;
    int64_t num_hidden_layers = 0;
    int64_t num_attention_heads = 0;
    int64_t num_key_value_heads = 0;  // defaults to num_attention_heads
    int64_t head_dim = 0;             // defaults to hidden_size / num_attention_heads
    int64_t vocab_size = 0;
    int64_t max_position_embeddings = 2048;
    double rms_norm_eps = 1e-6;
    RopeConfig rope;
    bool tie_word_embeddings = false;
    bool attention_bias = false;  // qwen3/llama: q,k,v,o biases; qwen2 always has q,k,v bias
    bool mlp_bias = false;        // llama
    std::string torch_dtype;      // "bfloat16", ... ("dtype" in transformers 5); informational
    std::optional<int32_t> bos_token_id;
    std::vector<int32_t> eos_token_ids;  // config.json eos_token_id (int or list)

    int64_t rotary_dim() const;
};

// {"qwen3", "llama", "qwen2"}
std::span<const std::string_view> supported_model_types();

// Errors: kInvalidRequest naming the field (or, for model_type, the supported set).
Result<ModelConfig> parse_model_config(const nlohmann::json& config);
// Reads <dir>/config.json. Errors: kIo when missing/unreadable, kInvalidJson, as above.
Result<ModelConfig> load_model_config(const std::filesystem::path& dir);

// Rotary inverse frequencies [rotary_dim / 2] with the config's scaling folded in, computed in
// f32 the way transformers' rope init functions do.
std::vector<float> rope_inv_freq(const ModelConfig& config);

}  // namespace helexa::engine
