// libFuzzer target: the edge estimates, the request summary, the route body rewrite and the
// loopback rewrite accept any client bytes without crashing; the SAX summary agrees with the DOM.
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
    // The SAX summary agrees with the DOM on validity and on every field it reports, and the
    // "cannot exceed the context" shortcut never skips a check that would fail.
    auto summary = helexa::gateway::summarize_request(text);
    if (summary.has_value() == body.is_discarded()) {
        std::abort();
    }
    if (summary) {
        if (summary->is_object != body.is_object()) {
            std::abort();
        }
        if (body.is_object()) {
            auto m = body.find("model");
            const bool string_model = m != body.end() && m->is_string();
            if (string_model != summary->model.has_value() ||
                (string_model && m->get_ref<const std::string&>() != *summary->model)) {
                std::abort();
            }
            if (body.contains("tools") != summary->has_tools) {
                std::abort();
            }
        }
        if (helexa::gateway::max_output_tokens(*summary, 7) !=
            helexa::gateway::max_output_tokens(body, 7)) {
            std::abort();
        }
        for (int64_t context : {1, 10, 100, 1000}) {
            const helexa::gateway::ModelLimit limit{context, std::nullopt, std::nullopt};
            if (!helexa::gateway::may_exceed_context(size, limit) &&
                !helexa::gateway::check_context(body, limit)) {
                std::abort();
            }
        }
    }
    (void)helexa::gateway::rewrite_model_in_body(text, "m");
    (void)helexa::gateway::rewrite_loopback_endpoint(text, "http://host:1");
    (void)helexa::gateway::advice_for_user_agent(text);
    return 0;
}
