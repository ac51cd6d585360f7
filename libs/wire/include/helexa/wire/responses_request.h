// OpenAI Responses request (POST /v1/responses) -> OpenAI chat completions request
// (features.md §5.17, `request_to_chat`).
//
// Use in neuron's /v1/responses handler before rendering the prompt; the chat request then goes
// through the same path as /v1/chat/completions.
//
// Mapping:
//   * `instructions` -> a leading system message; `developer`/`system` input messages merge into
//     it (templates want one system message, first);
//   * input: a string -> one user message; or items:
//       - message {role, content: string | parts}: input_text/output_text/text -> text,
//         input_image {image_url} -> image_url part; text-only parts collapse to a string;
//         mixed text+image stays a content array;
//       - function_call {call_id, name, arguments} -> assistant tool_calls (consecutive calls,
//         and calls right after an assistant message, join that assistant turn); arguments are
//         parsed to an object when they are a JSON object string (templates iterate them);
//       - function_call_output {call_id, output} -> {role:"tool", tool_call_id, content};
//       - reasoning -> dropped;
//       - anything else (item_reference, built-in tool calls) -> kInvalidRequest;
//   * tools {type:"function", name, description, parameters, strict} -> chat function tools;
//     other tool types (web_search, file_search, ...) -> kInvalidRequest, never silently dropped;
//   * tool_choice "auto"/"none"/"required" as is, {type:"function",name} -> chat form;
//   * max_output_tokens -> max_tokens; temperature, top_p, top_k, parallel_tool_calls, user,
//     stream copied; text.format json_schema/json_object -> response_format;
//   * `previous_response_id` -> kChainedConversationUnsupported (we keep no response state).
//
// Thread-safety: pure function.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "helexa/common/result.h"

namespace helexa::wire {

struct ResponsesChatRequest {
    nlohmann::json body;  // the chat completions request
    std::string model;
    bool stream = false;
    std::optional<int64_t> max_output_tokens;
};

Result<ResponsesChatRequest> responses_to_chat(const nlohmann::json& request);

}  // namespace helexa::wire
