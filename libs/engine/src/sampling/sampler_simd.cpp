#include "sampler_simd.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HELEXA_SAMPLER_AVX2 1
#endif

namespace helexa::engine::sampler_simd {
namespace {

// Four floats at a time through the compilers' vector extension (GCC and Clang; SSE2 on
// x86-64, NEON on Arm): the weight pass over a 150k-entry vocabulary is the sampler's whole cost,
// and neither compiler vectorises it from scalar code without -ffast-math (std::exp stays a libm
// call per element).
using F32x4 = float __attribute__((vector_size(16)));
using I32x4 = int32_t __attribute__((vector_size(16)));

F32x4 splat(float v) {
    return F32x4{v, v, v, v};
}

// The polynomial's constants, shared by both widths.
constexpr float kClamp = -87.0F;
constexpr float kLog2e = 1.44269504F;
constexpr float kRound = 12582912.0F;  // 1.5 * 2^23
constexpr float kLn2Hi = 0.693359375F;
constexpr float kLn2Lo = -2.12194440e-4F;
constexpr float kP[6] = {1.9875691500e-4F, 1.3981999507e-3F, 8.3334519073e-3F,
                         4.1665795894e-2F, 1.6666665459e-1F, 5.0000001201e-1F};

// exp(x) for the sampler's arguments, x = (logit - max) / temperature <= 0, to ~1 ulp: Cody-Waite
// range reduction to |r| <= ln2 / 2, a degree-6 polynomial, the power of two put in the exponent
// bits. Below -87, where exp leaves the normal floats, x is clamped (the caller zeroes those).
F32x4 exp_nonpositive(F32x4 x) {
    const I32x4 low = x < splat(kClamp);
    x = reinterpret_cast<F32x4>((low & reinterpret_cast<I32x4>(splat(kClamp))) |
                                (~low & reinterpret_cast<I32x4>(x)));
    // n = round(x / ln2) by the 1.5 * 2^23 trick: adds and subtracts, no rounding-mode call.
    const F32x4 n = (x * splat(kLog2e) + splat(kRound)) - splat(kRound);
    const F32x4 r = (x - n * splat(kLn2Hi)) - n * splat(kLn2Lo);  // ln2 in two parts
    F32x4 p = splat(kP[0]);
    for (int k = 1; k < 6; ++k) {
        p = p * r + splat(kP[k]);
    }
    p = p * (r * r) + r + splat(1.0F);
    const I32x4 biased = (__builtin_convertvector(n, I32x4) + 127) << 23;
    return p * reinterpret_cast<F32x4>(biased);
}

// weights = exp((logits - max_l) * inv_t); exactly 0 below e^-87 (~1.6e-38, the end of the
// normal floats: a token that far below the top has no probability a float can carry) and where
// the logit is not finite (banned with -inf, or NaN: the comparison is false for both).
F32x4 weights_of(F32x4 logits, float max_l, float inv_t) {
    const F32x4 x = (logits - splat(max_l)) * splat(inv_t);
    const I32x4 usable = x >= splat(kClamp);
    return reinterpret_cast<F32x4>(usable & reinterpret_cast<I32x4>(exp_nonpositive(x)));
}

double fold(F32x4 lanes) {
    return (static_cast<double>(lanes[0]) + static_cast<double>(lanes[1])) +
           (static_cast<double>(lanes[2]) + static_cast<double>(lanes[3]));
}

// Entries of a run summed in f32 lanes before the fold into a double (<= 16 terms a lane: ~1e-6
// relative at worst); a vector of doubles would live in memory on SSE2 and make the loop one long
// store-to-load chain.
constexpr size_t kRun = 64;

// [i, end) past the last whole group of four: one entry at a time.
double weight_tail(const float* logits, float* weights, size_t i, size_t end, float max_l,
                   float inv_t) {
    double total = 0.0;
    for (; i < end; ++i) {
        const F32x4 w = weights_of(splat(logits[i]), max_l, inv_t);
        weights[i] = w[0];
        total += static_cast<double>(w[0]);
    }
    return total;
}

// The end of a run both widths share: the last group of four (when the run ends on one) added to
// `lanes`, then the two running sums folded into a double; i ends past that group.
double finish_run(const float* logits, float* weights, size_t& i, size_t run_end, F32x4 lanes,
                  F32x4 lanes2, float max_l, float inv_t) {
    for (; i + 4 <= run_end; i += 4) {
        F32x4 l;
        std::memcpy(&l, &logits[i], sizeof(l));
        const F32x4 w = weights_of(l, max_l, inv_t);
        std::memcpy(&weights[i], &w, sizeof(w));
        lanes += w;
    }
    lanes += lanes2;
    return fold(lanes);
}

float max_logit_4(std::span<const float> logits) {
    const float neg_inf = -std::numeric_limits<float>::infinity();
    // Two independent running maxima (the select is a 3-op dependency chain per vector).
    F32x4 lanes[2] = {splat(neg_inf), splat(neg_inf)};
    const size_t n = logits.size();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int k = 0; k < 2; ++k) {
            F32x4 v;
            std::memcpy(&v, &logits[i + 4 * static_cast<size_t>(k)], sizeof(v));
            const I32x4 greater = v > lanes[k];
            lanes[k] = reinterpret_cast<F32x4>((greater & reinterpret_cast<I32x4>(v)) |
                                               (~greater & reinterpret_cast<I32x4>(lanes[k])));
        }
    }
    float m = neg_inf;
    for (; i < n; ++i) {
        m = logits[i] > m ? logits[i] : m;
    }
    for (const F32x4& v : lanes) {
        for (int j = 0; j < 4; ++j) {
            m = v[j] > m ? v[j] : m;
        }
    }
    return m;
}

