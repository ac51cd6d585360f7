// Validation and mapping of inference request bodies onto the engine: OpenAI chat completions and
// text completions -> what to render, SamplingParams (D13: temperature, top_p, stop,
// frequency_penalty, presence_penalty, seed, logit_bias, max_tokens / max_completion_tokens, plus
// top_k, min_p, repetition_penalty), streaming options and how reasoning is shown.
//
// Reasoning display: `x-include-thinking: 1|true|yes` -> wrapped in its markers; else
// `include_reasoning: true`, a `reasoning_effort` other than "none", or a `reasoning` object
// (not {enabled:false} / {exclude:true}) -> `reasoning_content` fields; else hidden, and then
// chat_template_kwargs.enable_thinking defaults to false unless the request sets it.
// String tool-call arguments in assistant messages are parsed into objects before rendering
// (templates iterate them); strings that are not JSON objects are kept.
// Every error is kInvalidRequest naming the field (param), never an exception.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "helexa/common/result.h"
#include "helexa/engine/serving.h"
#include "helexa/node/projection.h"

namespace helexa::node {

// `1`, `true`, `yes` (ASCII case-insensitive) -> true.
bool header_truthy(std::optional<std::string_view> value);

struct ChatPlan {
    std::string model;
    bool stream = false;
    engine::ChatRenderInput render;
    engine::SamplingParams sampling;
    ReasoningDisplay reasoning = ReasoningDisplay::kHidden;
    bool has_images = false;  // an image_url / input_image part somewhere in the messages
    bool has_tools = false;
};

// Sampling fields shared by chat and completions.
Result<engine::SamplingParams> parse_sampling(const nlohmann::json& body);

// `include_thinking` is the x-include-thinking header.
Result<ChatPlan> parse_chat_request(const nlohmann::json& body, bool include_thinking);

struct CompletionPlan {
    std::string model;
    bool stream = false;
    std::string prompt;
    // The prompt given as token ids (OpenAI's other prompt form), used as they are: no
    // tokenizer pass (benchmarks send prompts of an exact length this way).
    std::optional<std::vector<int32_t>> prompt_tokens;
    engine::SamplingParams sampling;
};

// `prompt` must be a string, an array of exactly one string, a non-empty array of token ids
// (integers in [0, 2^31)) or an array of exactly one such array.
Result<CompletionPlan> parse_completion_request(const nlohmann::json& body);

}  // namespace helexa::node
