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
// completions `prompt`, Responses `instructions` and `input` (string or items' text).
int64_t estimate_prompt_tokens(const nlohmann::json& body);

// 400 context_length_exceeded (extras prompt_len, max) when the estimate exceeds
// limit.context; ok when no context limit is known.
Status check_context(const nlohmann::json& body, const std::optional<ModelLimit>& limit);

// Advice for known clients (litellm, Agent Zero, Zed); nullopt for everyone else.
std::optional<std::string> advice_for_user_agent(std::string_view user_agent);

inline constexpr std::string_view kHeaderAdvice = "x-helexa-advice";

}  // namespace helexa::gateway
