// The sampler's passes over a whole vocabulary row (the maximum, the weights relative to it, and
// top-k's scan for logits above its current k-th), vectorised four floats at a time everywhere
// and eight at a time where the CPU has AVX2.
// Both widths give the same bits: the eight-wide pass keeps the four-wide one's accumulation
// order (its two halves are the four-wide pass's two running sums) and uses no fused multiply-add,
// so a seeded request draws the same tokens whichever pass runs.
#pragma once

#include <cstddef>
#include <span>

namespace helexa::engine::sampler_simd {

// Whether the eight-wide passes can run on this CPU (x86-64 with AVX2).
bool wide_available();

// The largest logit, ignoring NaN (a comparison with NaN is false); +inf wins if present.
float max_logit(std::span<const float> logits, bool wide);

// weights[i] = exp((logits[i] - max_l) * inv_t) for i in [begin, end), exactly 0 below e^-87 and
// where the logit is not finite; returns their sum (f32 lanes over runs of 64, folded into a
// double per run).
double weight_block(const float* logits, float* weights, size_t begin, size_t end, float max_l,
                    float inv_t, bool wide);

// The first index in [begin, logits.size()) whose logit is greater than `threshold` (NaN never
// is), or logits.size(): top-k's scan skips the vocabulary's body eight or four at a time.
size_t first_above(std::span<const float> logits, size_t begin, float threshold, bool wide);

}  // namespace helexa::engine::sampler_simd
