// Responses API -> chat translation. See the header for the mapping.
#include "helexa/wire/responses_request.h"

#include <utility>

#include "internal/chat_body.h"
#include "internal/json_util.h"

namespace helexa::wire {
namespace {

using detail::append_text;
using detail::field_at;
using detail::invalid_field;
using detail::member;
using nlohmann::json;

// Message content (string or parts) -> chat content (string when text-only, else parts).
Result<json> translate_content(const json& content, const std::string& field) {
    if (content.is_string()) {
        return content;
    }
    if (!content.is_array()) {
        return tl::unexpected(invalid_field(field, "expected a string or an array of parts"));
    }
    json parts = json::array();
    bool has_image = false;
    for (size_t i = 0; i < content.size(); ++i) {
        const json& part = content[i];
        std::string part_field = field_at(field, i);
        if (!part.is_object()) {
            return tl::unexpected(invalid_field(part_field, "expected an object"));
        }
        auto type = detail::string_member(part, "type").value_or("");
        if (type == "input_text" || type == "output_text" || type == "text") {
            std::string text;
            HELEXA_TRY_STATUS(detail::read_string(part, "text", part_field, text));
            parts.push_back({{"type", "text"}, {"text", text}});
        } else if (type == "input_image") {
            std::optional<std::string> url = detail::string_member(part, "image_url");
            if (!url) {
                // Chat-style nesting {image_url:{url}} is accepted too.
                if (const json* nested = member(part, "image_url"); nested != nullptr) {
                    url = detail::string_member(*nested, "url");
                }
            }
            if (!url) {
                return tl::unexpected(invalid_field(
                    part_field + ".image_url", "expected a URL or data URI string (file_id "
                                               "references are not supported)"));
            }
            json image_url = {{"url", *url}};
            if (auto detail_level = detail::string_member(part, "detail"); detail_level) {
                image_url["detail"] = *detail_level;
            }
            parts.push_back({{"type", "image_url"}, {"image_url", std::move(image_url)}});
            has_image = true;
        } else if (type == "refusal") {
            if (auto refusal = detail::string_member(part, "refusal"); refusal) {
                parts.push_back({{"type", "text"}, {"text", *refusal}});
            }
        } else {
            return tl::unexpected(invalid_field(part_field + ".type",
                                                "unsupported content part type '" + type + "'"));
        }
    }
    if (has_image) {
        return parts;
    }
    std::string text;
    for (const auto& part : parts) {
        text += part["text"].get<std::string>();
    }
    return text;
}

json parse_arguments(const std::string& arguments) {
    json parsed = json::parse(arguments, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_object()) {
        return parsed;
    }
    return arguments;  // left as the string; the template renderer reports it loudly
}

struct Builder {
    std::string system;
    json turns = json::array();

