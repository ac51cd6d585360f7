// Chat-completions body pieces shared by the request translators. See internal/chat_body.h.
#include "internal/chat_body.h"

#include <string_view>
#include <utility>

#include "internal/json_util.h"

namespace helexa::wire::detail {

namespace {
constexpr std::string_view kBlockSeparator = "\n\n";
}  // namespace

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

Status copy_model(const json& request, json& body, std::string& model) {
    auto value = string_member(request, "model");
    if (!value || value->empty()) {
        return tl::unexpected(invalid_field("model", "required non-empty string"));
    }
    body["model"] = *value;
    model = std::move(*value);
    return ok();
}

json chat_messages(const std::string& system, json turns) {
    json messages = json::array();
    if (!system.empty()) {
        messages.push_back({{"role", "system"}, {"content", system}});
    }
    for (auto& turn : turns) {
        messages.push_back(std::move(turn));
    }
    return messages;
}

json tool_call(const std::string& id, const std::string& name, json arguments) {
    return {{"id", id},
            {"type", "function"},
            {"function", {{"name", name}, {"arguments", std::move(arguments)}}}};
}

json tool_message(const std::string& tool_call_id, const std::string& content) {
    return {{"role", "tool"}, {"tool_call_id", tool_call_id}, {"content", content}};
}

json function_tool(json function) {
    return {{"type", "function"}, {"function", std::move(function)}};
}

json empty_parameters() {
    return {{"type", "object"}, {"properties", json::object()}};
}

json named_tool_choice(const std::string& name) {
    return {{"type", "function"}, {"function", {{"name", name}}}};
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

Status copy_integer(const json& request, const char* key, json& body) {
    const json* value = member(request, key);
    if (value == nullptr) {
        return ok();
    }
    if (!is_integral(*value)) {
        return tl::unexpected(invalid_field(key, "expected an integer"));
    }
    body[key] = as_int(*value);
    return ok();
}

Status translate_tool_fields(const json& request, json& body, ToolTranslator translate_tool,
                             ToolChoiceTranslator translate_tool_choice) {
    if (const json* tools = member(request, "tools"); tools != nullptr) {
        if (!tools->is_array()) {
            return tl::unexpected(invalid_field("tools", "expected an array"));
        }
        json translated = json::array();
        for (size_t i = 0; i < tools->size(); ++i) {
            const json& tool = (*tools)[i];
            std::string field = field_at("tools", i);
            if (!tool.is_object()) {
                return tl::unexpected(invalid_field(field, "expected an object"));
            }
            HELEXA_TRY_STATUS(translate_tool(tool, field, translated));
        }
        if (!translated.empty()) {
            body["tools"] = std::move(translated);
        }
    }
    if (const json* choice = member(request, "tool_choice"); choice != nullptr) {
        HELEXA_TRY_STATUS(translate_tool_choice(*choice, body));
    }
    return ok();
}

Status copy_stream(const json& request, json& body, bool& stream) {
    stream = false;
    if (const json* value = member(request, "stream"); value != nullptr) {
        if (!value->is_boolean()) {
            return tl::unexpected(invalid_field("stream", "expected a boolean"));
        }
        stream = value->get<bool>();
    }
    body["stream"] = stream;
    if (stream) {
        body["stream_options"] = {{"include_usage", true}};
    }
    return ok();
}

}  // namespace helexa::wire::detail
