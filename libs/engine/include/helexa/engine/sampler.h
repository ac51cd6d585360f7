// Turns one row of logits into a token id under a resolved SamplingConfig.
// Order of operations (fixed, documented): logit bias -> repetition penalty (HF-style, over the
// last `repetition_window` generated tokens) -> presence/frequency penalties (OpenAI-style,
// over all generated tokens) -> greedy argmax, or temperature -> top-k -> softmax -> top-p ->
// min-p -> renormalise -> one draw from the request's own RNG.
// Each request owns its SamplerRng, which advances exactly once per sampled token, so a seeded
// request gives the same tokens whatever else shares its batch.
// Thread-safety: Sampler holds scratch buffers; use one per thread (the scheduler owns one).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "helexa/common/result.h"
#include "helexa/engine/sampling_config.h"

namespace helexa::engine {

// xoshiro256** seeded through splitmix64: fixed algorithm, so sequences are identical across
// standard libraries (std:: distributions are not).
class SamplerRng {
public:
    explicit SamplerRng(uint64_t seed = 0);
    uint64_t next_u64();
    // Uniform in [0, 1) with 53 bits of precision.
    double next_unit();

private:
    uint64_t s_[4];
};

// A token and its final probability after every mask (for tests and logprobs later).
struct TokenProb {
    int32_t id = 0;
    float prob = 0.0F;
};

class Sampler {
public:
    // Samples one token. `logits` is one row [vocab]; it is modified in place (penalties,
    // temperature). `generated` holds the tokens this request generated so far, oldest first.
    // Errors: kInternal when no logit is finite (the message carries nan/inf counts).
    Result<int32_t> sample(std::span<float> logits, const SamplingConfig& cfg,
                           std::span<const int32_t> generated, SamplerRng& rng);

    // The distribution `sample` would draw from (greedy: the argmax with probability 1),
    // sorted by descending probability, zero-probability tokens omitted.
    Result<std::vector<TokenProb>> distribution(std::span<float> logits, const SamplingConfig& cfg,
                                                std::span<const int32_t> generated);

    // Applies bias and penalties in place (the first three stages above).
    static void apply_penalties(std::span<float> logits, const SamplingConfig& cfg,
                                std::span<const int32_t> generated);

private:
    // Fills candidates_ with the surviving tokens and normalised probabilities, descending.
    Status build_candidates(std::span<float> logits, const SamplingConfig& cfg);

    std::vector<TokenProb> candidates_;
};

}  // namespace helexa::engine
