// Built with -ffp-contract=off (CMakeLists.txt): the rule's f32 operations must round one at a
// time, as the device's explicitly rounded ones do, whatever the target's FMA.
#include "helexa/engine/row_draw.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "sampler_simd.h"

namespace helexa::engine {
namespace {

using draw::PenaltyEntry;
using draw::RowDraw;

// One of a row's top-k after penalties (value, id), in the rule's order.
struct Candidate {
    float value;
    int32_t id;
};

// draw_rule.h's log_positive and gumbel four lanes at a time through the compilers' vector
// extension (SSE2 on x86-64, NEON on Arm), operation for operation and with its constants (its
// mix32 and draw_bits take the lanes as they are), for the host's whole-vocabulary draw (a hash
// and two logs an id: ~4 ms a flat 152k row one id at a time). Keep the two in step:
// RowDraw.SkippingHopelessIdsChangesNoDraw compares them.
using F4 = float __attribute__((vector_size(16)));
using U4 = uint32_t __attribute__((vector_size(16)));
using I4 = int32_t __attribute__((vector_size(16)));

F4 log_positive4(F4 x) {
    const U4 bits = reinterpret_cast<U4>(x);
    I4 e = reinterpret_cast<I4>((bits >> 23) & 0xffU) - 127;
    U4 m_bits = (bits & 0x007fffffU) | 0x3f800000U;
    const I4 halve = m_bits > 0x3fb504f3U;  // all ones where m > sqrt(2)
    m_bits -= reinterpret_cast<U4>(halve) & 0x00800000U;
    e -= halve;
    const F4 m = reinterpret_cast<F4>(m_bits);
    const F4 s = (m - 1.0F) / (m + 1.0F);
    const F4 s2 = s * s;
    F4 p = F4{draw::kLogC11, draw::kLogC11, draw::kLogC11, draw::kLogC11};
    p = p * s2 + draw::kLogC9;
    p = p * s2 + draw::kLogC7;
    p = p * s2 + draw::kLogC5;
    p = p * s2 + draw::kLogC3;
    const F4 log_m = s * 2.0F + s * (s2 * p);
    const F4 ef = __builtin_convertvector(e, F4);
    return ef * draw::kLn2Hi + (log_m + ef * draw::kLn2Lo);
}

F4 gumbel4(U4 bits) {
    const F4 u = __builtin_convertvector(reinterpret_cast<I4>(((bits >> 9) << 1) | 1U), F4) *
                 draw::kUnitScale;
    return -log_positive4(-log_positive4(u));
}


int32_t draw_from_top_k(std::span<const Candidate> top, const RowDraw& d) {
    const auto n = static_cast<int32_t>(top.size());
    const float max_l = top[0].value;
    const uint64_t key = draw::row_key(draw::seed_of(d), d.position);
    int32_t keep = n;
    if (d.top_p < 1.0F) {
        float total = 0.0F;
        for (const auto& c : top) {
            total = draw::add(total, draw::exp_nonpositive(
                                         draw::mul(draw::sub(c.value, max_l), d.inv_temperature)));
        }
        const float threshold = draw::mul(d.top_p, total);
        float cumulative = 0.0F;
        for (int32_t j = 0; j < n; ++j) {
            cumulative = draw::add(
                cumulative, draw::exp_nonpositive(draw::mul(draw::sub(top[j].value, max_l),
                                                            d.inv_temperature)));
            if (cumulative >= threshold) {
                keep = j + 1;
                break;
            }
        }
    }
    float best_key = 0.0F;
    int32_t best_id = -1;
    for (int32_t j = 0; j < keep; ++j) {
        const float z = draw::mul(draw::sub(top[j].value, max_l), d.inv_temperature);
        if (!(z >= d.log_min_p)) {
            break;  // z falls along the list: every later candidate is cut too
        }
        const auto id = static_cast<uint32_t>(top[j].id);
        const float k = draw::add(z, draw::gumbel(draw::draw_bits(key, id)));
        if (draw::before(k, top[j].id, best_key, best_id)) {
            best_key = k;
            best_id = top[j].id;
        }
    }
    return best_id;
}

// The k best finite logits of a row in the rule's order (higher value, then lower id). A heap
// of k whose top is the worst kept; once it is full, the scan jumps to the next logit strictly
// above the worst kept (sampler_simd::first_above, eight or four at a time): a later equal value
// has a higher id, so it would lose the tie anyway.
std::span<const Candidate> top_k_of(std::span<const float> row, size_t k) {
    thread_local std::vector<Candidate> heap;
    heap.clear();
    auto ranks_higher = [](const Candidate& a, const Candidate& b) {
        return draw::before(a.value, a.id, b.value, b.id);
    };
    size_t i = 0;
    for (; i < row.size() && heap.size() < k; ++i) {
        if (draw::finite(row[i])) {
            heap.push_back({row[i], static_cast<int32_t>(i)});
        }
    }
    std::make_heap(heap.begin(), heap.end(), ranks_higher);  // front: the worst kept
    if (heap.size() == k) {
        const bool wide = sampler_simd::wide_available();
        for (i = sampler_simd::first_above(row, i, heap.front().value, wide); i < row.size();
             i = sampler_simd::first_above(row, i + 1, heap.front().value, wide)) {
            std::pop_heap(heap.begin(), heap.end(), ranks_higher);
            heap.back() = {row[i], static_cast<int32_t>(i)};
            std::push_heap(heap.begin(), heap.end(), ranks_higher);
        }
    }
    std::sort(heap.begin(), heap.end(), ranks_higher);
    return heap;
}

// The penalty flags a token generated now takes in this request's row: kRepeated with a
// repetition window, kCounted with presence or frequency penalties.
uint32_t flags_of_a_new_token(const SamplingConfig& cfg) {
    const bool repetition = cfg.repetition_penalty != 1.0F && cfg.repetition_window > 0;
    const bool counts = cfg.presence_penalty != 0.0F || cfg.frequency_penalty != 0.0F;
    return (repetition ? draw::kRepeated : 0U) | (counts ? draw::kCounted : 0U);
}

// The row's RowDraw, its entries [first_entry, end) of batch.entries already appended (with a
// token in flight that takes penalty flags, the reserved entry is appended here, last: no
// flags, the presence and frequency penalties in its bias and subtract for the feed).
void finish_row(const SamplingConfig& cfg, std::span<const int32_t> generated, uint64_t seed,
                int64_t vocab, size_t first_entry, bool token_in_flight, DrawBatch& batch) {
    const uint32_t in_flight_flags = token_in_flight ? flags_of_a_new_token(cfg) : 0U;
    if (in_flight_flags != 0) {
        batch.entries.push_back(
            PenaltyEntry{-1, 0, cfg.presence_penalty, cfg.frequency_penalty});
    }
    RowDraw d{};
    d.mode = cfg.greedy() ? draw::kDrawGreedy : draw::kDrawSample;
    d.top_k = cfg.top_k > 0 && cfg.top_k < vocab && !cfg.greedy() ? cfg.top_k : 0;
    d.inv_temperature = cfg.greedy() ? 1.0F : 1.0F / cfg.temperature;
    d.top_p = cfg.greedy() || cfg.top_p >= 1.0F ? 1.0F : cfg.top_p;
    // A min_p below the normal floats cuts nothing a float weight can hold (exp(z) < 1e-38).
    d.log_min_p = cfg.min_p >= std::numeric_limits<float>::min()
                      ? draw::log_positive(cfg.min_p)
                      : -std::numeric_limits<float>::infinity();
    d.repetition_penalty = cfg.repetition_penalty;
    d.seed_lo = static_cast<uint32_t>(seed);
    d.seed_hi = static_cast<uint32_t>(seed >> 32);
    d.position = static_cast<uint32_t>(generated.size() + (token_in_flight ? 1 : 0));
    d.first_entry = static_cast<uint32_t>(first_entry);
    d.n_entries = static_cast<uint32_t>(batch.entries.size() - first_entry);
    d.in_flight_flags = in_flight_flags;
    batch.rows.push_back(d);
}

}  // namespace

bool DrawBatch::any_host_row() const {
    return std::any_of(rows.begin(), rows.end(),
                       [](const RowDraw& r) { return r.mode == draw::kDrawHost; });
}

std::vector<int32_t> DrawBatch::packed(size_t n_rows) const {
    n_rows = std::max(n_rows, rows.size());
    // Value-initialised: the padding rows are all zero, mode kDrawHost.
    std::vector<int32_t> words((n_rows * sizeof(RowDraw) + entries.size() * sizeof(PenaltyEntry)) /
                               sizeof(int32_t));
    if (!rows.empty()) {
        std::memcpy(words.data(), rows.data(), rows.size() * sizeof(RowDraw));
    }
    if (!entries.empty()) {
        std::memcpy(reinterpret_cast<std::byte*>(words.data()) + n_rows * sizeof(RowDraw),
                    entries.data(), entries.size() * sizeof(PenaltyEntry));
    }
    return words;
}

bool drawable(const SamplingConfig& cfg, int64_t vocab, bool whole_vocab_top_p) {
    if (vocab <= 0 || vocab > draw::kMaxVocab) {
        return false;
    }
    if (cfg.greedy()) {
        return true;
    }
    const bool top_k = cfg.top_k > 0 && cfg.top_k < vocab;
    if (top_k) {
        return cfg.top_k <= draw::kMaxTopK;
    }
    return cfg.top_p >= 1.0F || whole_vocab_top_p;
}

void feed_row_draw(const RowDraw& d, std::span<PenaltyEntry> entries, int32_t t) {
    draw::feed_in_flight(d, entries.data(), t);
}

void plan_row_draw(const SamplingConfig& cfg, std::span<const int32_t> generated, uint64_t seed,
                   int64_t vocab, bool whole_vocab_top_p, DrawBatch& batch,
                   bool token_in_flight) {
    if (!drawable(cfg, vocab, whole_vocab_top_p)) {
        RowDraw d{};
        d.mode = draw::kDrawHost;
        batch.rows.push_back(d);
        return;
    }
    // The entries, in Sampler::apply_penalties' terms (same float expressions). This runs for
    // every row of every step, on the scheduler's thread between two steps: no maps, scratch
    // reused, and with repetition alone (the defaults) no sort either. Otherwise three id-sorted
    // lists (bias, the repetition window's distinct ids, every generated id with repeats) are
    // merged by id.
    auto in_vocab = [vocab](int32_t id) { return id >= 0 && id < vocab; };
    const bool counts = cfg.presence_penalty != 0.0F || cfg.frequency_penalty != 0.0F;
    thread_local std::vector<int32_t> window;
    window.clear();
    // The window's tokens this plan knows: with one in flight, it takes the window's last slot.
    const size_t window_known = static_cast<size_t>(std::max<int64_t>(cfg.repetition_window, 0)) -
                                (token_in_flight && cfg.repetition_window > 0 ? 1 : 0);
    if (cfg.repetition_penalty != 1.0F && cfg.repetition_window > 0 && !generated.empty()) {
        const size_t n = std::min(generated.size(), window_known);
        const auto recent = generated.subspan(generated.size() - n);
        if (cfg.logit_bias.empty() && !counts) {
            // The default settings: the window's distinct ids are the only entries, in any
            // order (each touches its own logit), so a hash set replaces the sort.
            thread_local std::vector<int32_t> seen;
            size_t slots = 16;
            int bits = 4;
            while (slots < 2 * n) {
                slots <<= 1;
                ++bits;
            }
            seen.assign(slots, -1);
            const size_t first = batch.entries.size();
            for (int32_t id : recent) {
                if (!in_vocab(id)) {
                    continue;
                }
                // Fibonacci hashing: the product's top bits.
                size_t h = (static_cast<uint32_t>(id) * 0x9E3779B1U) >> (32 - bits);
                while (seen[h] >= 0 && seen[h] != id) {
                    h = (h + 1) & (slots - 1);
                }
                if (seen[h] < 0) {
                    seen[h] = id;
                    batch.entries.push_back(PenaltyEntry{id, draw::kRepeated, 0.0F, 0.0F});
                }
            }
            finish_row(cfg, generated, seed, vocab, first, token_in_flight, batch);
            return;
        }
        for (int32_t id : recent) {
            if (in_vocab(id)) {
                window.push_back(id);
            }
        }
        std::sort(window.begin(), window.end());
        window.erase(std::unique(window.begin(), window.end()), window.end());
    }
    thread_local std::vector<int32_t> counted;
    counted.clear();
    if (counts) {
        for (int32_t id : generated) {
            if (in_vocab(id)) {
                counted.push_back(id);
            }
        }
        std::sort(counted.begin(), counted.end());
    }
    const size_t first_entry = batch.entries.size();
    auto bias = cfg.logit_bias.begin();
    size_t w = 0;
    size_t c = 0;
    for (;;) {
        while (bias != cfg.logit_bias.end() && !in_vocab(bias->first)) {
            ++bias;
        }
        constexpr int32_t kNone = std::numeric_limits<int32_t>::max();
        const int32_t id = std::min({bias != cfg.logit_bias.end() ? bias->first : kNone,
                                     w < window.size() ? window[w] : kNone,
                                     c < counted.size() ? counted[c] : kNone});
        if (id == kNone) {
            break;
        }
        PenaltyEntry e{id, 0, 0.0F, 0.0F};
        if (bias != cfg.logit_bias.end() && bias->first == id) {
            e.flags |= draw::kHasBias;
            e.bias = bias->second;
            ++bias;
        }
        if (w < window.size() && window[w] == id) {
            e.flags |= draw::kRepeated;
            ++w;
        }
        if (c < counted.size() && counted[c] == id) {
            size_t end = c;
            while (end < counted.size() && counted[end] == id) {
                ++end;
            }
            // The count rides in the flags' high bits: a feed of the token in flight adds one
            // and recomputes subtract in this same expression (draw::feed_in_flight).
            e.flags |= draw::kCounted | (static_cast<uint32_t>(end - c) << draw::kCountShift);
            e.subtract = cfg.presence_penalty +
                         cfg.frequency_penalty * static_cast<float>(end - c);
            c = end;
        }
        batch.entries.push_back(e);
    }
    finish_row(cfg, generated, seed, vocab, first_entry, token_in_flight, batch);
}

float nucleus_floor(std::span<const float> row, float max_l, const RowDraw& d) {
    // The finite logits with a mass (the rest cannot move the sum), as (order key, mass).
    thread_local std::vector<uint32_t> keys;
    thread_local std::vector<uint64_t> masses;
    keys.clear();
    masses.clear();
    uint64_t total = 0;
    for (const float x : row) {
        if (!draw::finite(x)) {
            continue;
        }
        const float z = draw::mul(draw::sub(x, max_l), d.inv_temperature);
        const uint64_t m = draw::mass_of(z);
        if (m > 0) {
            keys.push_back(draw::order_key(z));
            masses.push_back(m);
            total += m;
        }
    }
    const uint64_t target = draw::nucleus_target(total, draw::top_p_fixed(d.top_p));
    // A byte of the floor's key at a time, from the top: the highest byte whose bucket brings the
    // mass at or above it (`above`: the mass of every higher bucket) to the target.
    uint32_t prefix = 0;
    uint64_t above = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        uint64_t bucket[256] = {};
        for (size_t i = 0; i < keys.size(); ++i) {
            if (draw::under_prefix(keys[i], prefix, shift)) {
                bucket[(keys[i] >> shift) & 0xffU] += masses[i];
            }
        }
        uint32_t b = 255;
        for (; b > 0 && above + bucket[b] < target; --b) {
            above += bucket[b];
        }
        prefix |= b << shift;
    }
    return draw::from_order_key(prefix);
}

