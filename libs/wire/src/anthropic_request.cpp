// Anthropic Messages -> OpenAI chat translation. See the header for the mapping.
#include "helexa/wire/anthropic_request.h"

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

// Content that is not a string must be an array of blocks; the caller handles the string.
Status require_blocks(const json& content, const std::string& field) {
    if (!content.is_array()) {
        return tl::unexpected(invalid_field(field, "expected a string or an array of blocks, got " +
                                                       detail::type_name(content)));
    }
    return ok();
}

// Walks a user or assistant turn's array of blocks, calling
// on_block(block, block_field, type) -> Status for each one after checking that it is an object
// naming its `type`. Stops at the first error.
template <typename OnBlock>
Status for_each_typed_block(const json& content, const std::string& field, OnBlock&& on_block) {
    HELEXA_TRY_STATUS(require_blocks(content, field));
    for (size_t i = 0; i < content.size(); ++i) {
        const json& block = content[i];
        std::string block_field = field_at(field, i);
        if (!block.is_object()) {
            return tl::unexpected(invalid_field(block_field, "expected a content block object"));
        }
        std::string type;
        HELEXA_TRY_STATUS(detail::read_string(block, "type", block_field, type));
        HELEXA_TRY_STATUS(on_block(block, block_field, type));
    }
    return ok();
}

// `system` content, a system turn's content, or tool_result content: a string or an array of
// blocks, flattened to text. Text blocks contribute their text; images (only meaningful in
// tool results) become a short marker because OpenAI tool/system messages carry text only.
Result<std::string> flatten_to_text(const json& content, const std::string& field) {
    if (content.is_string()) {
        return content.get<std::string>();
    }
    HELEXA_TRY_STATUS(require_blocks(content, field));
    std::string out;
    for (size_t i = 0; i < content.size(); ++i) {
        const json& block = content[i];
        std::string block_field = field_at(field, i);
        if (block.is_string()) {
            append_text(out, block.get<std::string>());
            continue;
        }
        if (!block.is_object()) {
            return tl::unexpected(invalid_field(block_field, "expected a content block object"));
        }
        auto type = detail::string_member(block, "type").value_or("text");
        if (type == "text") {
            std::string text;
            HELEXA_TRY_STATUS(detail::read_string(block, "text", block_field, text));
            append_text(out, text);
        } else if (type == "image") {
            append_text(out, "[image]");
        } else if (type == "document") {
            const json* source = member(block, "source");
            auto data = source != nullptr ? detail::string_member(*source, "data") : std::nullopt;
            if (source != nullptr && detail::string_member(*source, "type") == "text" && data) {
                append_text(out, *data);
            } else {
                append_text(out, "[document]");
            }
        }
        // Other block kinds (search results, cache markers) carry nothing a text prompt can use.
    }
    return out;
}

Result<json> image_part(const json& block, const std::string& field) {
    const json* source = member(block, "source");
    if (source == nullptr || !source->is_object()) {
        return tl::unexpected(invalid_field(field + ".source", "expected an object"));
    }
    auto kind = detail::string_member(*source, "type").value_or("");
    std::string url;
    if (kind == "base64") {
        auto media_type = detail::string_member(*source, "media_type");
        auto data = detail::string_member(*source, "data");
        if (!media_type) {
            return tl::unexpected(invalid_field(field + ".source.media_type", "expected a string"));
        }
        if (!data) {
            return tl::unexpected(invalid_field(field + ".source.data", "expected a string"));
        }
        url = "data:" + *media_type + ";base64," + *data;
    } else if (kind == "url") {
        auto source_url = detail::string_member(*source, "url");
        if (!source_url) {
            return tl::unexpected(invalid_field(field + ".source.url", "expected a string"));
        }
        url = *source_url;
    } else {
        return tl::unexpected(invalid_field(
            field + ".source.type", "unsupported image source '" + kind + "' (base64 or url)"));
    }
    return json{{"type", "image_url"}, {"image_url", {{"url", url}}}};
}