double weight_block_4(const float* logits, float* weights, size_t begin, size_t end, float max_l,
                      float inv_t) {
    double total = 0.0;
    size_t i = begin;
    while (i + 4 <= end) {
        F32x4 lanes = splat(0.0F);
        F32x4 lanes2 = splat(0.0F);  // a second chain: the adds' latency, not their count
        const size_t run_end = std::min(end, i + kRun);
        for (; i + 8 <= run_end; i += 8) {
            F32x4 l;
            F32x4 l2;
            std::memcpy(&l, &logits[i], sizeof(l));
            std::memcpy(&l2, &logits[i + 4], sizeof(l2));
            const F32x4 w = weights_of(l, max_l, inv_t);
            const F32x4 w2 = weights_of(l2, max_l, inv_t);
            std::memcpy(&weights[i], &w, sizeof(w));
            std::memcpy(&weights[i + 4], &w2, sizeof(w2));
            lanes += w;
            lanes2 += w2;
        }
        total += finish_run(logits, weights, i, run_end, lanes, lanes2, max_l, inv_t);
    }
    return total + weight_tail(logits, weights, i, end, max_l, inv_t);
}

size_t first_above_4(std::span<const float> logits, size_t i, float threshold) {
    const size_t n = logits.size();
    for (; i + 4 <= n; i += 4) {
        F32x4 v;
        std::memcpy(&v, &logits[i], sizeof(v));
        const I32x4 above = v > splat(threshold);
        if ((above[0] | above[1] | above[2] | above[3]) != 0) {
            break;
        }
    }
    for (; i < n; ++i) {
        if (logits[i] > threshold) {
            return i;
        }
    }
    return n;
}

#ifdef HELEXA_SAMPLER_AVX2
// The same operations eight lanes at a time, in the same order (no FMA: the four-wide pass has
// none either, so every weight and sum is bit-identical).
__attribute__((target("avx2"))) inline __m256 exp_nonpositive_8(__m256 x) {
    const __m256 clamp = _mm256_set1_ps(kClamp);
    x = _mm256_blendv_ps(x, clamp, _mm256_cmp_ps(x, clamp, _CMP_LT_OQ));
    const __m256 round = _mm256_set1_ps(kRound);
    const __m256 n = _mm256_sub_ps(
        _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), round), round);
    const __m256 r = _mm256_sub_ps(_mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(kLn2Hi))),
                                   _mm256_mul_ps(n, _mm256_set1_ps(kLn2Lo)));
    __m256 p = _mm256_set1_ps(kP[0]);
    for (int k = 1; k < 6; ++k) {
        p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(kP[k]));
    }
    p = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, _mm256_mul_ps(r, r)), r),
                      _mm256_set1_ps(1.0F));
    const __m256i biased = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(biased));
}

