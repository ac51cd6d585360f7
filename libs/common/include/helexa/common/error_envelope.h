// The OpenAI error envelope every service answers with, and Anthropic's shape for /v1/messages.
//   {"error":{"message","type","code","param", ...extras}} + status + optional Retry-After.
// Pure functions; no I/O. The HTTP layer (net) turns an Envelope into a response.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "helexa/common/error.h"

namespace helexa {

struct Envelope {
    int http_status = 500;
    nlohmann::json body;                    // the JSON body to send
    std::optional<int64_t> retry_after_secs;  // value of the Retry-After header, if any
};

// OpenAI envelope for an Error. Internal errors (kInternal, kIo, kConfig) carry a generic message
// unless `expose_internal` is set, so no internal detail leaks to clients.
Envelope openai_envelope(const Error& error, bool expose_internal = false);

// Anthropic error shape: {"type":"error","error":{"type": <anthropic type>, "message"}}.
Envelope anthropic_envelope(const Error& error, bool expose_internal = false);

// Anthropic `error.type` for a code: invalid_request_error | authentication_error |
// not_found_error | request_too_large | rate_limit_error | overloaded_error | api_error.
std::string_view anthropic_error_type(ErrorCode code);

// Named constructors for the standard "no" answers (the original's #63 codes).
Error invalid_api_key_error();
Error rate_limit_error(std::string message, int64_t retry_after_secs);
Error insufficient_quota_error(std::string message);
Error context_length_exceeded_error(int64_t prompt_len, int64_t max);
Error service_unavailable_error(std::string message, int64_t retry_after_secs);

}  // namespace helexa
