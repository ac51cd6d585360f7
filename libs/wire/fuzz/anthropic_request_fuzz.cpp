// Fuzz target: arbitrary bytes -> JSON -> every wire translator must return a value or an Error,
// never crash, hang or trip a sanitizer. The same parsed value goes through the Anthropic request
// translator (the headline target), the count_tokens estimate and /tokenize builder, the
// Responses translator, the neuron protocol readers, the streaming translator (as a chunk) and
// the usage tail scanner (as raw bytes). Also linked into wire_tests (fuzz_replay_test.cpp).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "helexa/wire/anthropic_request.h"
#include "helexa/wire/anthropic_response.h"
#include "helexa/wire/anthropic_stream.h"
#include "helexa/wire/count_tokens.h"
#include "helexa/wire/neuron_protocol.h"
#include "helexa/wire/responses_request.h"
#include "helexa/wire/usage_scan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    (void)helexa::wire::scan_usage(text);

    nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) {
        return 0;
    }
    if (auto translated = helexa::wire::anthropic_to_openai(value); translated) {
        (void)translated->body.dump();
    }
    (void)helexa::wire::estimate_anthropic_tokens(value);
    (void)helexa::wire::estimate_openai_chat_tokens(value);
    (void)helexa::wire::anthropic_to_tokenize_request(value, "m");
    (void)helexa::wire::responses_to_chat(value);
    (void)helexa::wire::openai_to_anthropic(value, {"m", "", true, {"x"}});
    (void)helexa::wire::parse_discovery(value);
    (void)helexa::wire::parse_health(value);
    (void)helexa::wire::parse_model_list(value);
    (void)helexa::wire::parse_model_spec(value);
    (void)helexa::wire::parse_tokenize_request(value);
    (void)helexa::wire::parse_preflight_error(value);

    helexa::wire::AnthropicStreamTranslator stream({"m", "", true, 0, {}});
    for (int i = 0; i < 3; ++i) {
        for (const auto& event : stream.feed(value)) {
            (void)helexa::wire::format_sse(event);
        }
    }
    (void)stream.finish();
    return 0;
}
