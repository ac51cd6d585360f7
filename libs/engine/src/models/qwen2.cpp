// Qwen2 / Qwen2.5: GQA with q/k/v biases always present (o_proj has none), no q/k norm.
#include "architecture.h"

namespace helexa::engine::models {

const ArchTraits& qwen2_traits() {
    static const ArchTraits traits{.model_type = "qwen2",
                                   .qk_norm = false,
                                   .qkv_bias_always = true,
                                   .o_bias_follows_config = false,
                                   .mlp_bias_follows_config = false};
    return traits;
}

const ArchTraits* find_arch_traits(std::string_view model_type) {
    for (const ArchTraits* t : {&qwen3_traits(), &llama_traits(), &qwen2_traits()}) {
        if (t->model_type == model_type) {
            return t;
        }
    }
    return nullptr;
}

}  // namespace helexa::engine::models
