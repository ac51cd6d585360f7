// Anthropic Messages -> OpenAI chat translation. See the header for the mapping.
#include "helexa/wire/anthropic_request.h"

#include <string_view>
#include <utility>

#include "internal/json_util.h"

namespace helexa::wire {
namespace {

using detail::invalid_field;
using detail::member;
using nlohmann::json;

constexpr std::string_view kBlockSeparator = "\n\n";

std::string field_at(const std::string& base, size_t index) {
    return base + "[" + std::to_string(index) + "]";
}

void append_text(std::string& out, const std::string& text) {
    if (text.empty()) {
        return;
    }
    if (!out.empty()) {
        out += kBlockSeparator;
    }
    out += text;
}

// `system` content, a system turn's content, or tool_result content: a string or an array of
// blocks, flattened to text. Text blocks contribute their text; images (only meaningful in
// tool results) become a short marker because OpenAI tool/system messages carry text only.
Result<std::string> flatten_to_text(const json& content, const std::string& field) {
    if (content.is_string()) {
        return content.get<std::string>();
    }
    if (!content.is_array()) {
        return tl::unexpected(invalid_field(field, "expected a string or an array of blocks, got " +
                                                       detail::type_name(content)));
    }
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
            const json* text = member(block, "text");
            if (text == nullptr || !text->is_string()) {
                return tl::unexpected(invalid_field(block_field + ".text", "expected a string"));
            }
            append_text(out, text->get<std::string>());
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
    if (!content.is_array()) {
        return tl::unexpected(invalid_field(field, "expected a string or an array of blocks, got " +
                                                       detail::type_name(content)));
    }
    json parts = json::array();
    for (size_t i = 0; i < content.size(); ++i) {
        const json& block = content[i];
        std::string block_field = field_at(field, i);
        if (!block.is_object()) {
            return tl::unexpected(invalid_field(block_field, "expected a content block object"));
        }
        auto type = detail::string_member(block, "type");
        if (!type) {
            return tl::unexpected(invalid_field(block_field + ".type", "expected a string"));
        }
        if (*type == "text") {
            auto text = detail::string_member(block, "text");
            if (!text) {
                return tl::unexpected(invalid_field(block_field + ".text", "expected a string"));
            }
            parts.push_back({{"type", "text"}, {"text", *text}});
        } else if (*type == "image") {
            auto part = image_part(block, block_field);
            if (!part) {
                return tl::unexpected(std::move(part).error());
            }
            parts.push_back(std::move(*part));
        } else if (*type == "tool_result") {
            auto id = detail::string_member(block, "tool_use_id");
            if (!id) {
                return tl::unexpected(
                    invalid_field(block_field + ".tool_use_id", "expected a string"));
            }
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
            messages.push_back({{"role", "tool"}, {"tool_call_id", *id}, {"content", text}});
        } else if (*type == "document") {
            auto flat = flatten_to_text(json::array({block}), block_field);
            if (!flat) {
                return tl::unexpected(std::move(flat).error());
            }
            parts.push_back({{"type", "text"}, {"text", *flat}});
        } else if (*type == "thinking" || *type == "redacted_thinking") {
            continue;  // not meaningful in a user turn
        } else {
            return tl::unexpected(invalid_field(block_field + ".type",
                                                "unsupported content block type '" + *type + "'"));
        }
    }
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
    if (!content.is_array()) {
        return tl::unexpected(invalid_field(field, "expected a string or an array of blocks, got " +
                                                       detail::type_name(content)));
    }
    std::string text;
    std::string reasoning;
    json tool_calls = json::array();
    for (size_t i = 0; i < content.size(); ++i) {
        const json& block = content[i];
        std::string block_field = field_at(field, i);
        if (!block.is_object()) {
            return tl::unexpected(invalid_field(block_field, "expected a content block object"));
        }
        auto type = detail::string_member(block, "type");
        if (!type) {
            return tl::unexpected(invalid_field(block_field + ".type", "expected a string"));
        }
        if (*type == "text") {
            auto block_text = detail::string_member(block, "text");
            if (!block_text) {
                return tl::unexpected(invalid_field(block_field + ".text", "expected a string"));
            }
            append_text(text, *block_text);
        } else if (*type == "tool_use") {
            auto id = detail::string_member(block, "id");
            auto name = detail::string_member(block, "name");
            if (!id) {
                return tl::unexpected(invalid_field(block_field + ".id", "expected a string"));
            }
            if (!name) {
                return tl::unexpected(invalid_field(block_field + ".name", "expected a string"));
            }
            json input = json::object();
            if (const json* in = member(block, "input"); in != nullptr) {
                if (!in->is_object()) {
                    return tl::unexpected(
                        invalid_field(block_field + ".input", "expected an object"));
                }
                input = *in;
            }
            tool_calls.push_back({{"id", *id},
                                  {"type", "function"},
                                  {"function", {{"name", *name}, {"arguments", input}}}});
        } else if (*type == "thinking") {
            if (auto thought = detail::string_member(block, "thinking"); thought) {
                append_text(reasoning, *thought);
            }
        } else if (*type == "redacted_thinking") {
            continue;  // opaque to us
        } else {
            return tl::unexpected(invalid_field(block_field + ".type",
                                                "unsupported content block type '" + *type + "'"));
        }
    }
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

Result<json> translate_tools(const json& tools) {
    if (!tools.is_array()) {
        return tl::unexpected(invalid_field("tools", "expected an array"));
    }
    json out = json::array();
    for (size_t i = 0; i < tools.size(); ++i) {
        const json& tool = tools[i];
        std::string field = field_at("tools", i);
        if (!tool.is_object()) {
            return tl::unexpected(invalid_field(field, "expected an object"));
        }
        auto kind = detail::string_member(tool, "type");
        if (kind && *kind != "custom") {
            continue;  // Anthropic-hosted server tool (web_search_..., bash_...): not executable
        }
        auto name = detail::string_member(tool, "name");
        if (!name) {
            return tl::unexpected(invalid_field(field + ".name", "expected a string"));
        }
        json function = {{"name", *name}};
        if (const json* description = member(tool, "description"); description != nullptr) {
            if (!description->is_string()) {
                return tl::unexpected(invalid_field(field + ".description", "expected a string"));
            }
            function["description"] = *description;
        }
        json parameters = {{"type", "object"}, {"properties", json::object()}};
        if (const json* schema = member(tool, "input_schema"); schema != nullptr) {
            if (!schema->is_object()) {
                return tl::unexpected(invalid_field(field + ".input_schema", "expected an object"));
            }
            parameters = *schema;
        }
        function["parameters"] = std::move(parameters);
        out.push_back({{"type", "function"}, {"function", std::move(function)}});
    }
    return out;
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
        body["tool_choice"] = {{"type", "function"}, {"function", {{"name", *name}}}};
    } else {
        return tl::unexpected(invalid_field("tool_choice.type",
                                            "unknown tool_choice type '" + type + "'"));
    }
    return ok();
}

Status copy_number(const json& request, const char* key, json& body) {
    const json* value = member(request, key);
    if (value == nullptr) {
        return ok();
    }
    if (!value->is_number()) {
        return tl::unexpected(invalid_field(key, "expected a number"));
    }
    body[key] = *value;
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
    HELEXA_TRY_STATUS(copy_number(request, "temperature", body));
    HELEXA_TRY_STATUS(copy_number(request, "top_p", body));
    if (const json* top_k = member(request, "top_k"); top_k != nullptr) {
        if (!detail::is_integral(*top_k)) {
            return tl::unexpected(invalid_field("top_k", "expected an integer"));
        }
        body["top_k"] = detail::as_int(*top_k);
    }
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

    auto model = detail::string_member(request, "model");
    if (!model || model->empty()) {
        return tl::unexpected(invalid_field("model", "required non-empty string"));
    }
    out.model = *model;
    out.body["model"] = *model;

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
        auto role = detail::string_member(message, "role");
        if (!role) {
            return tl::unexpected(invalid_field(field + ".role", "expected a string"));
        }
        const json* content = member(message, "content");
        if (content == nullptr) {
            return tl::unexpected(invalid_field(field + ".content", "required"));
        }
        if (*role == "system") {
            // Chat templates reject a system message anywhere but first (seed 295b10c).
            auto flat = flatten_to_text(*content, field + ".content");
            if (!flat) {
                return tl::unexpected(std::move(flat).error());
            }
            append_text(system_text, *flat);
        } else if (*role == "user") {
            HELEXA_TRY_STATUS(translate_user(*content, field + ".content", turns));
        } else if (*role == "assistant") {
            HELEXA_TRY_STATUS(translate_assistant(*content, field + ".content", turns));
        } else {
            return tl::unexpected(
                invalid_field(field + ".role", "unknown role '" + *role + "' (user or assistant)"));
        }
    }

