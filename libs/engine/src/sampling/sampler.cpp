#include "helexa/engine/sampler.h"

#include "sampler_simd.h"

#include <algorithm>
#include <iterator>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace helexa::engine {
namespace {

uint64_t splitmix64(uint64_t& x) {
    x += 0x9E3779B97F4A7C15ULL;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

// fn(i) for every i with weights[i] >= threshold (> 0 when threshold is 0), in increasing i,
// jumping between them with vector compares (weights are >= 0 and never NaN, so "at least t" is
// "above the float just below t").
template <typename Fn>
void for_each_weight_at_least(std::span<const float> weights, float threshold, bool wide,
                              Fn&& fn) {
    const float above = threshold > 0.0F ? std::nextafter(threshold, 0.0F) : 0.0F;
    for (size_t i = sampler_simd::first_above(weights, 0, above, wide); i < weights.size();
         i = sampler_simd::first_above(weights, i + 1, above, wide)) {
        fn(i);
    }
}

bool by_value_desc(const TokenProb& a, const TokenProb& b) {
    return a.prob > b.prob || (a.prob == b.prob && a.id < b.id);
}

}  // namespace

SamplerRng::SamplerRng(uint64_t seed) {
    uint64_t x = seed;
    for (auto& s : s_) {
        s = splitmix64(x);
    }
}

uint64_t SamplerRng::next_u64() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
}

double SamplerRng::next_unit() {
    return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0);
}

void Sampler::apply_penalties(std::span<float> logits, const SamplingConfig& cfg,
                              std::span<const int32_t> generated) {
    const auto vocab = static_cast<int64_t>(logits.size());
    auto in_vocab = [vocab](int32_t id) { return id >= 0 && id < vocab; };

    for (const auto& [id, bias] : cfg.logit_bias) {
        if (in_vocab(id)) {
            logits[static_cast<size_t>(id)] += bias;
        }
    }

    if (cfg.repetition_penalty != 1.0F && cfg.repetition_window > 0 && !generated.empty()) {
        const size_t n = std::min(generated.size(), static_cast<size_t>(cfg.repetition_window));
        std::vector<int32_t> window(generated.end() - static_cast<std::ptrdiff_t>(n),
                                    generated.end());
        std::sort(window.begin(), window.end());
        window.erase(std::unique(window.begin(), window.end()), window.end());
        for (int32_t id : window) {
            if (!in_vocab(id)) {
                continue;
            }
            float& l = logits[static_cast<size_t>(id)];
            l = l > 0.0F ? l / cfg.repetition_penalty : l * cfg.repetition_penalty;
        }
    }

    if ((cfg.presence_penalty != 0.0F || cfg.frequency_penalty != 0.0F) && !generated.empty()) {
        std::vector<int32_t> sorted(generated.begin(), generated.end());
        std::sort(sorted.begin(), sorted.end());
        for (size_t i = 0; i < sorted.size();) {
            size_t j = i;
            while (j < sorted.size() && sorted[j] == sorted[i]) {
                ++j;
            }
            if (in_vocab(sorted[i])) {
                const auto count = static_cast<float>(j - i);
                logits[static_cast<size_t>(sorted[i])] -=
                    cfg.presence_penalty + cfg.frequency_penalty * count;
            }
            i = j;
        }
    }
}

