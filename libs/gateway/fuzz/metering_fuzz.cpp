// libFuzzer target: the edge estimates, the route body rewrite and the loopback rewrite accept
// any client bytes without crashing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "helexa/gateway/fleet.h"
#include "helexa/gateway/metering.h"
#include "helexa/gateway/router.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto body = nlohmann::json::parse(text, nullptr, false);
    if (!body.is_discarded()) {
        if (helexa::gateway::estimate_prompt_tokens(body) < 0) {
            std::abort();
        }
        if (helexa::gateway::reservation_estimate(body, size, std::nullopt) < 0) {
            std::abort();
        }
        (void)helexa::gateway::check_context(body, helexa::gateway::ModelLimit{100, 50, 10});
    }
    (void)helexa::gateway::rewrite_model_in_body(text, "m");
    (void)helexa::gateway::rewrite_loopback_endpoint(text, "http://host:1");
    (void)helexa::gateway::advice_for_user_agent(text);
    return 0;
}
