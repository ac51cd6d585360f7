#include "helexa/common/error.h"

namespace helexa {

const ErrorCodeInfo& error_code_info(ErrorCode code) {
    // One row per code; the switch has no default so the compiler flags a missing row.
    static const ErrorCodeInfo kInvalidRequest{400, "invalid_request_error", std::nullopt,
                                               "invalid_request"};
    static const ErrorCodeInfo kInvalidJson{400, "invalid_request_error", "invalid_json",
                                            "invalid_json"};
    static const ErrorCodeInfo kContext{400, "invalid_request_error", "context_length_exceeded",
                                        "context_length_exceeded"};
    static const ErrorCodeInfo kVision{400, "invalid_request_error", "vision_unsupported",
                                       "vision_unsupported"};
    static const ErrorCodeInfo kChained{400, "invalid_request_error",
                                        "chained_conversation_not_supported",
                                        "chained_conversation_not_supported"};
    static const ErrorCodeInfo kApiKey{401, "invalid_request_error", "invalid_api_key",
                                       "invalid_api_key"};
    static const ErrorCodeInfo kNotFound{404, "invalid_request_error", "not_found", "not_found"};
    static const ErrorCodeInfo kModelNotFound{404, "invalid_request_error", "model_not_found",
                                              "model_not_found"};
    static const ErrorCodeInfo kMethod{405, "invalid_request_error", "method_not_allowed",
                                       "method_not_allowed"};
    static const ErrorCodeInfo kTooLarge{413, "invalid_request_error", "payload_too_large",
                                         "payload_too_large"};
    static const ErrorCodeInfo kUnprocessable{422, "invalid_request_error",
                                              "unprocessable_entity", "unprocessable_entity"};
    static const ErrorCodeInfo kTemplate{422, "invalid_request_error", "template_render_failed",
                                         "template_render_failed"};
    static const ErrorCodeInfo kRateLimited{429, "rate_limit_error", "rate_limit_exceeded",
                                            "rate_limited"};
    static const ErrorCodeInfo kQuota{429, "insufficient_quota", "insufficient_quota",
                                      "insufficient_quota"};
    static const ErrorCodeInfo kOverloaded{503, "rate_limit_error", "rate_limit_exceeded",
                                           "overloaded"};
    static const ErrorCodeInfo kUnavailable{503, "api_error", "service_unavailable",
                                            "service_unavailable"};
    static const ErrorCodeInfo kRecovering{503, "api_error", "model_recovering",
                                           "model_recovering"};
    static const ErrorCodeInfo kVram{503, "api_error", "insufficient_vram", "insufficient_vram"};
    static const ErrorCodeInfo kCuda{503, "api_error", "cuda_unavailable", "cuda_unavailable"};
    static const ErrorCodeInfo kUpstream{502, "api_error", "upstream_error", "upstream_error"};
    static const ErrorCodeInfo kTimeout{504, "api_error", "timeout", "timeout"};
    static const ErrorCodeInfo kCancelled{499, "api_error", "cancelled", "cancelled"};
    static const ErrorCodeInfo kConfig{500, "api_error", "config_error", "config_error"};
    static const ErrorCodeInfo kIo{500, "api_error", "io_error", "io_error"};
    static const ErrorCodeInfo kInternal{500, "api_error", std::nullopt, "internal"};
    switch (code) {
        case ErrorCode::kInvalidRequest: return kInvalidRequest;
        case ErrorCode::kInvalidJson: return kInvalidJson;
        case ErrorCode::kContextLengthExceeded: return kContext;
        case ErrorCode::kVisionUnsupported: return kVision;
        case ErrorCode::kChainedConversationUnsupported: return kChained;
        case ErrorCode::kInvalidApiKey: return kApiKey;
        case ErrorCode::kNotFound: return kNotFound;
        case ErrorCode::kModelNotFound: return kModelNotFound;
        case ErrorCode::kMethodNotAllowed: return kMethod;
        case ErrorCode::kPayloadTooLarge: return kTooLarge;
        case ErrorCode::kUnprocessable: return kUnprocessable;
        case ErrorCode::kTemplateRenderFailed: return kTemplate;
        case ErrorCode::kRateLimited: return kRateLimited;
        case ErrorCode::kInsufficientQuota: return kQuota;
        case ErrorCode::kOverloaded: return kOverloaded;
        case ErrorCode::kServiceUnavailable: return kUnavailable;
        case ErrorCode::kModelRecovering: return kRecovering;
        case ErrorCode::kInsufficientVram: return kVram;
        case ErrorCode::kCudaUnavailable: return kCuda;
        case ErrorCode::kUpstream: return kUpstream;
        case ErrorCode::kTimeout: return kTimeout;
        case ErrorCode::kCancelled: return kCancelled;
        case ErrorCode::kConfig: return kConfig;
        case ErrorCode::kIo: return kIo;
        case ErrorCode::kInternal: return kInternal;
    }
    return kInternal;
}

std::string Error::full_message() const {
    std::string out;
    for (auto it = context_.rbegin(); it != context_.rend(); ++it) {
        out += *it;
        out += ": ";
    }
    out += message_;
    return out;
}

}  // namespace helexa
