// libFuzzer target: arbitrary bytes as config.json; parse_model_config must return a config or
// an error, and an accepted config must give a usable RoPE table.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "helexa/engine/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto json = nlohmann::json::parse(data, data + size, nullptr, false);
    if (json.is_discarded()) {
        return 0;
    }
    auto config = helexa::engine::parse_model_config(json);
    if (config && config->head_dim < 4096) {
        auto inv = helexa::engine::rope_inv_freq(*config);
        if (static_cast<int64_t>(inv.size()) * 2 != config->rotary_dim()) {
            std::abort();
        }
    }
    return 0;
}
