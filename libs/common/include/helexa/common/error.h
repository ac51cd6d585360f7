// Error values shared by every library: a closed ErrorCode that maps 1:1 to an HTTP status and
// the OpenAI envelope's `type` and `code`, a message, and context appended while propagating.
// Thread-safety: plain values; copy freely.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace helexa {

// Every way a request or an operation can fail. Switch over it without `default` so a new code
// forces every mapping to be revisited.
enum class ErrorCode {
    kInvalidRequest,            // 400 invalid_request_error, code null
    kInvalidJson,               // 400 invalid_request_error / invalid_json
    kContextLengthExceeded,     // 400 invalid_request_error / context_length_exceeded
    kVisionUnsupported,         // 400 invalid_request_error / vision_unsupported
    kChainedConversationUnsupported,  // 400 invalid_request_error / chained_conversation_not_supported
    kInvalidApiKey,             // 401 invalid_request_error / invalid_api_key
    kNotFound,                  // 404 invalid_request_error / not_found (unknown path)
    kModelNotFound,             // 404 invalid_request_error / model_not_found
    kMethodNotAllowed,          // 405 invalid_request_error / method_not_allowed
    kPayloadTooLarge,           // 413 invalid_request_error / payload_too_large
    kUnprocessable,             // 422 invalid_request_error / unprocessable_entity
    kTemplateRenderFailed,      // 422 invalid_request_error / template_render_failed
    kRateLimited,               // 429 rate_limit_error / rate_limit_exceeded (+Retry-After)
    kInsufficientQuota,         // 429 insufficient_quota / insufficient_quota (no Retry-After)
    kOverloaded,                // 503 rate_limit_error / rate_limit_exceeded (+Retry-After)
    kServiceUnavailable,        // 503 api_error / service_unavailable (+Retry-After)
    kModelRecovering,           // 503 api_error / model_recovering (+Retry-After)
    kInsufficientVram,          // 503 api_error / insufficient_vram (+Retry-After)
    kCudaUnavailable,           // 503 api_error / cuda_unavailable
    kUpstream,                  // 502 api_error / upstream_error
    kTimeout,                   // 504 api_error / timeout
    kCancelled,                 // 499 (client closed request); never sent, the client is gone
    kConfig,                    // 500 api_error / config_error (start-up: exit code 2)
    kIo,                        // 500 api_error / io_error
    kInternal,                  // 500 api_error, code null
};

struct ErrorCodeInfo {
    int http_status;
    std::string_view type;                 // envelope `type`
    std::optional<std::string_view> code;  // envelope `code`; nullopt = JSON null
    std::string_view name;                 // stable snake_case name for logs
};

// The one table mapping ErrorCode to HTTP and envelope fields.
const ErrorCodeInfo& error_code_info(ErrorCode code);

// A failure: what kind, what happened, and where it happened (outermost context last).
class Error {
public:
    Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

    ErrorCode code() const { return code_; }
    const std::string& message() const { return message_; }
    const std::vector<std::string>& context() const { return context_; }

    // Retry-After seconds for transient conditions (set by whoever knows the wait).
    std::optional<int64_t> retry_after_secs() const { return retry_after_secs_; }
    Error& with_retry_after(int64_t secs) & {
        retry_after_secs_ = secs;
        return *this;
    }
    Error&& with_retry_after(int64_t secs) && {
        retry_after_secs_ = secs;
        return std::move(*this);
    }

    // Diagnostic extras that ride inside the envelope's error object (e.g. prompt_len, max).
    const nlohmann::json& extras() const { return extras_; }
    Error& with_extra(const std::string& key, nlohmann::json value) & {
        extras_[key] = std::move(value);
        return *this;
    }
    Error&& with_extra(const std::string& key, nlohmann::json value) && {
        extras_[key] = std::move(value);
        return std::move(*this);
    }

    // Envelope `param` (the offending request field), when known.
    const std::optional<std::string>& param() const { return param_; }
    Error&& with_param(std::string param) && {
        param_ = std::move(param);
        return std::move(*this);
    }

    // Appends "while doing X" context as the error propagates outward.
    Error&& with_context(std::string ctx) && {
        context_.push_back(std::move(ctx));
        return std::move(*this);
    }
    Error& add_context(std::string ctx) & {
        context_.push_back(std::move(ctx));
        return *this;
    }

    // "outer: inner: message" — the full chain, for logs and for 400s that carry the cause.
    std::string full_message() const;

private:
    ErrorCode code_;
    std::string message_;
    std::vector<std::string> context_;
    std::optional<int64_t> retry_after_secs_;
    std::optional<std::string> param_;
    nlohmann::json extras_ = nlohmann::json::object();
};

}  // namespace helexa
