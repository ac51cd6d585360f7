// The draw rule: how a row of logits becomes a token where the logits are (on the GPU, or on the
// host for the CPU backend), for every request whose settings it covers. One definition, compiled
// into the engine (host) and the kernels library (device); the two give the same token for the
// same row, bit for bit (docs/design/device-sampling.md).
//
// Per row, in order:
//   1. penalties and logit bias, as Sampler::apply_penalties (one PenaltyEntry per touched id);
//   2. a row with a +inf or with no finite logit draws -1 (the caller fails that request);
//   3. greedy: the lowest id holding the maximum;
//   4. otherwise z = (l - max) * (1 / T) over finite logits; with top_k, the k largest logits
//      (ties: lower id), then top-p over them (sequential f32 sum of exp(z) in that order), then
//      min-p (z >= log(min_p)); without top_k, top-p over the whole vocabulary (every logit with
//      z >= nucleus floor: the largest z whose logits at or above it hold nucleus_target of the
//      row's mass, masses being mass_of(z) summed exactly as integers), then min-p;
//   5. the token is the argmax over the survivors of z + g(id), g a Gumbel variate from a
//      counter-based hash of (seed, position, id) (row_key, draw_bits): exact sampling from the survivors' softmax,
//      with no normalising sum and no sequential random state, so a seeded row draws the same
//      token whatever shares its batch. Ties go to the lower id.
// Everything is f32 with explicitly rounded operations (`__fadd_rn` and friends on the device, a
// host translation unit built with -ffp-contract=off), so no FMA contraction differs between them.
//
// This header is included by CUDA code: no engine types, no standard library beyond <cstdint> and
// <type_traits>.
#pragma once

#include <cstdint>
#include <type_traits>

#ifdef __CUDACC__
#define HELEXA_DRAW_FN __host__ __device__ __forceinline__
#else
#define HELEXA_DRAW_FN inline
#endif

namespace helexa::engine::draw {

// Largest top_k the rule draws (a device row's top-k is a k-round tournament); a request asking
// for more is sampled by the host Sampler.
inline constexpr int32_t kMaxTopK = 64;
// Largest vocabulary the rule draws: a device row lives in the registers of one 8-CTA cluster
// (24 logits a thread). A larger vocabulary is sampled by the host Sampler.
inline constexpr int64_t kMaxVocab = int64_t{8} * 1024 * 24;

enum DrawMode : uint32_t {
    kDrawHost = 0,    // not drawn by this rule: the row's logits go to the host Sampler
    kDrawGreedy = 1,  // argmax after penalties
    kDrawSample = 2,  // steps 4-5
};

enum PenaltyFlags : uint32_t {
    kHasBias = 1,   // l += bias
    kRepeated = 2,  // in the repetition window: l > 0 ? l / p : l * p
    kCounted = 4,   // l -= subtract (presence + frequency * count)
};
// A kCounted entry's count sits in its flags' bits from kCountShift up (the rule reads only the
// low bits; feed_in_flight recomputes subtract from it).
inline constexpr uint32_t kFlagBits = 7;
inline constexpr int kCountShift = 8;

// One distinct id a row's penalties or bias touch; applied in the order of the flags above.
struct PenaltyEntry {
    int32_t id;
    uint32_t flags;
    float bias;
    float subtract;
};

// One row's draw; the rows of a step are packed [rows] RowDraw then every row's entries.
struct RowDraw {
    uint32_t mode;             // DrawMode
    int32_t top_k;             // 0 = no top-k cut, else 2..kMaxTopK
    float inv_temperature;     // 1 / T
    float top_p;               // 1 = no cut (with top_k over the k, else over the vocabulary)
    float log_min_p;           // -inf = no cut
    float repetition_penalty;  // for kRepeated entries
    uint32_t seed_lo;
    uint32_t seed_hi;
    uint32_t position;     // tokens the request generated before this one: the draw's counter
    uint32_t first_entry;  // into the step's PenaltyEntry array
    uint32_t n_entries;
    // The penalty flags the row's last token takes when it was planned with that token still
    // on the device (overlapped decoding: plan_row_draw's token_in_flight): kRepeated with a
    // repetition window, kCounted with presence or frequency penalties. Non-zero: its last
    // entry is reserved for that token (id -1, no flags: a no-op; bias and subtract holding the
    // presence and frequency penalties) until feed_in_flight fills it. 0: nothing to feed.
    uint32_t in_flight_flags;
};
static_assert(sizeof(RowDraw) == 48 && sizeof(PenaltyEntry) == 16, "packed as 32-bit words");

// ---- explicitly rounded f32 arithmetic ----------------------------------------------------
HELEXA_DRAW_FN float add(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}
HELEXA_DRAW_FN float sub(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fsub_rn(a, b);
#else
    return a - b;
#endif
}
HELEXA_DRAW_FN float mul(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}
HELEXA_DRAW_FN float div(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fdiv_rn(a, b);
#else
    return a / b;
#endif
}
HELEXA_DRAW_FN uint32_t float_bits(float x) {
#ifdef __CUDA_ARCH__
    return __float_as_uint(x);
#else
    return __builtin_bit_cast(uint32_t, x);
#endif
}
HELEXA_DRAW_FN float bits_float(uint32_t b) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(b);
#else
    return __builtin_bit_cast(float, b);
#endif
}
HELEXA_DRAW_FN bool finite(float x) {
    return (float_bits(x) & 0x7f800000u) != 0x7f800000u;
}

