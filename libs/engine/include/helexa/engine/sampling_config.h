// Resolved sampling settings for one request, and the model defaults they fall back to.
// When to use: the scheduler resolves a request's SamplingParams once at submit time
// (request value -> the model's generation_config.json -> the documented fallbacks below) and
// the sampler then reads only the resolved SamplingConfig.
// Thread-safety: plain values; resolve_sampling is a pure function.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "helexa/common/result.h"
#include "helexa/engine/serving.h"

namespace helexa::engine {

// Documented fallbacks, used when neither the request nor generation_config.json sets a value.
inline constexpr float kDefaultTemperature = 1.0F;         // OpenAI's default
inline constexpr float kDefaultTopP = 1.0F;                // no nucleus cut
inline constexpr int32_t kDefaultTopK = 0;                 // 0 = disabled
inline constexpr float kDefaultMinP = 0.0F;                // disabled
inline constexpr float kDefaultRepetitionPenalty = 1.1F;   // the original's fixed value
inline constexpr int64_t kDefaultRepetitionWindow = 64;    // last 64 generated tokens
inline constexpr int64_t kDefaultMaxTokens = 8192;         // clipped to the context left
// Below this temperature sampling is greedy (argmax), which is also what 0 means.
inline constexpr float kGreedyTemperature = 1e-5F;

// The model's generation_config.json values (all optional), plus its EOS ids.
struct GenerationDefaults {
    std::optional<bool> do_sample;  // false -> greedy unless the request sets a temperature
    std::optional<float> temperature;
    std::optional<float> top_p;
    std::optional<int32_t> top_k;
    std::optional<float> min_p;
    std::optional<float> repetition_penalty;
    std::optional<int64_t> max_new_tokens;
    std::vector<int32_t> eos_token_ids;  // generation_config eos_token_id (int or list)
};

// Reads the fields above from a parsed generation_config.json. Unknown keys are ignored;
// a known key of the wrong type is kInvalidRequest naming the key (never a crash).
Result<GenerationDefaults> generation_defaults_from_json(const nlohmann::json& config);

struct SamplingConfig {
    float temperature = kDefaultTemperature;  // < kGreedyTemperature -> greedy
    float top_p = kDefaultTopP;
    int32_t top_k = kDefaultTopK;             // 0 = disabled
    float min_p = kDefaultMinP;
    float repetition_penalty = kDefaultRepetitionPenalty;  // 1 = off
    int64_t repetition_window = kDefaultRepetitionWindow;
    float presence_penalty = 0.0F;
    float frequency_penalty = 0.0F;
    std::optional<uint64_t> seed;
    std::map<int32_t, float> logit_bias;
    int64_t max_tokens = kDefaultMaxTokens;  // already clipped to the context left
    std::vector<std::string> stop;           // non-empty strings only
    bool ignore_eos = false;                 // SamplingParams::ignore_eos

    bool greedy() const { return temperature < kGreedyTemperature || top_k == 1; }
};

// Resolves request -> defaults -> fallbacks and validates ranges.
//   vocab_size: logit_bias keys must lie in [0, vocab_size).
//   context_left: tokens the sequence may still add (context limit - prompt length), >= 1.
// Errors: kInvalidRequest naming the field (negative temperature, top_p outside (0, 1], ...).
Result<SamplingConfig> resolve_sampling(const SamplingParams& request,
                                        const GenerationDefaults& defaults, int64_t vocab_size,
                                        int64_t context_left);

}  // namespace helexa::engine
