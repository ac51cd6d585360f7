// Anthropic Messages request (POST /v1/messages) -> OpenAI chat completions request.
//
// Use in cortex's /v1/messages handler: translate the parsed body, route on `model`, forward
// `body` to a neuron's /v1/chat/completions (with `x-include-thinking: true` when
// `show_thinking`), then translate the answer back with anthropic_response.h or
// anthropic_stream.h.
//
// Mapping (features.md §3.10):
//   * top-level `system` (string or text blocks) and every `role:"system"` turn merge into ONE
//     leading system message (blocks flattened to text, joined by a blank line);
//   * tools {name,description,input_schema} -> {type:"function",function:{name,description,
//     parameters}}; Anthropic server tools (a `type` other than "custom") are skipped because
//     nobody downstream can execute them;
//   * tool_choice auto->"auto", any->"required", none->"none", tool->{type:function,function:
//     {name}}; disable_parallel_tool_use -> parallel_tool_calls:false;
//   * assistant tool_use blocks -> tool_calls whose function.arguments is the input OBJECT (chat
//     templates iterate it as a dict); thinking blocks -> reasoning_content; redacted_thinking
//     dropped;
//   * user tool_result blocks -> `role:"tool"` messages (tool_call_id = tool_use_id), emitted in
//     order before the rest of that user turn; their block content is flattened to text;
//   * image blocks -> image_url parts (base64 source -> data URI, url source -> the URL);
//   * max_tokens, stop_sequences->stop, temperature, top_p, top_k, metadata.user_id->user;
//   * thinking {type:"enabled"|"adaptive"} -> show_thinking and
//     chat_template_kwargs.enable_thinking=true;
//   * stream copied; when streaming, stream_options.include_usage=true so usage arrives;
//   * unknown fields (context_management, cache_control, service_tier, ...) are ignored.
// Wrong types give kInvalidRequest naming the field (`param` set to the field path).
//
// Thread-safety: pure function.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "helexa/common/result.h"

namespace helexa::wire {

struct AnthropicChatRequest {
    nlohmann::json body;       // the OpenAI chat completions request to forward
    std::string model;         // the model name the client asked for (e.g. "claude-sonnet-4-5")
    bool stream = false;
    // The client enabled extended thinking: reasoning must be requested from the upstream and
    // returned as `thinking` blocks.
    bool show_thinking = false;
    std::optional<int64_t> thinking_budget_tokens;
    std::optional<int64_t> max_tokens;
    std::vector<std::string> stop_sequences;  // to report which one matched, when known
};

// Translates a parsed Anthropic request body. Never throws.
Result<AnthropicChatRequest> anthropic_to_openai(const nlohmann::json& request);

}  // namespace helexa::wire