    json chat_messages = json::array();
    if (!system_text.empty()) {
        chat_messages.push_back({{"role", "system"}, {"content", system_text}});
    }
    for (auto& turn : turns) {
        chat_messages.push_back(std::move(turn));
    }
    out.body["messages"] = std::move(chat_messages);

    if (const json* tools = member(request, "tools"); tools != nullptr) {
        auto translated = translate_tools(*tools);
        if (!translated) {
            return tl::unexpected(std::move(translated).error());
        }
        if (!translated->empty()) {
            out.body["tools"] = std::move(*translated);
        }
    }
    if (const json* choice = member(request, "tool_choice"); choice != nullptr) {
        HELEXA_TRY_STATUS(translate_tool_choice(*choice, out.body));
    }
    HELEXA_TRY_STATUS(translate_sampling(request, out));
    HELEXA_TRY_STATUS(translate_thinking(request, out));

    if (const json* stream = member(request, "stream"); stream != nullptr) {
        if (!stream->is_boolean()) {
            return tl::unexpected(invalid_field("stream", "expected a boolean"));
        }
        out.stream = stream->get<bool>();
    }
    out.body["stream"] = out.stream;
    if (out.stream) {
        out.body["stream_options"] = {{"include_usage", true}};
    }
    return out;
}

}  // namespace helexa::wire
