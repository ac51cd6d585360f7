// Token counting for Anthropic's POST /v1/messages/count_tokens and cortex's context check.
//
// cortex has no tokenizer. It answers count_tokens exactly by asking a neuron that serves the
// model (POST /tokenize in chat form, built by anthropic_to_tokenize_request) and falls back to
// estimate_anthropic_tokens when no neuron can answer. estimate_openai_chat_tokens serves the
// edge context pre-validation (features §3.6) over an OpenAI body (or a translated one).
//
// The estimate is ~4 characters per token (rounded up) over everything the chat template
// renders: system text, message text, tool calls and results, and tool definitions (name,
// description, schema JSON), plus kPerMessageOverheadTokens per message for role markers and
// kImageTokens per image (the real cost depends on the image size, which we do not decode).
// It deliberately errs high for code/JSON-heavy prompts, the safe side for a context check.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

#include "helexa/common/result.h"

namespace helexa::wire {

inline constexpr int64_t kCharsPerToken = 4;
inline constexpr int64_t kPerMessageOverheadTokens = 4;
inline constexpr int64_t kImageTokens = 1024;

// Estimate for an Anthropic request body (system, messages, tools). Lenient: it never fails;
// malformed parts count as their JSON text.
int64_t estimate_anthropic_tokens(const nlohmann::json& request);

// Estimate for an OpenAI chat request body (messages, tools).
int64_t estimate_openai_chat_tokens(const nlohmann::json& body);

// The neuron's /tokenize chat form for an Anthropic request, rendered exactly as inference
// would: {model, messages, tools?, chat_template_kwargs?, add_generation_prompt: true}.
// `model` is the concrete model id to ask for (after alias resolution). Fails like
// anthropic_to_openai on a malformed request.
Result<nlohmann::json> anthropic_to_tokenize_request(const nlohmann::json& request,
                                                     const std::string& model);

// The count_tokens answer: {"input_tokens": n}.
nlohmann::json count_tokens_response(int64_t input_tokens);

}  // namespace helexa::wire