// Collapses text-only parts into a plain string (what every chat template accepts); keeps the
// part array when images are present.
json collapse_parts(json parts) {
    bool text_only = true;
    for (const auto& part : parts) {
        if (part.value("type", "") != "text") {
            text_only = false;
            break;
        }
    }
    if (!text_only) {
        return parts;
    }
    std::string out;
    for (const auto& part : parts) {
        append_text(out, part["text"].get<std::string>());
    }
    return out;
}

Status translate_user(const json& content, const std::string& field, json& messages) {
    if (content.is_string()) {
        messages.push_back({{"role", "user"}, {"content", content}});
        return ok();
    }
    json parts = json::array();
    auto on_block = [&](const json& block, const std::string& block_field,
                        const std::string& type) -> Status {
        if (type == "text") {
            std::string text;
            HELEXA_TRY_STATUS(detail::read_string(block, "text", block_field, text));
            parts.push_back({{"type", "text"}, {"text", text}});
        } else if (type == "image") {
            auto part = image_part(block, block_field);
            if (!part) {
                return tl::unexpected(std::move(part).error());
            }
            parts.push_back(std::move(*part));
        } else if (type == "tool_result") {
            std::string id;
            HELEXA_TRY_STATUS(detail::read_string(block, "tool_use_id", block_field, id));
            std::string text;
            if (const json* result = member(block, "content"); result != nullptr) {
                auto flat = flatten_to_text(*result, block_field + ".content");
                if (!flat) {
                    return tl::unexpected(std::move(flat).error());
                }
                text = std::move(*flat);
            }
            // Tool results must directly follow the assistant's tool_calls, so they go out
            // before any text the user turn also carries.
            messages.push_back(detail::tool_message(id, text));
        } else if (type == "document") {
            auto flat = flatten_to_text(json::array({block}), block_field);
            if (!flat) {
                return tl::unexpected(std::move(flat).error());
            }
            parts.push_back({{"type", "text"}, {"text", *flat}});
        } else if (type == "thinking" || type == "redacted_thinking") {
            // not meaningful in a user turn: dropped
        } else {
            return tl::unexpected(invalid_field(block_field + ".type",
                                                "unsupported content block type '" + type + "'"));
        }
        return ok();
    };
    HELEXA_TRY_STATUS(for_each_typed_block(content, field, on_block));
    if (!parts.empty()) {
        messages.push_back({{"role", "user"}, {"content", collapse_parts(std::move(parts))}});
    }
    return ok();
}

Status translate_assistant(const json& content, const std::string& field, json& messages) {
    if (content.is_string()) {
        messages.push_back({{"role", "assistant"}, {"content", content}});
        return ok();
    }
    std::string text;
    std::string reasoning;
    json tool_calls = json::array();
    auto on_block = [&](const json& block, const std::string& block_field,
                        const std::string& type) -> Status {
        if (type == "text") {
            std::string part_text;
            HELEXA_TRY_STATUS(detail::read_string(block, "text", block_field, part_text));
            append_text(text, part_text);
        } else if (type == "tool_use") {
            std::string id;
            std::string name;
            HELEXA_TRY_STATUS(detail::read_string(block, "id", block_field, id));
            HELEXA_TRY_STATUS(detail::read_string(block, "name", block_field, name));
            json input = json::object();
            if (const json* in = member(block, "input"); in != nullptr) {
                if (!in->is_object()) {
                    return tl::unexpected(
                        invalid_field(block_field + ".input", "expected an object"));
                }
                input = *in;
            }
            tool_calls.push_back(detail::tool_call(id, name, std::move(input)));
        } else if (type == "thinking") {
            if (auto thought = detail::string_member(block, "thinking"); thought) {
                append_text(reasoning, *thought);
            }
        } else if (type == "redacted_thinking") {
            // opaque to us: dropped
        } else {
            return tl::unexpected(invalid_field(block_field + ".type",
                                                "unsupported content block type '" + type + "'"));
        }
        return ok();
    };
    HELEXA_TRY_STATUS(for_each_typed_block(content, field, on_block));
    json message = {{"role", "assistant"}, {"content", text}};
    if (!reasoning.empty()) {
        message["reasoning_content"] = reasoning;
    }
    if (!tool_calls.empty()) {
        message["tool_calls"] = std::move(tool_calls);
    }
    messages.push_back(std::move(message));
    return ok();
}

