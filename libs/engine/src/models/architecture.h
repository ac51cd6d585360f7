// Internal: what distinguishes the dense decoder architectures (qwen3.cpp, llama.cpp, qwen2.cpp)
// from one another; dense_decoder.cpp is written once against the backend over these traits.
#pragma once

#include <string_view>

#include "helexa/engine/model_config.h"

namespace helexa::engine::models {

struct ArchTraits {
    std::string_view model_type;
    bool qk_norm = false;         // per-head RMSNorm on q and k before RoPE (Qwen3)
    bool qkv_bias_always = false; // q/k/v biases regardless of attention_bias (Qwen2)
    bool o_bias_follows_config = true;  // o_proj bias when attention_bias (not Qwen2)
    bool mlp_bias_follows_config = false;  // gate/up/down biases when mlp_bias (Llama)
};

const ArchTraits& qwen3_traits();
const ArchTraits& llama_traits();
const ArchTraits& qwen2_traits();

// nullptr when model_type is not a dense decoder we implement.
const ArchTraits* find_arch_traits(std::string_view model_type);

}  // namespace helexa::engine::models