    // The assistant turn function_call items attach to: the last turn when it is an assistant
    // message, else a fresh one.
    json& assistant_turn() {
        if (turns.empty() || turns.back()["role"] != "assistant") {
            turns.push_back({{"role", "assistant"}, {"content", ""}});
        }
        return turns.back();
    }
};

Status translate_item(const json& item, const std::string& field, Builder& builder) {
    if (!item.is_object()) {
        return tl::unexpected(invalid_field(field, "expected an object"));
    }
    auto type = detail::string_member(item, "type");
    // EasyInputMessage: {role, content} without a type.
    if (!type || *type == "message") {
        std::string role;
        HELEXA_TRY_STATUS(detail::read_string(item, "role", field, role));
        const json* content = member(item, "content");
        if (content == nullptr) {
            return tl::unexpected(invalid_field(field + ".content", "required"));
        }
        auto translated = translate_content(*content, field + ".content");
        if (!translated) {
            return tl::unexpected(std::move(translated).error());
        }
        if (role == "system" || role == "developer") {
            if (translated->is_string()) {
                append_text(builder.system, translated->get<std::string>());
                return ok();
            }
            return tl::unexpected(
                invalid_field(field + ".content", "system messages carry text only"));
        }
        if (role != "user" && role != "assistant") {
            return tl::unexpected(invalid_field(field + ".role", "unknown role '" + role + "'"));
        }
        builder.turns.push_back({{"role", role}, {"content", std::move(*translated)}});
        return ok();
    }
    if (*type == "function_call") {
        std::string call_id;
        std::string name;
        HELEXA_TRY_STATUS(detail::read_string(item, "call_id", field, call_id));
        HELEXA_TRY_STATUS(detail::read_string(item, "name", field, name));
        json arguments = json::object();
        if (const json* raw = member(item, "arguments"); raw != nullptr) {
            if (raw->is_string()) {
                arguments = parse_arguments(raw->get<std::string>());
            } else if (raw->is_object()) {
                arguments = *raw;
            } else {
                return tl::unexpected(invalid_field(field + ".arguments", "expected a string"));
            }
        }
        json& turn = builder.assistant_turn();
        if (!turn.contains("tool_calls")) {
            turn["tool_calls"] = json::array();
        }
        turn["tool_calls"].push_back(detail::tool_call(call_id, name, std::move(arguments)));
        return ok();
    }
    if (*type == "function_call_output") {
        std::string call_id;
        HELEXA_TRY_STATUS(detail::read_string(item, "call_id", field, call_id));
        std::string output;
        if (const json* raw = member(item, "output"); raw != nullptr) {
            if (raw->is_string()) {
                output = raw->get<std::string>();
            } else if (raw->is_array()) {
                auto flat = translate_content(*raw, field + ".output");
                if (!flat) {
                    return tl::unexpected(std::move(flat).error());
                }
                if (!flat->is_string()) {
                    return tl::unexpected(
                        invalid_field(field + ".output", "tool output carries text only"));
                }
                output = flat->get<std::string>();
            } else {
                return tl::unexpected(invalid_field(field + ".output", "expected a string"));
            }
        }
        builder.turns.push_back(detail::tool_message(call_id, output));
        return ok();
    }
    if (*type == "reasoning") {
        return ok();  // earlier reasoning is not replayed into the prompt
    }
    return tl::unexpected(
        invalid_field(field + ".type", "unsupported input item type '" + *type + "'"));
}

// One Responses tool {type:"function", name, description, parameters, strict} -> one chat
// function tool, appended; any other tool type is refused.
Status translate_tool(const json& tool, const std::string& field, json& tools) {
    auto type = detail::string_member(tool, "type").value_or("function");
    if (type != "function") {
        return tl::unexpected(invalid_field(
            field + ".type", "unsupported tool type '" + type + "' (only function tools)"));
    }
    // Accept the chat nesting too ({type:function, function:{...}}).
    const json& spec = member(tool, "function") != nullptr ? tool["function"] : tool;
    std::string name;
    HELEXA_TRY_STATUS(detail::read_string(spec, "name", field, name));
    json function = {{"name", name}};
    if (auto description = detail::string_member(spec, "description"); description) {
        function["description"] = *description;
    }
    if (const json* parameters = member(spec, "parameters"); parameters != nullptr) {
        if (!parameters->is_object()) {
            return tl::unexpected(invalid_field(field + ".parameters", "expected an object"));
        }
        function["parameters"] = *parameters;
    } else {
        function["parameters"] = detail::empty_parameters();
    }
    const json* strict = member(spec, "strict");
    if (strict != nullptr && strict->is_boolean()) {
        function["strict"] = *strict;
    }
    tools.push_back(detail::function_tool(std::move(function)));
    return ok();
}

Status translate_tool_choice(const json& choice, json& body) {
    if (choice.is_string()) {
        auto value = choice.get<std::string>();
        if (value != "auto" && value != "none" && value != "required") {
            return tl::unexpected(invalid_field("tool_choice", "unknown value '" + value + "'"));
        }
        body["tool_choice"] = value;
        return ok();
    }
    auto type = detail::string_member(choice, "type");
    auto name = detail::string_member(choice, "name");
    if (type == "function" && name) {
        body["tool_choice"] = detail::named_tool_choice(*name);
        return ok();
    }
    return tl::unexpected(invalid_field("tool_choice", "expected auto, none, required or "
                                                       "{type:\"function\",name}"));
}

Status copy_sampling(const json& request, ResponsesChatRequest& out) {
    json& body = out.body;
    if (const json* max = member(request, "max_output_tokens"); max != nullptr) {
        if (!detail::is_integral(*max) || detail::as_int(*max) < 1) {
            return tl::unexpected(
                invalid_field("max_output_tokens", "expected a positive integer"));
        }
        out.max_output_tokens = detail::as_int(*max);
        body["max_tokens"] = *out.max_output_tokens;
    }
    HELEXA_TRY_STATUS(detail::copy_number(request, "temperature", body));
    HELEXA_TRY_STATUS(detail::copy_number(request, "top_p", body));
    HELEXA_TRY_STATUS(detail::copy_integer(request, "top_k", body));
    if (const json* parallel = member(request, "parallel_tool_calls"); parallel != nullptr) {
        if (!parallel->is_boolean()) {
            return tl::unexpected(invalid_field("parallel_tool_calls", "expected a boolean"));
        }
        body["parallel_tool_calls"] = *parallel;
    }
    if (const json* user = member(request, "user"); user != nullptr) {
        if (!user->is_string()) {
            return tl::unexpected(invalid_field("user", "expected a string"));
        }
        body["user"] = *user;
    }
    if (const json* text = member(request, "text"); text != nullptr) {
        if (const json* format = member(*text, "format"); format != nullptr) {
            auto type = detail::string_member(*format, "type").value_or("text");
            if (type == "json_schema") {
                json schema = {{"name", detail::string_member(*format, "name").value_or("output")}};
                if (const json* s = member(*format, "schema"); s != nullptr) {
                    schema["schema"] = *s;
                }
                if (const json* strict = member(*format, "strict"); strict != nullptr) {
                    schema["strict"] = *strict;
                }
                body["response_format"] = {{"type", "json_schema"}, {"json_schema", schema}};
            } else if (type == "json_object") {
                body["response_format"] = {{"type", "json_object"}};
            }
        }
    }
    return ok();
}

}  // namespace

Result<ResponsesChatRequest> responses_to_chat(const json& request) {
    if (!request.is_object()) {
        return fail(ErrorCode::kInvalidRequest, "request body must be a JSON object");
    }
    if (member(request, "previous_response_id") != nullptr) {
        return tl::unexpected(
            Error(ErrorCode::kChainedConversationUnsupported,
                  "previous_response_id is not supported: this server keeps no response state; "
                  "send the whole conversation in `input`")
                .with_param("previous_response_id"));
    }
    ResponsesChatRequest out;
    out.body = json::object();
    HELEXA_TRY_STATUS(detail::copy_model(request, out.body, out.model));

    Builder builder;
    if (const json* instructions = member(request, "instructions"); instructions != nullptr) {
        if (!instructions->is_string()) {
            return tl::unexpected(invalid_field("instructions", "expected a string"));
        }
        append_text(builder.system, instructions->get<std::string>());
    }
    const json* input = member(request, "input");
    if (input == nullptr) {
        return tl::unexpected(invalid_field("input", "required"));
    }
    if (input->is_string()) {
        builder.turns.push_back({{"role", "user"}, {"content", *input}});
    } else if (input->is_array()) {
        for (size_t i = 0; i < input->size(); ++i) {
            HELEXA_TRY_STATUS(translate_item((*input)[i], field_at("input", i), builder));
        }
    } else {
        return tl::unexpected(invalid_field("input", "expected a string or an array of items"));
    }
    out.body["messages"] = detail::chat_messages(builder.system, std::move(builder.turns));

    HELEXA_TRY_STATUS(
        detail::translate_tool_fields(request, out.body, translate_tool, translate_tool_choice));
    HELEXA_TRY_STATUS(copy_sampling(request, out));
    HELEXA_TRY_STATUS(detail::copy_stream(request, out.body, out.stream));
    return out;
}

}  // namespace helexa::wire
