// Llama (2/3.x): GQA, no q/k norm; Llama 3 RoPE scaling is resolved in rope_inv_freq();
// attention_bias and mlp_bias switch the optional biases.
#include "architecture.h"

namespace helexa::engine::models {

const ArchTraits& llama_traits() {
    static const ArchTraits traits{.model_type = "llama",
                                   .qk_norm = false,
                                   .qkv_bias_always = false,
                                   .o_bias_follows_config = true,
                                   .mlp_bias_follows_config = true};
    return traits;
}

}  // namespace helexa::engine::models