// One Anthropic tool {name, description, input_schema} -> one chat function tool, appended.
Status translate_tool(const json& tool, const std::string& field, json& tools) {
    auto kind = detail::string_member(tool, "type");
    if (kind && *kind != "custom") {
        return ok();  // Anthropic-hosted server tool (web_search_..., bash_...): not executable
    }
    std::string name;
    HELEXA_TRY_STATUS(detail::read_string(tool, "name", field, name));
    json function = {{"name", name}};
    if (const json* description = member(tool, "description"); description != nullptr) {
        if (!description->is_string()) {
            return tl::unexpected(invalid_field(field + ".description", "expected a string"));
        }
        function["description"] = *description;
    }
    json parameters = detail::empty_parameters();
    if (const json* schema = member(tool, "input_schema"); schema != nullptr) {
        if (!schema->is_object()) {
            return tl::unexpected(invalid_field(field + ".input_schema", "expected an object"));
        }
        parameters = *schema;
    }
    function["parameters"] = std::move(parameters);
    tools.push_back(detail::function_tool(std::move(function)));
    return ok();
}

Status translate_tool_choice(const json& choice, json& body) {
    std::string type;
    if (choice.is_string()) {
        type = choice.get<std::string>();
    } else if (choice.is_object()) {
        auto t = detail::string_member(choice, "type");
        if (!t) {
            return tl::unexpected(invalid_field("tool_choice.type", "expected a string"));
        }
        type = *t;
        if (const json* disable = member(choice, "disable_parallel_tool_use"); disable != nullptr) {
            if (!disable->is_boolean()) {
                return tl::unexpected(invalid_field("tool_choice.disable_parallel_tool_use",
                                                    "expected a boolean"));
            }
            if (disable->get<bool>()) {
                body["parallel_tool_calls"] = false;
            }
        }
    } else {
        return tl::unexpected(invalid_field("tool_choice", "expected an object"));
    }
    if (type == "auto") {
        body["tool_choice"] = "auto";
    } else if (type == "any") {
        body["tool_choice"] = "required";
    } else if (type == "none") {
        body["tool_choice"] = "none";
    } else if (type == "tool") {
        auto name = choice.is_object() ? detail::string_member(choice, "name") : std::nullopt;
        if (!name) {
            return tl::unexpected(invalid_field("tool_choice.name", "expected a string"));
        }
        body["tool_choice"] = detail::named_tool_choice(*name);
    } else {
        return tl::unexpected(invalid_field("tool_choice.type",
                                            "unknown tool_choice type '" + type + "'"));
    }
    return ok();
}

Status translate_sampling(const json& request, AnthropicChatRequest& out) {
    json& body = out.body;
    if (const json* max_tokens = member(request, "max_tokens"); max_tokens != nullptr) {
        if (!detail::is_integral(*max_tokens)) {
            return tl::unexpected(invalid_field("max_tokens", "expected an integer"));
        }
        int64_t value = detail::as_int(*max_tokens);
        if (value < 1) {
            return tl::unexpected(invalid_field("max_tokens", "must be at least 1"));
        }
        out.max_tokens = value;
        body["max_tokens"] = value;
    }
    HELEXA_TRY_STATUS(detail::copy_number(request, "temperature", body));
    HELEXA_TRY_STATUS(detail::copy_number(request, "top_p", body));
    HELEXA_TRY_STATUS(detail::copy_integer(request, "top_k", body));
    if (const json* stops = member(request, "stop_sequences"); stops != nullptr) {
        if (!stops->is_array()) {
            return tl::unexpected(invalid_field("stop_sequences", "expected an array of strings"));
        }
        for (size_t i = 0; i < stops->size(); ++i) {
            if (!(*stops)[i].is_string()) {
                return tl::unexpected(
                    invalid_field(field_at("stop_sequences", i), "expected a string"));
            }
            out.stop_sequences.push_back((*stops)[i].get<std::string>());
        }
        if (!out.stop_sequences.empty()) {
            body["stop"] = out.stop_sequences;
        }
    }
    if (const json* metadata = member(request, "metadata"); metadata != nullptr) {
        if (!metadata->is_object()) {
            return tl::unexpected(invalid_field("metadata", "expected an object"));
        }
        if (const json* user = member(*metadata, "user_id"); user != nullptr) {
            if (!user->is_string()) {
                return tl::unexpected(invalid_field("metadata.user_id", "expected a string"));
            }
            body["user"] = *user;
        }
    }
    return ok();
}

