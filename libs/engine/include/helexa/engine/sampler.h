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
    // widest_vectors: the vocabulary passes run eight floats at a time where the CPU has AVX2
    // (the same bits as four at a time: sampler_simd.h); false keeps them four-wide everywhere
    // (tests and sampler_bench compare the two).
    explicit Sampler(bool widest_vectors = true) : wide_(widest_vectors) {}

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
    // Either fills candidates_ with the surviving tokens and their normalised probabilities, or,
    // when no mask cuts the vocabulary (temperature alone), leaves every token's weight in
    // weights_ (probability = weight / weight_total_) and sets all_weights_: a 150k-entry
    // candidate list would cost more than the draw.
    Status build_candidates(std::span<float> logits, const SamplingConfig& cfg);
    // weights_ = exp((logit - max_l) * inv_t) per token (0 when not finite), block_totals_,
    // weight_total_; sets all_weights_.
    void compute_weights(std::span<const float> logits, float max_l, float inv_t);
    // The token whose cumulative weight (in id order) first passes r x weight_total_.
    int32_t draw_from_weights(double r) const;
    // candidates_ = the k largest finite logits (ties: lower id), values still logits.
    void select_top_k(std::span<const float> logits, size_t k);
    // candidates_ = a superset of the top_p nucleus from weights_, with probabilities.
    void collect_nucleus(float top_p);

    bool wide_ = true;
    std::vector<TokenProb> candidates_;
    // Tokens per block of block_totals_: a draw walks ~150 block sums, then one block.
    static constexpr size_t kWeightBlock = 1024;
    std::vector<float> weights_;
    std::vector<double> block_totals_;
    double weight_total_ = 0.0;
    bool all_weights_ = false;
};

}  // namespace helexa::engine
