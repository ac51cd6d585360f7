// OpenAI chat completion -> Anthropic message. See the header for the decisions.
#include "helexa/wire/anthropic_response.h"

#include <algorithm>
#include <cctype>

#include "internal/json_util.h"

namespace helexa::wire {
namespace {

using detail::member;
using nlohmann::json;

// Text of an OpenAI message content: a string, or an array of {type:"text",text} parts.
std::string content_text(const json* content) {
    if (content == nullptr) {
        return {};
    }
    if (content->is_string()) {
        return content->get<std::string>();
    }
    std::string out;
    if (content->is_array()) {
        for (const auto& part : *content) {
            if (auto text = detail::string_member(part, "text"); text) {
                out += *text;
            }
        }
    }
    return out;
}

}  // namespace

std::string map_stop_reason(const std::optional<std::string>& finish_reason) {
    if (!finish_reason) {
        return "end_turn";
    }
    if (*finish_reason == "length") {
        return "max_tokens";
    }
    if (*finish_reason == "tool_calls" || *finish_reason == "function_call") {
        return "tool_use";
    }
    return "end_turn";  // stop, content_filter, unknown (D11)
}

std::string message_id_from_upstream(std::string_view upstream_id) {
    // "chatcmpl-abc123" -> "msg_abc123": keep the part after the last '-' or '_', alnum only.
    size_t cut = upstream_id.find_last_of("-_");
    std::string_view tail =
        cut == std::string_view::npos ? upstream_id : upstream_id.substr(cut + 1);
    std::string id = "msg_";
    for (char c : tail) {
        if (std::isalnum(static_cast<unsigned char>(c)) != 0) {
            id += c;
        }
    }
    if (id.size() == 4) {
        id += "helexa";
    }
    return id;
}

json anthropic_usage(const json& openai_usage) {
    int64_t prompt = detail::int_member(openai_usage, "prompt_tokens").value_or(0);
    int64_t completion = detail::int_member(openai_usage, "completion_tokens").value_or(0);
    int64_t cached = 0;
    if (const json* details = member(openai_usage, "prompt_tokens_details"); details != nullptr) {
        cached = std::clamp<int64_t>(detail::int_member(*details, "cached_tokens").value_or(0), 0,
                                     std::max<int64_t>(prompt, 0));
    }
    return {{"input_tokens", prompt - cached},
            {"cache_creation_input_tokens", 0},
            {"cache_read_input_tokens", cached},
            {"output_tokens", completion}};
}

std::optional<json> parse_tool_arguments(const json& arguments) {
    if (arguments.is_object()) {
        return arguments;
    }
    if (!arguments.is_string()) {
        return std::nullopt;
    }
    const auto& text = arguments.get_ref<const std::string&>();
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
        return json::object();  // "" means no arguments
    }
    json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_object()) {
        return parsed;
    }
    if (parsed.is_string()) {
        // Double-encoded arguments ("\"{\\\"a\\\":1}\"") are a common upstream bug.
        json inner = json::parse(parsed.get<std::string>(), nullptr, false);
        if (inner.is_object()) {
            return inner;
        }
    }
    return std::nullopt;
}

Result<AnthropicResponse> openai_to_anthropic(const json& completion,
                                              const AnthropicResponseOptions& options) {
    const json* choices = member(completion, "choices");
    if (choices == nullptr || !choices->is_array() || choices->empty() ||
        !(*choices)[0].is_object()) {
        return fail(ErrorCode::kUpstream, "upstream response has no choices");
    }
    const json& choice = (*choices)[0];
    const json* message = member(choice, "message");
    if (message == nullptr || !message->is_object()) {
        return fail(ErrorCode::kUpstream, "upstream response has no choices[0].message");
    }

    AnthropicResponse out;
    json content = json::array();
    if (options.show_thinking) {
        std::string reasoning = content_text(member(*message, "reasoning_content"));
        if (reasoning.empty()) {
            reasoning = content_text(member(*message, "reasoning"));
        }
        if (!reasoning.empty()) {
            content.push_back({{"type", "thinking"},
                               {"thinking", reasoning},
                               {"signature", kThinkingSignature}});
        }
    }
    std::string text = content_text(member(*message, "content"));
    if (!text.empty()) {
        content.push_back({{"type", "text"}, {"text", text}});
    }
    std::string message_id = options.message_id.empty()
                                 ? message_id_from_upstream(
                                       detail::string_member(completion, "id").value_or(""))
                                 : options.message_id;
    bool any_tool_use = false;
    if (const json* calls = member(*message, "tool_calls"); calls != nullptr && calls->is_array()) {
        for (size_t i = 0; i < calls->size(); ++i) {
            const json& call = (*calls)[i];
            const json* function = member(call, "function");
            if (function == nullptr) {
                continue;
            }
            std::string id = detail::string_member(call, "id")
                                 .value_or("toolu_" + message_id.substr(4) + "_" +
                                           std::to_string(i));
            json input = json::object();
            if (const json* arguments = member(*function, "arguments"); arguments != nullptr) {
                if (auto parsed = parse_tool_arguments(*arguments); parsed) {
                    input = std::move(*parsed);
                } else {
                    ++out.malformed_tool_arguments;
                    out.malformed_raw.push_back(arguments->is_string()
                                                    ? arguments->get<std::string>()
                                                    : detail::safe_dump(*arguments));
                }
            }
            content.push_back({{"type", "tool_use"},
                               {"id", id},
                               {"name", detail::string_member(*function, "name").value_or("")},
                               {"input", std::move(input)}});
            any_tool_use = true;
        }
    }

    auto finish_reason = detail::string_member(choice, "finish_reason");
    std::string stop_reason = map_stop_reason(finish_reason);
    json stop_sequence = nullptr;
    if (finish_reason == "stop") {
        // vLLM-style upstreams name the matched stop string in choices[0].stop_reason.
        if (auto matched = detail::string_member(choice, "stop_reason"); matched) {
            if (std::find(options.stop_sequences.begin(), options.stop_sequences.end(),
                          *matched) != options.stop_sequences.end()) {
                stop_reason = "stop_sequence";
                stop_sequence = *matched;
            }
        }
    }
    if (any_tool_use && stop_reason == "end_turn") {
        stop_reason = "tool_use";
    }

    const json* usage = member(completion, "usage");
    out.body = {{"id", message_id},
                {"type", "message"},
                {"role", "assistant"},
                {"model", options.model},
                {"content", std::move(content)},
                {"stop_reason", stop_reason},
                {"stop_sequence", stop_sequence},
                {"usage", anthropic_usage(usage != nullptr ? *usage : json::object())}};
    return out;
}

}  // namespace helexa::wire