// ---- the rule's functions -----------------------------------------------------------------

// Step 1 for one touched logit.
HELEXA_DRAW_FN float apply_penalty(float l, const PenaltyEntry& e, float repetition_penalty) {
    if ((e.flags & kHasBias) != 0) {
        l = add(l, e.bias);
    }
    if ((e.flags & kRepeated) != 0) {
        l = l > 0.0F ? div(l, repetition_penalty) : mul(l, repetition_penalty);
    }
    if ((e.flags & kCounted) != 0) {
        l = sub(l, e.subtract);
    }
    return l;
}

// Completes a row planned with its last token t still on the device, once t is known (the
// host's default runner, and the device's feed before the step): t's entry takes the flags the
// row's plan left for it, as plan_row_draw would have planned it with t known. t's existing
// entry (in the window, counted, or biased) gains them, else the reserved entry becomes t's; a
// counted entry's count goes up by one and its subtract is recomputed from it in plan_row_draw's
// one expression (presence + frequency * count, each operation rounded), so the result is bit
// for bit the known plan's. Entries touch distinct ids in any order. Host callers go through
// feed_row_draw (row_draw.h), whose translation unit rounds every operation.
HELEXA_DRAW_FN void feed_in_flight(const RowDraw& d, PenaltyEntry* entries, int32_t t) {
    if (d.in_flight_flags == 0 || d.n_entries == 0) {
        return;
    }
    PenaltyEntry* row = entries + d.first_entry;
    const uint32_t reserved = d.n_entries - 1;
    const float presence = row[reserved].bias;
    const float frequency = row[reserved].subtract;
    PenaltyEntry* e = row + reserved;
    for (uint32_t i = 0; i < reserved; ++i) {
        if (row[i].id == t) {
            e = row + i;
            break;
        }
    }
    if (e == row + reserved) {
        *e = PenaltyEntry{t, 0, 0.0F, 0.0F};
    }
    e->flags |= d.in_flight_flags & kRepeated;
    if ((d.in_flight_flags & kCounted) != 0) {
        const uint32_t count = ((e->flags & kCounted) != 0 ? e->flags >> kCountShift : 0) + 1;
        e->flags = (e->flags & kFlagBits) | kCounted | (count << kCountShift);
        e->subtract = add(presence, mul(frequency, static_cast<float>(count)));
    }
}

