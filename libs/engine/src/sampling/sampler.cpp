#include "helexa/engine/sampler.h"

#include <algorithm>
#include <cmath>
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

// Full sorts are cheap below this many candidates; above it top-p sorts only a prefix.
constexpr size_t kSmallSort = 4096;

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
    int64_t n_nan = 0;
    int64_t n_pos_inf = 0;
    float max_logit = -std::numeric_limits<float>::infinity();
    int32_t argmax = -1;
    for (size_t i = 0; i < logits.size(); ++i) {
        const float l = logits[i];
        if (std::isnan(l)) {
            ++n_nan;
        } else if (std::isinf(l)) {
            n_pos_inf += l > 0.0F ? 1 : 0;
        } else if (l > max_logit) {
            max_logit = l;
            argmax = static_cast<int32_t>(i);
        }
    }
    if (argmax < 0 || n_pos_inf > 0) {
        return fail(ErrorCode::kInternal,
                    "sampling failed: no usable logit (vocab " + std::to_string(logits.size()) +
                        ", nan " + std::to_string(n_nan) + ", +inf " +
                        std::to_string(n_pos_inf) + ")");
    }
    if (cfg.greedy()) {
        candidates_.push_back({argmax, 1.0F});
        return ok();
    }

    candidates_.reserve(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) {
        if (std::isfinite(logits[i])) {
            candidates_.push_back({static_cast<int32_t>(i), logits[i]});
        }
    }
    auto by_value_desc = [](const TokenProb& a, const TokenProb& b) {
        return a.prob > b.prob || (a.prob == b.prob && a.id < b.id);
    };

    if (cfg.top_k > 0 && static_cast<size_t>(cfg.top_k) < candidates_.size()) {
        auto kth = candidates_.begin() + cfg.top_k;
        std::nth_element(candidates_.begin(), kth - 1, candidates_.end(), by_value_desc);
        candidates_.erase(kth, candidates_.end());
    }

    // Softmax at temperature, computed relative to the maximum for stability.
    const double inv_t = 1.0 / static_cast<double>(cfg.temperature);
    double total = 0.0;
    for (auto& c : candidates_) {
        const double p = std::exp((static_cast<double>(c.prob) - max_logit) * inv_t);
        c.prob = static_cast<float>(p);
        total += p;
    }
    for (auto& c : candidates_) {
        c.prob = static_cast<float>(c.prob / total);
    }

    if (cfg.top_p < 1.0F) {
        // The nucleus lies inside any set of the largest probabilities whose mass reaches top_p,
        // so only such a set needs sorting.
        auto sort_end = candidates_.end();
        if (candidates_.size() > kSmallSort) {
            float pmax = 0.0F;
            for (const auto& c : candidates_) {
                pmax = std::max(pmax, c.prob);
            }
            float threshold = pmax / 64.0F;
            while (true) {
                auto mid = std::partition(candidates_.begin(), candidates_.end(),
                                          [threshold](const TokenProb& c) {
                                              return c.prob >= threshold;
                                          });
                double mass = 0.0;
                for (auto it = candidates_.begin(); it != mid; ++it) {
                    mass += it->prob;
                }
                if (mass >= cfg.top_p || threshold <= 0.0F) {
                    sort_end = mid;
                    break;
                }
                threshold = threshold < 1e-30F ? 0.0F : threshold / 64.0F;
            }
        }
        std::sort(candidates_.begin(), sort_end, by_value_desc);
        double cumulative = 0.0;
        size_t keep = 0;
        while (keep < static_cast<size_t>(sort_end - candidates_.begin())) {
            cumulative += candidates_[keep].prob;
            ++keep;
            if (cumulative >= cfg.top_p) {
                break;
            }
        }
        candidates_.resize(std::max<size_t>(keep, 1));
    }

    if (cfg.min_p > 0.0F) {
        float pmax = 0.0F;
        for (const auto& c : candidates_) {
            pmax = std::max(pmax, c.prob);
        }
        const float cut = cfg.min_p * pmax;
        std::erase_if(candidates_, [cut](const TokenProb& c) { return c.prob < cut; });
    }

    double kept = 0.0;
    for (const auto& c : candidates_) {
        kept += c.prob;
    }
    for (auto& c : candidates_) {
        c.prob = static_cast<float>(c.prob / kept);
    }
    return ok();
}

Result<int32_t> Sampler::sample(std::span<float> logits, const SamplingConfig& cfg,
                                std::span<const int32_t> generated, SamplerRng& rng) {
    apply_penalties(logits, cfg, generated);
    HELEXA_TRY_STATUS(build_candidates(logits, cfg));
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
    for (const auto& c : candidates_) {
        if (c.prob > 0.0F) {
            out.push_back(c);
        }
    }
    std::sort(out.begin(), out.end(), [](const TokenProb& a, const TokenProb& b) {
        return a.prob > b.prob || (a.prob == b.prob && a.id < b.id);
    });
    return out;
}

}  // namespace helexa::engine
