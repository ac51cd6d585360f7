// Token estimates and the neuron /tokenize request for count_tokens.
#include "helexa/wire/count_tokens.h"

#include <string>

#include "helexa/wire/anthropic_request.h"
#include "internal/json_util.h"

namespace helexa::wire {
namespace {

using nlohmann::json;

struct Tally {
    int64_t chars = 0;
    int64_t images = 0;
    int64_t messages = 0;

    int64_t tokens() const {
        return (chars + kCharsPerToken - 1) / kCharsPerToken + images * kImageTokens +
               messages * kPerMessageOverheadTokens;
    }
};

// Counts the characters of text-bearing content: strings, text/thinking blocks, tool inputs and
// results, recursively; image blocks count as images; anything else counts as its JSON text.
// Depth-bounded so hostile nesting cannot exhaust the stack.
void tally_content(const json& value, Tally& tally, int depth = 0) {
    if (depth > 64) {
        return;
    }
    if (value.is_string()) {
        tally.chars += static_cast<int64_t>(value.get_ref<const std::string&>().size());
        return;
    }
    if (value.is_array()) {
        for (const auto& item : value) {
            tally_content(item, tally, depth + 1);
        }
        return;
    }
    if (!value.is_object()) {
        if (!value.is_null()) {
            tally.chars += static_cast<int64_t>(detail::safe_dump(value).size());
        }
        return;
    }
    auto type = detail::string_member(value, "type").value_or("");
    if (type == "image" || type == "image_url" || type == "input_image") {
        ++tally.images;
        return;
    }
    bool counted = false;
    for (const char* key : {"text", "thinking", "content"}) {
        if (const json* part = detail::member(value, key); part != nullptr) {
            tally_content(*part, tally, depth + 1);
            counted = true;
        }
    }
    for (const char* key : {"name", "input", "arguments", "function", "tool_use_id", "id"}) {
        if (const json* part = detail::member(value, key); part != nullptr) {
            if (part->is_string()) {
                tally.chars += static_cast<int64_t>(part->get_ref<const std::string&>().size());
            } else {
                tally.chars += static_cast<int64_t>(detail::safe_dump(*part).size());
            }
            counted = true;
        }
    }
    if (!counted && type.empty()) {
        tally.chars += static_cast<int64_t>(detail::safe_dump(value).size());
    }
}

void tally_messages(const json* messages, Tally& tally) {
    if (messages == nullptr || !messages->is_array()) {
        return;
    }
    for (const auto& message : *messages) {
        ++tally.messages;
        if (!message.is_object()) {
            tally_content(message, tally);
            continue;
        }
        if (const json* content = detail::member(message, "content"); content != nullptr) {
            tally_content(*content, tally);
        }
        for (const char* key : {"tool_calls", "reasoning_content"}) {
            if (const json* extra = detail::member(message, key); extra != nullptr) {
                tally.chars += static_cast<int64_t>(detail::safe_dump(*extra).size());
            }
        }
    }
}

void tally_tools(const json* tools, Tally& tally) {
    if (tools != nullptr) {
        // Templates render tool definitions as JSON; the dump length is a fair proxy.
        tally.chars += static_cast<int64_t>(detail::safe_dump(*tools).size());
    }
}

}  // namespace

int64_t estimate_anthropic_tokens(const json& request) {
    Tally tally;
    if (const json* system = detail::member(request, "system"); system != nullptr) {
        ++tally.messages;
        tally_content(*system, tally);
    }
    tally_messages(detail::member(request, "messages"), tally);
    tally_tools(detail::member(request, "tools"), tally);
    return tally.tokens();
}

int64_t estimate_openai_chat_tokens(const json& body) {
    Tally tally;
    tally_messages(detail::member(body, "messages"), tally);
    tally_tools(detail::member(body, "tools"), tally);
    return tally.tokens();
}

Result<json> anthropic_to_tokenize_request(const json& request, const std::string& model) {
    // count_tokens bodies carry no max_tokens; the translator does not require it.
    auto translated = anthropic_to_openai(request);
    if (!translated) {
        return tl::unexpected(std::move(translated).error());
    }
    json& body = translated->body;
    json out = {{"model", model},
                {"messages", std::move(body["messages"])},
                {"add_generation_prompt", true}};
    if (body.contains("tools")) {
        out["tools"] = std::move(body["tools"]);
    }
    if (body.contains("chat_template_kwargs")) {
        out["chat_template_kwargs"] = std::move(body["chat_template_kwargs"]);
    }
    return out;
}

json count_tokens_response(int64_t input_tokens) {
    return {{"input_tokens", input_tokens < 0 ? 0 : input_tokens}};
}

}  // namespace helexa::wire