// log_positive's constants (host vector lanes use them too): the series' coefficients 2/(2n+1)
// and ln 2 in two parts, the high part with 12 significant bits so e * kLn2Hi is exact.
inline constexpr float kLogC11 = 0.18181818F;
inline constexpr float kLogC9 = 0.22222222F;
inline constexpr float kLogC7 = 0.28571429F;
inline constexpr float kLogC5 = 0.4F;
inline constexpr float kLogC3 = 0.66666667F;
inline constexpr float kLn2Hi = 0.693145751953125F;
inline constexpr float kLn2Lo = 1.42860682e-06F;
// 2^-24: a uniform's scale (gumbel).
inline constexpr float kUnitScale = 5.9604644775390625e-08F;

// Natural log of a positive normal float (the rule's arguments are in [2^-25, 18]): the exponent
// split off, the mantissa m brought into [sqrt(1/2), sqrt(2)), log m = 2 atanh(s) with
// s = (m - 1) / (m + 1) (|s| <= 0.172) as an odd series to s^11 (truncation < 1e-10).
HELEXA_DRAW_FN float log_positive(float x) {
    const uint32_t bits = float_bits(x);
    int32_t e = static_cast<int32_t>((bits >> 23) & 0xffu) - 127;
    uint32_t m_bits = (bits & 0x007fffffu) | 0x3f800000u;  // m in [1, 2)
    if (m_bits > 0x3fb504f3u) {                             // m > sqrt(2): halve it
        m_bits -= 0x00800000u;
        ++e;
    }
    const float m = bits_float(m_bits);
    const float s = div(sub(m, 1.0F), add(m, 1.0F));
    const float s2 = mul(s, s);
    float p = kLogC11;
    p = add(mul(p, s2), kLogC9);
    p = add(mul(p, s2), kLogC7);
    p = add(mul(p, s2), kLogC5);
    p = add(mul(p, s2), kLogC3);
    const float log_m = add(mul(s, 2.0F), mul(s, mul(s2, p)));
    const auto ef = static_cast<float>(e);
    return add(mul(ef, kLn2Hi), add(log_m, mul(ef, kLn2Lo)));
}

// exp(z) for z <= 0 (top-p weights): 0 below -87, else Cody-Waite reduction to |r| <= ln2 / 2
// and a degree-7 Taylor polynomial, the power of two put in the exponent bits.
HELEXA_DRAW_FN float exp_nonpositive(float z) {
    if (!(z >= -87.0F)) {
        return 0.0F;
    }
    // n = round(z / ln 2) by the 1.5 * 2^23 trick.
    const float n = sub(add(mul(z, 1.44269504F), 12582912.0F), 12582912.0F);
    const float r = sub(sub(z, mul(n, kLn2Hi)), mul(n, kLn2Lo));
    float p = 1.98412698e-04F;         // 1/7!
    p = add(mul(p, r), 1.38888889e-03F);  // 1/6!
    p = add(mul(p, r), 8.33333333e-03F);  // 1/5!
    p = add(mul(p, r), 4.16666667e-02F);  // 1/4!
    p = add(mul(p, r), 1.66666667e-01F);  // 1/3!
    p = add(mul(p, r), 0.5F);
    p = add(mul(p, r), 1.0F);
    p = add(mul(p, r), 1.0F);
    const int32_t ni = static_cast<int32_t>(n);
    return mul(p, bits_float(static_cast<uint32_t>(ni + 127) << 23));
}