__attribute__((target("avx2"))) inline __m256 weights_of_8(__m256 logits, float max_l,
                                                            float inv_t) {
    const __m256 x =
        _mm256_mul_ps(_mm256_sub_ps(logits, _mm256_set1_ps(max_l)), _mm256_set1_ps(inv_t));
    const __m256 usable = _mm256_cmp_ps(x, _mm256_set1_ps(kClamp), _CMP_GE_OQ);
    return _mm256_and_ps(usable, exp_nonpositive_8(x));
}

__attribute__((target("avx2"))) float max_logit_8(std::span<const float> logits) {
    const float neg_inf = -std::numeric_limits<float>::infinity();
    __m256 lanes = _mm256_set1_ps(neg_inf);  // the four-wide pass's two maxima, side by side
    const size_t n = logits.size();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(&logits[i]);
        lanes = _mm256_blendv_ps(lanes, v, _mm256_cmp_ps(v, lanes, _CMP_GT_OQ));
    }
    float m = neg_inf;
    for (; i < n; ++i) {
        m = logits[i] > m ? logits[i] : m;
    }
    alignas(32) float v[8];
    _mm256_store_ps(v, lanes);
    for (float x : v) {
        m = x > m ? x : m;
    }
    return m;
}

__attribute__((target("avx2"))) double weight_block_8(const float* logits, float* weights,
                                                      size_t begin, size_t end, float max_l,
                                                      float inv_t) {
    double total = 0.0;
    size_t i = begin;
    while (i + 4 <= end) {
        // Low half: the four-wide pass's `lanes`, high half: its `lanes2`.
        __m256 both = _mm256_setzero_ps();
        const size_t run_end = std::min(end, i + kRun);
        for (; i + 8 <= run_end; i += 8) {
            const __m256 w = weights_of_8(_mm256_loadu_ps(&logits[i]), max_l, inv_t);
            _mm256_storeu_ps(&weights[i], w);
            both = _mm256_add_ps(both, w);
        }
        F32x4 lanes;
        F32x4 lanes2;
        const __m128 lo = _mm256_castps256_ps128(both);
        const __m128 hi = _mm256_extractf128_ps(both, 1);
        std::memcpy(&lanes, &lo, sizeof(lanes));
        std::memcpy(&lanes2, &hi, sizeof(lanes2));
        total += finish_run(logits, weights, i, run_end, lanes, lanes2, max_l, inv_t);
    }
    return total + weight_tail(logits, weights, i, end, max_l, inv_t);
}
__attribute__((target("avx2"))) size_t first_above_8(std::span<const float> logits, size_t i,
                                                     float threshold) {
    const size_t n = logits.size();
    const __m256 t = _mm256_set1_ps(threshold);
    for (; i + 8 <= n; i += 8) {
        const int above =
            _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(&logits[i]), t, _CMP_GT_OQ));
        if (above != 0) {
            return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(above)));
        }
    }
    return first_above_4(logits, i, threshold);
}
#endif

}  // namespace

bool wide_available() {
#ifdef HELEXA_SAMPLER_AVX2
    static const bool available = __builtin_cpu_supports("avx2") != 0;
    return available;
#else
    return false;
#endif
}

float max_logit(std::span<const float> logits, bool wide) {
#ifdef HELEXA_SAMPLER_AVX2
    if (wide && wide_available()) {
        return max_logit_8(logits);
    }
#endif
    (void)wide;
    return max_logit_4(logits);
}

double weight_block(const float* logits, float* weights, size_t begin, size_t end, float max_l,
                    float inv_t, bool wide) {
#ifdef HELEXA_SAMPLER_AVX2
    if (wide && wide_available()) {
        return weight_block_8(logits, weights, begin, end, max_l, inv_t);
    }
#endif
    (void)wide;
    return weight_block_4(logits, weights, begin, end, max_l, inv_t);
}

size_t first_above(std::span<const float> logits, size_t begin, float threshold, bool wide) {
#ifdef HELEXA_SAMPLER_AVX2
    if (wide && wide_available()) {
        return first_above_8(logits, begin, threshold);
    }
#endif
    (void)wide;
    return first_above_4(logits, begin, threshold);
}

}  // namespace helexa::engine::sampler_simd