Status Sampler::build_candidates(std::span<float> logits, const SamplingConfig& cfg) {
    candidates_.clear();
    all_weights_ = false;
    const float max_l = sampler_simd::max_logit(logits, wide_);
    if (!std::isfinite(max_l)) {  // +inf somewhere, or no finite logit at all
        int64_t n_nan = 0;
        int64_t n_pos_inf = 0;
        for (float l : logits) {
            n_nan += std::isnan(l) ? 1 : 0;
            n_pos_inf += l == std::numeric_limits<float>::infinity() ? 1 : 0;
        }
        return fail(ErrorCode::kInternal,
                    "sampling failed: no usable logit (vocab " + std::to_string(logits.size()) +
                        ", nan " + std::to_string(n_nan) + ", +inf " +
                        std::to_string(n_pos_inf) + ")");
    }
    if (cfg.greedy()) {
        // The lowest id holding the maximum: the first above the next float below it.
        const size_t top = sampler_simd::first_above(
            logits, 0, std::nextafter(max_l, -std::numeric_limits<float>::infinity()), wide_);
        candidates_.push_back({static_cast<int32_t>(top), 1.0F});
        return ok();
    }
    const float inv_t = 1.0F / cfg.temperature;

    if (cfg.top_k > 0 && static_cast<size_t>(cfg.top_k) < logits.size()) {
        select_top_k(logits, static_cast<size_t>(cfg.top_k));
        // Softmax at temperature over the survivors only.
        double total = 0.0;
        for (auto& c : candidates_) {
            const double p = std::exp((static_cast<double>(c.prob) - max_l) * inv_t);
            c.prob = static_cast<float>(p);
            total += p;
        }
        for (auto& c : candidates_) {
            c.prob = static_cast<float>(c.prob / total);
        }
    } else {
        // Every finite logit takes part: one vectorised pass of weights relative to the top
        // (which gets exactly 1), kept for the draw, with per-block sums so the draw can skip
        // whole blocks; no per-token candidate list unless a mask below needs one.
        compute_weights(logits, max_l, inv_t);
        all_weights_ = true;
    }

    if (cfg.top_p < 1.0F) {
        if (all_weights_) {
            collect_nucleus(cfg.top_p);
        }
        std::sort(candidates_.begin(), candidates_.end(), by_value_desc);
        double cumulative = 0.0;
        size_t keep = 0;
        while (keep < candidates_.size()) {
            cumulative += candidates_[keep].prob;
            ++keep;
            if (cumulative >= cfg.top_p) {
                break;
            }
        }
        candidates_.resize(std::max<size_t>(keep, 1));
    }

    if (cfg.min_p > 0.0F) {
        if (all_weights_) {
            // The top token's probability is 1 / total (its weight is 1), so "prob >= min_p x
            // pmax" is "weight >= min_p".
            for_each_weight_at_least(weights_, cfg.min_p, wide_, [&](size_t i) {
                candidates_.push_back(
                    {static_cast<int32_t>(i), static_cast<float>(weights_[i] / weight_total_)});
            });
            all_weights_ = false;
        } else {
            float pmax = 0.0F;
            for (const auto& c : candidates_) {
                pmax = std::max(pmax, c.prob);
            }
            const float cut = cfg.min_p * pmax;
            std::erase_if(candidates_, [cut](const TokenProb& c) { return c.prob < cut; });
        }
    }

    if (!all_weights_) {
        double kept = 0.0;
        for (const auto& c : candidates_) {
            kept += c.prob;
        }
        for (auto& c : candidates_) {
            c.prob = static_cast<float>(c.prob / kept);
        }
    }
    return ok();
}

void Sampler::compute_weights(std::span<const float> logits, float max_l, float inv_t) {
    const size_t n = logits.size();
    weights_.resize(n);
    block_totals_.assign((n + kWeightBlock - 1) / kWeightBlock, 0.0);
    weight_total_ = 0.0;
    for (size_t b = 0; b < block_totals_.size(); ++b) {
        const size_t begin = b * kWeightBlock;
        const size_t end = std::min(n, begin + kWeightBlock);
        block_totals_[b] = sampler_simd::weight_block(logits.data(), weights_.data(), begin, end,
                                                      max_l, inv_t, wide_);
        weight_total_ += block_totals_[b];
    }
    all_weights_ = true;
}

int32_t Sampler::draw_from_weights(double r) const {
    // The first token whose running weight passes r x total: whole blocks first, then the
    // entries of one block.
    const double target = r * weight_total_;
    double before = 0.0;
    size_t b = 0;
    while (b + 1 < block_totals_.size() && before + block_totals_[b] <= target) {
        before += block_totals_[b];
        ++b;
    }
    const size_t begin = b * kWeightBlock;
    const size_t end = std::min(weights_.size(), begin + kWeightBlock);
    double cumulative = before;
    int32_t last = -1;
    for (size_t i = begin; i < end; ++i) {
        if (weights_[i] > 0.0F) {
            cumulative += static_cast<double>(weights_[i]);
            last = static_cast<int32_t>(i);
            if (target < cumulative) {
                return last;
            }
        }
    }
    if (last >= 0) {
        return last;  // rounding left the target just above this block's total
    }
    // The block chosen holds no weight at all (only possible through rounding at its edge):
    // the last weighted token before it, which exists since the top token weighs 1.
    for (size_t i = begin; i-- > 0;) {
        if (weights_[i] > 0.0F) {
            return static_cast<int32_t>(i);
        }
    }
    for (size_t i = end; i < weights_.size(); ++i) {
        if (weights_[i] > 0.0F) {
            return static_cast<int32_t>(i);
        }
    }
    return 0;
}

