// Qwen3: GQA with per-head q/k RMSNorm before RoPE, optional biases (attention_bias), tied or
// untied lm_head (Qwen3-0.6B/1.7B/4B tie; larger ones do not).
#include "architecture.h"

namespace helexa::engine::models {

const ArchTraits& qwen3_traits() {
    static const ArchTraits traits{.model_type = "qwen3",
                                   .qk_norm = true,
                                   .qkv_bias_always = false,
                                   .o_bias_follows_config = true,
                                   .mlp_bias_follows_config = false};
    return traits;
}

}  // namespace helexa::engine::models
