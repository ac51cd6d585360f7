// Pieces of an OpenAI chat-completions request body that more than one client API translates
// into (Anthropic Messages in anthropic_request.cpp, OpenAI Responses in responses_request.cpp).
// They live here so that a field both APIs share is read, checked and written one way: the same
// error text for the same mistake, the same chat JSON for the same meaning. What differs per API
// (its tools and tool_choice shapes, its sampling fields) stays in its translator and comes in
// as a parameter.
// Internal to helexa_wire. Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

#include "helexa/common/result.h"

namespace helexa::wire::detail {

using nlohmann::json;

// "base[index]": the field path of an array element, as error messages and `param` name it.
std::string field_at(const std::string& base, size_t index);

// Appends `text` to `out` after a blank line (none before the first); empty text adds nothing.
// Every merged system prompt and flattened block list is joined this way.
void append_text(std::string& out, const std::string& text);

// Reads the required non-empty string `model` into body.model and `model`.
Status copy_model(const json& request, json& body, std::string& model);

// The chat `messages` array: one leading system message when `system` is non-empty (chat
// templates accept a system message only first), then `turns` in order.
json chat_messages(const std::string& system, json turns);

// {id, type:"function", function:{name, arguments}}: one entry of an assistant's tool_calls.
// `arguments` is normally an object, because chat templates iterate it as a dict.
json tool_call(const std::string& id, const std::string& name, json arguments);

// {role:"tool", tool_call_id, content}: a tool's answer to one tool call.
json tool_message(const std::string& tool_call_id, const std::string& content);

// {type:"function", function}: one entry of body.tools.
json function_tool(json function);

// {type:"object", properties:{}}: the parameters of a tool that declares none.
json empty_parameters();

// {type:"function", function:{name}}: a tool_choice that forces one named tool.
json named_tool_choice(const std::string& name);

// Copies the optional number `key` (temperature, top_p) to body[key] as sent.
Status copy_number(const json& request, const char* key, json& body);

// Copies the optional integer `key` (top_k; 40.0 counts as 40) to body[key] as an integer.
Status copy_integer(const json& request, const char* key, json& body);

// The client API's own translators: one entry of `tools` (an object; `field` is its path, e.g.
// "tools[2]") appended to the chat `tools` array, or skipped; and `tool_choice`, written into
// the body.
using ToolTranslator = Status (*)(const json& tool, const std::string& field, json& tools);
using ToolChoiceTranslator = Status (*)(const json& choice, json& body);

// Translates the optional `tools` (an array of objects) and `tool_choice`, in that order.
// body.tools is set only when at least one tool survives (a translator may skip tools nobody
// downstream can execute).
Status translate_tool_fields(const json& request, json& body, ToolTranslator translate_tool,
                             ToolChoiceTranslator translate_tool_choice);

// Reads the optional boolean `stream` (false when absent) into body.stream and `stream`. When
// streaming, asks for stream_options.include_usage so the last chunk carries the usage.
Status copy_stream(const json& request, json& body, bool& stream);

}  // namespace helexa::wire::detail
