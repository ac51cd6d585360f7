// Edge estimates (features §3.5, §3.6, D7, D8): the reservation upper bound, the prompt estimate
// used for context pre-validation, and the advisory X-Helexa-Advice header by User-Agent.
// cortex has no tokenizer: both estimates count ~4 bytes per token. The reservation counts the
// whole body (a deliberate over-estimate, settled to actual later); the context check counts
// message text only (a deliberate under-estimate, so only gross overages are refused and the
// neuron stays the exact wall).
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "helexa/common/result.h"
#include "helexa/gateway/fleet.h"

namespace helexa::gateway {

// D7: reservation fallback when neither the request nor the model bounds the output.
inline constexpr int64_t kFallbackMaxOutput = 8192;
inline constexpr int64_t kBytesPerToken = 4;

// max_completion_tokens, else max_tokens, else max_output_tokens (Responses), else the model's
// advertised limit.output, else kFallbackMaxOutput. Non-positive or non-integer values are
// ignored.
int64_t max_output_tokens(const nlohmann::json& body, std::optional<int64_t> advertised_output);

// ceil(body_bytes / 4) + max output.
int64_t reservation_estimate(const nlohmann::json& body, size_t body_bytes,
                             std::optional<int64_t> advertised_output);

// ~4 bytes/token over message text: chat `messages[].content` (strings and text parts),
// completions `prompt`, Responses `instructions` and `input` (string or items' text). A
// completions prompt of token ids (an array of integers, or one such array in an array) counts
// exactly: one token an id.
int64_t estimate_prompt_tokens(const nlohmann::json& body);

// 400 context_length_exceeded (extras prompt_len, max) when the estimate exceeds
// limit.context; ok when no context limit is known.
Status check_context(const nlohmann::json& body, const std::optional<ModelLimit>& limit);

// What the proxy needs from an OpenAI request body, read in one SAX pass without building a
// DOM (a DOM parse was ~6% of cortex's CPU per proxied request). Top-level fields only; when a key
// repeats, the last occurrence wins (as in a DOM parse).
struct RequestSummary {
    bool is_object = false;            // the top-level value is an object
    std::optional<std::string> model;  // "model" when it is a string
    bool has_model = false;            // "model" is present (any type)
    std::optional<bool> stream;        // "stream" when it is a boolean
    bool has_stream = false;           // "stream" is present and not null
    bool has_tools = false;            // "tools" is present
    // max_completion_tokens / max_tokens / max_output_tokens when positive integers.
    std::optional<int64_t> max_completion_tokens;
    std::optional<int64_t> max_tokens;
    std::optional<int64_t> max_output_tokens;
};

// kInvalidJson (the same message as net::Request::json_body) when `body` is not JSON.
Result<RequestSummary> summarize_request(std::string_view body);

// max_output_tokens() and reservation_estimate() from a summary (same rules as the DOM forms).
int64_t max_output_tokens(const RequestSummary& summary, std::optional<int64_t> advertised_output);
int64_t reservation_estimate(const RequestSummary& summary, size_t body_bytes,
                             std::optional<int64_t> advertised_output);

// Whether a body of `body_bytes` bytes can exceed `limit`'s context at all: the prompt estimate
// counts decoded string bytes of the body, never more than its raw size, so when
// ceil(body_bytes / 4) fits, check_context() cannot fail and the body need not be parsed.
bool may_exceed_context(size_t body_bytes, const std::optional<ModelLimit>& limit);

// Advice for known clients (litellm, Agent Zero, Zed); nullopt for everyone else.
std::optional<std::string> advice_for_user_agent(std::string_view user_agent);

inline constexpr std::string_view kHeaderAdvice = "x-helexa-advice";

}  // namespace helexa::gateway