Status translate_thinking(const json& request, AnthropicChatRequest& out) {
    const json* thinking = member(request, "thinking");
    if (thinking == nullptr) {
        return ok();
    }
    if (!thinking->is_object()) {
        return tl::unexpected(invalid_field("thinking", "expected an object"));
    }
    auto type = detail::string_member(*thinking, "type");
    if (!type) {
        return tl::unexpected(invalid_field("thinking.type", "expected a string"));
    }
    if (*type == "disabled") {
        return ok();
    }
    if (*type != "enabled" && *type != "adaptive") {
        return tl::unexpected(invalid_field("thinking.type", "unknown thinking type '" + *type +
                                                                  "' (enabled or disabled)"));
    }
    if (const json* budget = member(*thinking, "budget_tokens"); budget != nullptr) {
        if (!detail::is_integral(*budget)) {
            return tl::unexpected(invalid_field("thinking.budget_tokens", "expected an integer"));
        }
        out.thinking_budget_tokens = detail::as_int(*budget);
    }
    out.show_thinking = true;
    out.body["chat_template_kwargs"] = {{"enable_thinking", true}};
    return ok();
}

}  // namespace

Result<AnthropicChatRequest> anthropic_to_openai(const json& request) {
    if (!request.is_object()) {
        return fail(ErrorCode::kInvalidRequest, "request body must be a JSON object");
    }
    AnthropicChatRequest out;
    out.body = json::object();

    HELEXA_TRY_STATUS(detail::copy_model(request, out.body, out.model));

    const json* messages = member(request, "messages");
    if (messages == nullptr || !messages->is_array()) {
        return tl::unexpected(invalid_field("messages", "required array"));
    }

    std::string system_text;
    if (const json* system = member(request, "system"); system != nullptr) {
        auto flat = flatten_to_text(*system, "system");
        if (!flat) {
            return tl::unexpected(std::move(flat).error());
        }
        append_text(system_text, *flat);
    }

    json turns = json::array();
    for (size_t i = 0; i < messages->size(); ++i) {
        const json& message = (*messages)[i];
        std::string field = field_at("messages", i);
        if (!message.is_object()) {
            return tl::unexpected(invalid_field(field, "expected an object"));
        }
        std::string role;
        HELEXA_TRY_STATUS(detail::read_string(message, "role", field, role));
        const json* content = member(message, "content");
        if (content == nullptr) {
            return tl::unexpected(invalid_field(field + ".content", "required"));
        }
        if (role == "system") {
            // Chat templates reject a system message anywhere but first (seed 295b10c).
            auto flat = flatten_to_text(*content, field + ".content");
            if (!flat) {
                return tl::unexpected(std::move(flat).error());
            }
            append_text(system_text, *flat);
        } else if (role == "user") {
            HELEXA_TRY_STATUS(translate_user(*content, field + ".content", turns));
        } else if (role == "assistant") {
            HELEXA_TRY_STATUS(translate_assistant(*content, field + ".content", turns));
        } else {
            return tl::unexpected(
                invalid_field(field + ".role", "unknown role '" + role + "' (user or assistant)"));
        }
    }

    out.body["messages"] = detail::chat_messages(system_text, std::move(turns));

    HELEXA_TRY_STATUS(
        detail::translate_tool_fields(request, out.body, translate_tool, translate_tool_choice));
    HELEXA_TRY_STATUS(translate_sampling(request, out));
    HELEXA_TRY_STATUS(translate_thinking(request, out));

    HELEXA_TRY_STATUS(detail::copy_stream(request, out.body, out.stream));
    return out;
}

}  // namespace helexa::wire