void Sampler::select_top_k(std::span<const float> logits, size_t k) {
    // A min-heap of the k best (value, then lower id) seen so far; ids arrive in increasing
    // order, so a later equal value never displaces an earlier one. Once it is full, only a logit
    // above its minimum changes it, and after the first few thousand entries almost none is: the
    // scan jumps from one such logit to the next (sampler_simd::first_above).
    const auto worse_on_top = by_value_desc;  // the heap's front is its worst entry
    candidates_.clear();
    candidates_.reserve(k);
    size_t i = 0;
    for (; i < logits.size() && candidates_.size() < k; ++i) {
        const float l = logits[i];
        if (std::isfinite(l)) {
            candidates_.push_back({static_cast<int32_t>(i), l});
            std::push_heap(candidates_.begin(), candidates_.end(), worse_on_top);
        }
    }
    if (candidates_.size() < k) {
        return;
    }
    // Greater than a finite minimum means finite: a row with +inf was rejected before, and NaN
    // compares greater than nothing.
    while ((i = sampler_simd::first_above(logits, i, candidates_.front().prob, wide_)) <
           logits.size()) {
        std::pop_heap(candidates_.begin(), candidates_.end(), worse_on_top);
        candidates_.back() = {static_cast<int32_t>(i), logits[i]};
        std::push_heap(candidates_.begin(), candidates_.end(), worse_on_top);
        ++i;
    }
}

void Sampler::collect_nucleus(float top_p) {
    // The nucleus lies inside any set of the largest weights whose mass reaches top_p, so only
    // such a set is collected (and sorted by the caller): weights >= 1/64 of the top first, then
    // 64x lower until the mass suffices; 0 at the end takes every nonzero weight.
    candidates_.clear();
    const double need = static_cast<double>(top_p) * weight_total_;
    float threshold = 1.0F / 64.0F;
    while (true) {
        candidates_.clear();
        double mass = 0.0;
        for_each_weight_at_least(weights_, threshold, wide_, [&](size_t i) {
            candidates_.push_back({static_cast<int32_t>(i), weights_[i]});
            mass += static_cast<double>(weights_[i]);
        });
        if (mass >= need || threshold == 0.0F) {
            break;
        }
        threshold = threshold < 1e-30F ? 0.0F : threshold / 64.0F;
    }
    for (auto& c : candidates_) {
        c.prob = static_cast<float>(c.prob / weight_total_);
    }
    all_weights_ = false;
}

Result<int32_t> Sampler::sample(std::span<float> logits, const SamplingConfig& cfg,
                                std::span<const int32_t> generated, SamplerRng& rng) {
    apply_penalties(logits, cfg, generated);
    HELEXA_TRY_STATUS(build_candidates(logits, cfg));
    if (all_weights_) {
        return draw_from_weights(rng.next_unit());
    }
    if (candidates_.size() == 1) {
        // Greedy does not draw, so a greedy request leaves its RNG untouched.
        if (!cfg.greedy()) {
            (void)rng.next_unit();
        }
        return candidates_.front().id;
    }
    const double r = rng.next_unit();
    double cumulative = 0.0;
    for (const auto& c : candidates_) {
        cumulative += c.prob;
        if (r < cumulative) {
            return c.id;
        }
    }
    return candidates_.back().id;  // rounding left r just above the total
}

Result<std::vector<TokenProb>> Sampler::distribution(std::span<float> logits,
                                                     const SamplingConfig& cfg,
                                                     std::span<const int32_t> generated) {
    apply_penalties(logits, cfg, generated);
    HELEXA_TRY_STATUS(build_candidates(logits, cfg));
    std::vector<TokenProb> out;
    if (all_weights_) {
        for (size_t i = 0; i < weights_.size(); ++i) {
            if (weights_[i] > 0.0F) {
                out.push_back({static_cast<int32_t>(i),
                               static_cast<float>(weights_[i] / weight_total_)});
            }
        }
    } else {
        for (const auto& c : candidates_) {
            if (c.prob > 0.0F) {
                out.push_back(c);
            }
        }
    }
    std::sort(out.begin(), out.end(), by_value_desc);
    return out;
}

}  // namespace helexa::engine
