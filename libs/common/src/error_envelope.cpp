#include "helexa/common/error_envelope.h"

#include <string>

namespace helexa {
namespace {

bool is_internal(ErrorCode code) {
    return code == ErrorCode::kInternal || code == ErrorCode::kIo || code == ErrorCode::kConfig;
}

std::string client_message(const Error& error, bool expose_internal) {
    if (is_internal(error.code()) && !expose_internal) {
        return "internal server error";
    }
    return error.full_message();
}

}  // namespace

Envelope openai_envelope(const Error& error, bool expose_internal) {
    const ErrorCodeInfo& info = error_code_info(error.code());
    nlohmann::json inner = nlohmann::json::object();
    // Extras first so the four standard fields always win over a same-named extra.
    for (const auto& [key, value] : error.extras().items()) {
        inner[key] = value;
    }
    inner["message"] = client_message(error, expose_internal);
    inner["type"] = std::string(info.type);
    inner["code"] = info.code ? nlohmann::json(std::string(*info.code)) : nlohmann::json(nullptr);
    inner["param"] = error.param() ? nlohmann::json(*error.param()) : nlohmann::json(nullptr);
    Envelope env;
    env.http_status = info.http_status;
    env.body = nlohmann::json{{"error", std::move(inner)}};
    env.retry_after_secs = error.retry_after_secs();
    return env;
}

std::string_view anthropic_error_type(ErrorCode code) {
    switch (code) {
        case ErrorCode::kInvalidRequest:
        case ErrorCode::kInvalidJson:
        case ErrorCode::kContextLengthExceeded:
        case ErrorCode::kVisionUnsupported:
        case ErrorCode::kChainedConversationUnsupported:
        case ErrorCode::kMethodNotAllowed:
        case ErrorCode::kUnprocessable:
        case ErrorCode::kTemplateRenderFailed:
            return "invalid_request_error";
        case ErrorCode::kInvalidApiKey: return "authentication_error";
        case ErrorCode::kNotFound:
        case ErrorCode::kModelNotFound:
            return "not_found_error";
        case ErrorCode::kPayloadTooLarge: return "request_too_large";
        case ErrorCode::kRateLimited:
        case ErrorCode::kInsufficientQuota:
            return "rate_limit_error";
        case ErrorCode::kOverloaded:
        case ErrorCode::kServiceUnavailable:
        case ErrorCode::kModelRecovering:
        case ErrorCode::kInsufficientVram:
        case ErrorCode::kCudaUnavailable:
            return "overloaded_error";
        case ErrorCode::kUpstream:
        case ErrorCode::kTimeout:
        case ErrorCode::kCancelled:
        case ErrorCode::kConfig:
        case ErrorCode::kIo:
        case ErrorCode::kInternal:
            return "api_error";
    }
    return "api_error";
}

Envelope anthropic_envelope(const Error& error, bool expose_internal) {
    Envelope env;
    env.http_status = error_code_info(error.code()).http_status;
    // Anthropic clients retry on 529 overloaded_error; we keep the OpenAI-side status (503) since
    // both SDKs retry 503 as well and operators' dashboards key on it.
    env.body = nlohmann::json{
        {"type", "error"},
        {"error",
         {{"type", std::string(anthropic_error_type(error.code()))},
          {"message", client_message(error, expose_internal)}}}};
    env.retry_after_secs = error.retry_after_secs();
    return env;
}

Error invalid_api_key_error() {
    return Error(ErrorCode::kInvalidApiKey, "invalid or missing API key");
}

Error rate_limit_error(std::string message, int64_t retry_after_secs) {
    return Error(ErrorCode::kRateLimited, std::move(message)).with_retry_after(retry_after_secs);
}

Error insufficient_quota_error(std::string message) {
    return Error(ErrorCode::kInsufficientQuota, std::move(message));
}

Error context_length_exceeded_error(int64_t prompt_len, int64_t max) {
    return Error(ErrorCode::kContextLengthExceeded,
                 "maximum context length is " + std::to_string(max) + " tokens, but the prompt has " +
                     std::to_string(prompt_len) + " tokens")
        .with_extra("prompt_len", prompt_len)
        .with_extra("max", max);
}

Error service_unavailable_error(std::string message, int64_t retry_after_secs) {
    return Error(ErrorCode::kServiceUnavailable, std::move(message))
        .with_retry_after(retry_after_secs);
}

}  // namespace helexa