// The key of one row's draw: (seed, position) through splitmix64, once per row.
HELEXA_DRAW_FN uint64_t row_key(uint64_t seed, uint32_t position) {
    uint64_t x = seed + (static_cast<uint64_t>(position) + 1) * 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

// A 32-bit multiply-xorshift mix (a bijection). U: uint32_t, or a vector of them (the host's
// lanes in row_draw.cpp).
template <typename U>
HELEXA_DRAW_FN U mix32(U x) {
    static_assert(!std::is_signed_v<U>, "an unsigned 32-bit value (a signed one shifts in signs)");
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

// 32 well-mixed bits for one id of a row: two 32-bit rounds keyed by the row key's halves, so
// the per-id work is 32-bit (cheap on the GPU and in vector lanes) and distinct ids of a row get
// distinct bits.
template <typename U>
HELEXA_DRAW_FN U draw_bits(uint64_t key, U id) {
    return mix32(mix32(id ^ static_cast<uint32_t>(key)) + static_cast<uint32_t>(key >> 32));
}

// A Gumbel variate -log(-log(u)) with u = (2b + 1) / 2^24 for the top 23 bits b: u is exact in
// f32 and strictly inside (0, 1), so both logs see positive normal arguments.
HELEXA_DRAW_FN float gumbel(uint32_t bits) {
    const float u = mul(static_cast<float>(((bits >> 9) << 1) | 1u), kUnitScale);
    return -log_positive(-log_positive(u));
}

// Above every Gumbel variate gumbel() produces (the largest u, 1 - 2^-24, gives 16.64; the margin
// covers the polynomial logs' last bits): z + this bounds any key, so an id with
// z + kGumbelBound below a key already found cannot win (both sides skip such ids).
inline constexpr float kGumbelBound = 17.0F;

// (ka, ia) comes before (kb, ib): a present id (>= 0) before an absent one, the higher key first,
// the lower id on equal keys.
HELEXA_DRAW_FN bool before(float ka, int32_t ia, float kb, int32_t ib) {
    return ia >= 0 && (ib < 0 || ka > kb || (ka == kb && ia < ib));
}

// ---- top-p over the whole vocabulary: masses in fixed point -------------------------------
// A nucleus over up to kMaxVocab logits cannot be summed in one sequential f32 order on the
// device, so its masses are integers: exp(z) in units of 2^-40, truncated (a row's total stays
// below 2^58). Integer sums are exact in any order, so the host and the device find the same
// nucleus however they add. Ties at the floor are all in (the floor is a value, not a count).
inline constexpr float kMassScale = 1099511627776.0F;  // 2^40
inline constexpr float kTopPScale = 16777216.0F;       // 2^24

HELEXA_DRAW_FN uint64_t mass_of(float z) {
    return static_cast<uint64_t>(mul(exp_nonpositive(z), kMassScale));
}

// top_p in units of 2^-24, truncated (top_p < 1).
HELEXA_DRAW_FN uint32_t top_p_fixed(float top_p) {
    return static_cast<uint32_t>(mul(top_p, kTopPScale));
}

// The mass the nucleus must reach: ceil(total * p_fixed / 2^24), at least 1 (so the floor is
// always a logit's own z). 32-bit halves keep the product in 64 bits (total < 2^58).
HELEXA_DRAW_FN uint64_t nucleus_target(uint64_t total, uint32_t p_fixed) {
    const uint64_t lo = (total & 0xffffffffULL) * p_fixed;  // < 2^56
    const uint64_t hi = (total >> 32) * p_fixed;             // < 2^50
    const uint64_t target = (hi << 8) + ((lo + 0xffffffULL) >> 24);
    return target > 0 ? target : 1;
}

// z's place among floats as an unsigned key (a higher z, a higher key), and back: the nucleus
// floor is found a byte of the key at a time.
HELEXA_DRAW_FN uint32_t order_key(float z) {
    const uint32_t b = float_bits(z);
    return (b & 0x80000000u) != 0 ? ~b : (b | 0x80000000u);
}
HELEXA_DRAW_FN float from_order_key(uint32_t k) {
    return bits_float((k & 0x80000000u) != 0 ? (k & 0x7fffffffu) : ~k);
}

// Whether key k is in the part of the key space a radix round at `shift` looks at: its bits above
// shift + 8 equal the prefix decided so far.
HELEXA_DRAW_FN bool under_prefix(uint32_t k, uint32_t prefix, int shift) {
    return shift >= 24 || (k >> (shift + 8)) == (prefix >> (shift + 8));
}

HELEXA_DRAW_FN uint64_t seed_of(const RowDraw& d) {
    return (static_cast<uint64_t>(d.seed_hi) << 32) | d.seed_lo;
}

}  // namespace helexa::engine::draw