int32_t draw_row(std::span<float> row, const RowDraw& d, std::span<const PenaltyEntry> entries) {
    if (d.mode == draw::kDrawHost) {
        return -1;
    }
    const auto vocab = static_cast<int64_t>(row.size());
    for (const PenaltyEntry& e : entries.subspan(d.first_entry, d.n_entries)) {
        if (e.id >= 0 && e.id < vocab) {
            float& l = row[static_cast<size_t>(e.id)];
            l = draw::apply_penalty(l, e, d.repetition_penalty);
        }
    }
    // The maximum (vector passes: +inf wins, NaN never does) and the lowest id holding it.
    const bool wide = sampler_simd::wide_available();
    const float max_l = sampler_simd::max_logit(row, wide);
    if (!draw::finite(max_l)) {
        return -1;  // a +inf, or no finite logit: the logits are broken
    }
    const auto top = static_cast<int32_t>(sampler_simd::first_above(
        row, 0, std::nextafter(max_l, -std::numeric_limits<float>::infinity()), wide));
    if (d.mode == draw::kDrawGreedy) {
        return top;
    }
    if (d.top_k > 0) {
        return draw_from_top_k(top_k_of(row, static_cast<size_t>(d.top_k)), d);
    }
    // Every finite id with z >= the floor (top-p's, min-p's) competes. The key is at most z + the
    // largest Gumbel
    // variate, so an id whose bound cannot beat the best so far is skipped without its hash and
    // logs (the result does not depend on the visiting order: `before` is a total order). The
    // top id goes first so the bound bites from the start.
    const float z_floor = d.top_p < 1.0F ? std::max(nucleus_floor(row, max_l, d), d.log_min_p)
                                          : d.log_min_p;
    const uint64_t row_key = draw::row_key(draw::seed_of(d), d.position);
    float best_key = 0.0F;
    int32_t best_id = -1;
    auto consider = [&](int64_t c) {
        const float z = draw::mul(draw::sub(row[static_cast<size_t>(c)], max_l), d.inv_temperature);
        if (!(z >= z_floor) || (best_id >= 0 && !(draw::add(z, draw::kGumbelBound) >= best_key))) {
            return;
        }
        const float key =
            draw::add(z, draw::gumbel(draw::draw_bits(row_key, static_cast<uint32_t>(c))));
        if (draw::before(key, static_cast<int32_t>(c), best_key, best_id)) {
            best_key = key;
            best_id = static_cast<int32_t>(c);
        }
    };
    consider(top);
    // Four ids at a time: the candidates' keys in vector lanes (the same rounded operations, so
    // the same bits), a block without a candidate skipped whole.
    int64_t c = 0;
    for (; c + 4 <= vocab; c += 4) {
        F4 v;
        std::memcpy(&v, row.data() + c, sizeof(v));
        const F4 z = (v - max_l) * d.inv_temperature;
        const I4 finite = (reinterpret_cast<U4>(v) & 0x7f800000U) != 0x7f800000U;
        const I4 candidate = finite & (z >= z_floor) & ((z + draw::kGumbelBound) >= best_key);
        if ((candidate[0] | candidate[1] | candidate[2] | candidate[3]) == 0) {
            continue;
        }
        const auto first = static_cast<uint32_t>(c);
        const U4 ids = {first, first + 1, first + 2, first + 3};
        const F4 keys = z + gumbel4(draw::draw_bits(row_key, ids));
        for (int j = 0; j < 4; ++j) {
            const auto id = static_cast<int32_t>(c + j);
            if (candidate[j] != 0 && id != top && draw::before(keys[j], id, best_key, best_id)) {
                best_key = keys[j];
                best_id = id;
            }
        }
    }
    for (; c < vocab; ++c) {
        if (c != top && draw::finite(row[static_cast<size_t>(c)])) {
            consider(c);
        }
    }
    return best_id;
}

}  // namespace helexa::engine
