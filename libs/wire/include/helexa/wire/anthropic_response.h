// OpenAI chat completion (non-streaming) -> Anthropic Messages response, plus the shared
// finish_reason -> stop_reason mapping and usage conversion used by the stream translator.
//
// Use in cortex's /v1/messages handler after a non-streaming upstream answer.
//
// Decisions (features.md §3.10, D11):
//   * stop -> end_turn, length -> max_tokens, tool_calls/function_call -> tool_use,
//     content_filter and anything unknown or missing -> end_turn; a `stop` whose upstream
//     `stop_reason` names one of the request's stop_sequences -> stop_sequence (with the string);
//     when tool_use blocks were produced but the upstream said stop, stop_reason is tool_use so
//     agents (Claude Code) run the tool.
//   * reasoning (`reasoning_content`, or `reasoning`) becomes a leading `thinking` block with a
//     `signature` when show_thinking is set, and is dropped otherwise.
//   * tool_call arguments: a JSON string is parsed; an object is used as is; anything that does
//     not yield an object becomes `{}` and is counted in `malformed_tool_arguments` (with the raw
//     text kept in `malformed_raw`) so the caller can log it: Anthropic's `input` must be an
//     object, and an empty input makes the client's schema validation tell the model what went
//     wrong instead of running the tool with garbage.
//   * usage: input_tokens = prompt_tokens - cached, cache_read_input_tokens = cached
//     (prompt_tokens_details.cached_tokens), output_tokens = completion_tokens.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "helexa/common/result.h"

namespace helexa::wire {

// The opaque signature helexa puts on thinking blocks. Clients echo it back in history; the
// request translator ignores it.
inline constexpr std::string_view kThinkingSignature = "helexa-unsigned-thinking";

struct AnthropicResponseOptions {
    std::string model;          // echoed as `model` (the name the client asked for)
    std::string message_id;     // "msg_..."; derived from the upstream id when empty
    bool show_thinking = false;
    std::vector<std::string> stop_sequences;  // the request's, for stop_sequence reporting
};

struct AnthropicResponse {
    nlohmann::json body;
    int64_t malformed_tool_arguments = 0;
    std::vector<std::string> malformed_raw;
};

// Anthropic stop_reason for an OpenAI finish_reason (nullopt/unknown -> "end_turn").
std::string map_stop_reason(const std::optional<std::string>& finish_reason);

// "msg_" + the upstream id's alphanumeric tail (or "msg_helexa" when there is none).
std::string message_id_from_upstream(std::string_view upstream_id);

// Anthropic usage object from an OpenAI usage object (missing fields count as 0).
nlohmann::json anthropic_usage(const nlohmann::json& openai_usage);

// Parses tool-call arguments into an object; nullopt when they are not a JSON object (or a JSON
// string holding one).
std::optional<nlohmann::json> parse_tool_arguments(const nlohmann::json& arguments);

// Translates a parsed OpenAI chat completion. kUpstream when it has no choices[0].message.
Result<AnthropicResponse> openai_to_anthropic(const nlohmann::json& completion,
                                              const AnthropicResponseOptions& options);

}  // namespace helexa::wire
