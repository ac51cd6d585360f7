#include "helexa/gateway/metering.h"

#include <algorithm>
#include <cctype>
#include <string>

#include <fmt/format.h>

#include "helexa/common/error_envelope.h"

namespace helexa::gateway {
namespace {

std::optional<int64_t> positive_int(const nlohmann::json& body, const char* key) {
    auto it = body.find(key);
    if (it == body.end() || !it->is_number_integer()) {
        return std::nullopt;
    }
    int64_t v = it->get<int64_t>();
    return v > 0 ? std::optional<int64_t>(v) : std::nullopt;
}

int64_t ceil_tokens(uint64_t bytes) {
    return static_cast<int64_t>((bytes + kBytesPerToken - 1) / kBytesPerToken);
}

// Bytes of text in a content value: a string, or an array of parts carrying "text".
uint64_t content_bytes(const nlohmann::json& content, int depth = 0) {
    if (depth > 8) {
        return 0;
    }
    if (content.is_string()) {
        return content.get_ref<const std::string&>().size();
    }
    uint64_t total = 0;
    if (content.is_array()) {
        for (const auto& part : content) {
            total += content_bytes(part, depth + 1);
        }
    } else if (content.is_object()) {
        if (auto t = content.find("text"); t != content.end() && t->is_string()) {
            total += t->get_ref<const std::string&>().size();
        }
        if (auto c = content.find("content"); c != content.end()) {
            total += content_bytes(*c, depth + 1);
        }
    }
    return total;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

}  // namespace

int64_t max_output_tokens(const nlohmann::json& body, std::optional<int64_t> advertised_output) {
    if (body.is_object()) {
        for (const char* key : {"max_completion_tokens", "max_tokens", "max_output_tokens"}) {
            if (auto v = positive_int(body, key)) {
                return *v;
            }
        }
    }
    if (advertised_output && *advertised_output > 0) {
        return *advertised_output;
    }
    return kFallbackMaxOutput;
}

int64_t reservation_estimate(const nlohmann::json& body, size_t body_bytes,
                             std::optional<int64_t> advertised_output) {
    return ceil_tokens(body_bytes) + max_output_tokens(body, advertised_output);
}

int64_t estimate_prompt_tokens(const nlohmann::json& body) {
    if (!body.is_object()) {
        return 0;
    }
    uint64_t bytes = 0;
    if (auto m = body.find("messages"); m != body.end() && m->is_array()) {
        for (const auto& message : *m) {
            if (message.is_object()) {
                if (auto c = message.find("content"); c != message.end()) {
                    bytes += content_bytes(*c);
                }
            }
        }
    }
    if (auto p = body.find("prompt"); p != body.end()) {
        bytes += content_bytes(*p);
    }
    if (auto i = body.find("instructions"); i != body.end()) {
        bytes += content_bytes(*i);
    }
    if (auto in = body.find("input"); in != body.end()) {
        bytes += content_bytes(*in);
    }
    return ceil_tokens(bytes);
}

Status check_context(const nlohmann::json& body, const std::optional<ModelLimit>& limit) {
    if (!limit || !limit->context || *limit->context <= 0) {
        return ok();
    }
    const int64_t estimate = estimate_prompt_tokens(body);
    if (estimate > *limit->context) {
        return fail(context_length_exceeded_error(estimate, *limit->context));
    }
    return ok();
}

std::optional<std::string> advice_for_user_agent(std::string_view user_agent) {
    const std::string ua = lower(user_agent);
    if (ua.find("litellm") != std::string::npos) {
        return std::string(
            "litellm: set max_input_tokens for this model from GET /v1/models limit.context "
            "(and max_output_tokens from limit.output) so litellm trims the prompt before "
            "sending it");
    }
    if (ua.find("agent-zero") != std::string::npos || ua.find("agent zero") != std::string::npos ||
        ua.find("agent_zero") != std::string::npos || ua.find("agentzero") != std::string::npos) {
        return std::string(
            "Agent Zero: set the chat model's ctx_length to the limit.context advertised by "
            "GET /v1/models and lower ctx_history so history is summarized before it overflows");
    }
    if (ua.rfind("zed", 0) == 0 || ua.find("zed/") != std::string::npos ||
        ua.find(" zed") != std::string::npos) {
        return std::string(
            "Zed: set max_tokens for this model in the language_models settings to the "
            "limit.context advertised by GET /v1/models, or start a new thread");
    }
    return std::nullopt;
}

}  // namespace helexa::gateway
