// Fuzz entry point for everything neuron parses from outside: chat / completion / responses
// request bodies (-> SamplingParams, render input), /models/load bodies (ModelSpec, also the
// restart hand-over's entries), model ids, hub repo listings and the preflight over the listed
// names. Every input must give a value or a clean Error, never a crash
// or an exception. Also linked into node_tests, which replays seeds and mutations through it.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "helexa/node/chat_request.h"
#include "helexa/node/hub_client.h"
#include "helexa/node/model_source.h"
#include "helexa/node/preflight.h"
#include "helexa/wire/neuron_protocol.h"
#include "helexa/wire/responses_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace helexa::node;
    std::string text(reinterpret_cast<const char*>(data), size);

    (void)parse_model_source_id(text);
    (void)safe_relative_path(text);

    auto body = nlohmann::json::parse(text, nullptr, false);
    if (!body.is_discarded()) {
        (void)parse_chat_request(body, size % 2 == 0);
        (void)parse_completion_request(body);
        (void)helexa::wire::parse_model_spec(body);
        if (body.is_array()) {
            for (const auto& item : body) {
                (void)helexa::wire::parse_model_spec(item);
            }
        }
        if (auto chat = helexa::wire::responses_to_chat(body)) {
            (void)parse_chat_request(chat->body, false);
        }
    }
    if (auto info = parse_repo_info(text)) {
        (void)preflight(info->file_names(), "fuzz:org/name", "org/name", std::string("Q4_K_M"),
                        static_cast<int64_t>(size % 3));
        (void)preflight(info->file_names(), "fuzz:org/name", "org/name", std::nullopt, 1);
    }
    return 0;
}
