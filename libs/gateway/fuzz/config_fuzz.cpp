// libFuzzer target: cortex.toml and models.toml parsing never crash on arbitrary bytes, and a
// successful parse upholds the documented invariants.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "helexa/gateway/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    if (auto cfg = helexa::gateway::parse_cortex_config(text, "fuzz.toml")) {
        if (cfg->gateway.poll_interval_secs < 1) {
            std::abort();
        }
        for (const auto& key : cfg->entitlements.keys) {
            if (key.key.empty() || key.account_id.empty() || key.key_id.empty()) {
                std::abort();
            }
        }
    }
    if (auto cat = helexa::gateway::parse_catalogue(text, "fuzz.toml")) {
        for (const auto& m : cat->models) {
            if (m.id.empty()) {
                std::abort();
            }
            (void)m.is_feasible_on("n", {});
        }
    }
    return 0;
}
