// The draw rule on the host (row_draw.h): its math against the library's, its penalties against
// the Sampler's, its draws against the softmax they sample, its cuts, and its determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <bit>
#include <algorithm>
#include <vector>

#include "helexa/engine/row_draw.h"
#include "helexa/engine/sampler.h"

namespace helexa::engine {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

SamplingConfig plain(float temperature) {
    SamplingConfig cfg;
    cfg.temperature = temperature;
    cfg.repetition_penalty = 1.0F;
    return cfg;
}

// One row planned alone: its RowDraw and entries.
DrawBatch planned(const SamplingConfig& cfg, const std::vector<int32_t>& generated, uint64_t seed,
                  int64_t vocab) {
    DrawBatch b;
    plan_row_draw(cfg, generated, seed, vocab, true, b);
    return b;
}

int32_t draw_at(std::vector<float> row, const SamplingConfig& cfg, uint64_t seed,
                uint32_t position) {
    DrawBatch b = planned(cfg, {}, seed, static_cast<int64_t>(row.size()));
    b.rows[0].position = position;
    return draw_row(row, b.rows[0], b.entries);
}

// Frequencies of n draws at positions 0..n-1 of one seed.
std::vector<double> frequencies(const std::vector<float>& row, const SamplingConfig& cfg, int n) {
    std::vector<double> f(row.size(), 0.0);
    for (int i = 0; i < n; ++i) {
        const int32_t t = draw_at(row, cfg, 12345, static_cast<uint32_t>(i));
        EXPECT_GE(t, 0);
        if (t >= 0) {
            f[static_cast<size_t>(t)] += 1.0 / n;
        }
    }
    return f;
}

// Pearson's chi-square of observed frequencies (n draws) against probabilities p.
double chi_square(const std::vector<double>& freq, const std::vector<double>& p, int n) {
    double x2 = 0.0;
    for (size_t i = 0; i < p.size(); ++i) {
        if (p[i] > 0) {
            const double d = freq[i] * n - p[i] * n;
            x2 += d * d / (p[i] * n);
        }
    }
    return x2;
}

std::vector<double> softmax(const std::vector<float>& logits, float t) {
    double m = -1e300;
    for (float l : logits) {
        m = std::max(m, static_cast<double>(l));
    }
    std::vector<double> p;
    double sum = 0.0;
    for (float l : logits) {
        p.push_back(std::exp((l - m) / t));
        sum += p.back();
    }
    for (double& x : p) {
        x /= sum;
    }
    return p;
}

TEST(RowDraw, LogAndExpAgreeWithTheLibrary) {
    double worst_log = 0.0;
    for (float x = 2.9e-8F; x < 20.0F; x *= 1.0001F) {
        const double want = std::log(static_cast<double>(x));
        const double got = draw::log_positive(x);
        // Relative to the result, or to ln 2's scale near 1 where the result crosses zero.
        worst_log = std::max(worst_log, std::abs(got - want) / std::max(std::abs(want), 1e-7));
    }
    EXPECT_LT(worst_log, 4e-7);
    double worst_exp = 0.0;
    for (float z = -87.0F; z <= 0.0F; z += 0.00173F) {
        const double want = std::exp(static_cast<double>(z));
        worst_exp = std::max(worst_exp, std::abs(draw::exp_nonpositive(z) - want) / want);
    }
    EXPECT_LT(worst_exp, 4e-7);
    EXPECT_EQ(draw::exp_nonpositive(0.0F), 1.0F);
    EXPECT_EQ(draw::exp_nonpositive(-90.0F), 0.0F);
    EXPECT_EQ(draw::exp_nonpositive(-kInf), 0.0F);
}

TEST(RowDraw, GumbelVariatesHaveTheGumbelMeanAndStayBounded) {
    double sum = 0.0;
    float top = -kInf;
    const int n = 200000;
    for (int i = 0; i < n; ++i) {
        const float g = draw::gumbel(draw::draw_bits(draw::row_key(7, 3), static_cast<uint32_t>(i)));
        sum += g;
        top = std::max(top, g);
    }
    EXPECT_NEAR(sum / n, 0.5772156649, 0.01);  // the Euler-Mascheroni constant
    EXPECT_LT(draw::gumbel(0xffffffffu), 17.0F);
    EXPECT_LT(top, 17.0F);
}

TEST(RowDraw, PenaltiesAreTheSamplersBitForBit) {
    std::mt19937 gen(5);
    std::normal_distribution<float> normal(0.0F, 3.0F);
    std::vector<float> logits(500);
    for (float& l : logits) {
        l = normal(gen);
    }
    SamplingConfig cfg = plain(0.0F);  // greedy: draw_row leaves the penalised row behind
    cfg.repetition_penalty = 1.3F;
    cfg.repetition_window = 4;
    cfg.presence_penalty = 0.4F;
    cfg.frequency_penalty = 0.25F;
    cfg.logit_bias = {{3, 2.5F}, {7, -100.0F}, {11, 0.0F}};
    const std::vector<int32_t> generated = {3, 9, 9, 40, 3, 77, 9, 120, 9};

    std::vector<float> by_sampler = logits;
    Sampler::apply_penalties(by_sampler, cfg, generated);
    std::vector<float> by_rule = logits;
    const DrawBatch b = planned(cfg, generated, 1, static_cast<int64_t>(logits.size()));
    ASSERT_EQ(b.rows[0].mode, draw::kDrawGreedy);
    const int32_t token = draw_row(by_rule, b.rows[0], b.entries);
    for (size_t i = 0; i < logits.size(); ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(by_rule[i]), std::bit_cast<uint32_t>(by_sampler[i]))
            << "logit " << i;
    }
    Sampler sampler;
    SamplerRng rng(1);
    std::vector<float> again = logits;
    const auto want = sampler.sample(again, cfg, generated, rng);
    ASSERT_TRUE(want);
    EXPECT_EQ(token, *want);

    // Repetition alone (the defaults' kind, planned without the sorted merge).
    SamplingConfig repetition = plain(0.0F);
    repetition.repetition_penalty = 1.7F;
    repetition.repetition_window = 6;
    std::vector<float> by_sampler2 = logits;
    Sampler::apply_penalties(by_sampler2, repetition, generated);
    std::vector<float> by_rule2 = logits;
    const DrawBatch b2 = planned(repetition, generated, 1, static_cast<int64_t>(logits.size()));
    EXPECT_EQ(b2.entries.size(), 5U);  // the last six, 40 3 77 9 120 9: five distinct ids
    draw_row(by_rule2, b2.rows[0], b2.entries);
    for (size_t i = 0; i < logits.size(); ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(by_rule2[i]), std::bit_cast<uint32_t>(by_sampler2[i]))
            << "logit " << i;
    }
}

// Overlapped decoding: a row planned while its last token t is still on the device, then
// completed with t (feed_row_draw, draw::feed_in_flight: what the device's feed runs),
// penalises every logit bit for bit as the row planned with t known, and draws the same token
// at the same position: t new, already in the window, already counted, the token a full
// window pushes the oldest out for, biased; windows of one and of the default length;
// presence and frequency penalties (the count recomputed); greedy and sampled. Rows whose
// tokens take no penalty reserve nothing.
TEST(RowDraw, ARowPlannedWithItsTokenInFlightIsTheRowPlannedWithItKnown) {
    std::mt19937 gen(11);
    std::normal_distribution<float> normal(0.0F, 2.0F);
    std::vector<float> logits(300);
    for (float& l : logits) {
        l = normal(gen);
    }
    const auto vocab = static_cast<int64_t>(logits.size());
    const std::vector<int32_t> generated = {3, 9, 9, 40, 3, 77, 9, 40, 120, 9, 5};
    std::vector<SamplingConfig> configs;
    for (const float temperature : {0.0F, 0.9F}) {
        for (const int64_t window : {int64_t{1}, int64_t{4}, int64_t{64}}) {
            SamplingConfig cfg = plain(temperature);
            cfg.repetition_penalty = 1.6F;
            cfg.repetition_window = window;
            configs.push_back(cfg);
            cfg.logit_bias = {{3, 1.5F}, {200, -2.0F}, {77, 0.5F}};
            configs.push_back(cfg);
            cfg.top_k = 20;
            cfg.top_p = 0.9F;
            configs.push_back(cfg);
            cfg.presence_penalty = 0.4F;
            cfg.frequency_penalty = 0.3F;
            configs.push_back(cfg);
        }
        SamplingConfig counted_only = plain(temperature);  // no repetition window
        counted_only.presence_penalty = 0.7F;
        counted_only.frequency_penalty = 0.11F;
        configs.push_back(counted_only);
        counted_only.frequency_penalty = 0.0F;
        configs.push_back(counted_only);
    }
    // t: in the window and counted four times (9); in the window (120); 40, the id a window of
    // 4 (40 120 9 5) loses to t, coming back; biased and counted (3); biased and new (200); new
    // (150).
    const std::vector<int32_t> in_flight = {9, 120, 40, 3, 200, 150};
    for (size_t c = 0; c < configs.size(); ++c) {
        for (const int32_t t : in_flight) {
            SCOPED_TRACE("config " + std::to_string(c) + " t " + std::to_string(t));
            std::vector<int32_t> known = generated;
            known.push_back(t);
            const DrawBatch want = planned(configs[c], known, 77, vocab);
            DrawBatch got;
            plan_row_draw(configs[c], generated, 77, vocab, true, got, true);
            ASSERT_EQ(got.rows.size(), 1U);
            ASSERT_NE(got.rows[0].mode, draw::kDrawHost);
            EXPECT_NE(got.rows[0].in_flight_flags, 0U);
            EXPECT_EQ(got.rows[0].position, want.rows[0].position);
            // Before the feed the reserved entry is a no-op: id -1, no flags.
            ASSERT_GE(got.entries.size(), 1U);
            EXPECT_EQ(got.entries.back().id, -1);
            EXPECT_EQ(got.entries.back().flags, 0U);
            feed_row_draw(got.rows[0], got.entries, t);
            std::vector<float> by_known = logits;
            std::vector<float> by_fed = logits;
            const int32_t want_token = draw_row(by_known, want.rows[0], want.entries);
            const int32_t got_token = draw_row(by_fed, got.rows[0], got.entries);
            EXPECT_EQ(got_token, want_token);
            if (configs[c].greedy()) {  // greedy leaves the penalised row behind
                for (size_t i = 0; i < logits.size(); ++i) {
                    ASSERT_EQ(std::bit_cast<uint32_t>(by_fed[i]),
                              std::bit_cast<uint32_t>(by_known[i]))
                        << "logit " << i;
                }
            }
        }
    }
    // The feed is what makes it exact: unfed, a repeated t keeps its logit.
    SamplingConfig greedy = plain(0.0F);
    greedy.repetition_penalty = 100.0F;
    greedy.repetition_window = 2;
    std::vector<float> peaked(10, 1.0F);
    peaked[6] = 5.0F;  // 0.05 once penalised: below every other id
    DrawBatch unfed;
    plan_row_draw(greedy, std::vector<int32_t>{1}, 1, 10, true, unfed, true);
    std::vector<float> row = peaked;
    EXPECT_EQ(draw_row(row, unfed.rows[0], unfed.entries), 6);
    feed_row_draw(unfed.rows[0], unfed.entries, 6);
    row = peaked;
    EXPECT_NE(draw_row(row, unfed.rows[0], unfed.entries), 6);
    // A counted t: the count and subtract follow it (9 generated twice, then once in flight).
    SamplingConfig counted = plain(0.0F);
    counted.presence_penalty = 0.5F;
    counted.frequency_penalty = 0.25F;
    DrawBatch twice;
    plan_row_draw(counted, std::vector<int32_t>{9, 4, 9}, 1, 10, true, twice, true);
    EXPECT_EQ(twice.rows[0].in_flight_flags, draw::kCounted);
    feed_row_draw(twice.rows[0], twice.entries, 9);
    ASSERT_EQ(twice.entries[1].id, 9);
    EXPECT_EQ(twice.entries[1].flags >> draw::kCountShift, 3U);
    EXPECT_EQ(twice.entries[1].subtract, 0.5F + 0.25F * 3.0F);

    // Nothing penalises a new token: nothing reserved, nothing to feed.
    DrawBatch none;
    plan_row_draw(plain(0.7F), generated, 1, vocab, true, none, true);
    EXPECT_EQ(none.rows[0].in_flight_flags, 0U);
    EXPECT_TRUE(none.entries.empty());
    EXPECT_EQ(none.rows[0].position, generated.size() + 1);
}

TEST(RowDraw, GreedyTakesTheLowestIdOfTheMaximum) {
    EXPECT_EQ(draw_at({0.5F, 3.0F, -1.0F, 3.0F}, plain(0.0F), 1, 0), 1);
    SamplingConfig top1 = plain(2.0F);
    top1.top_k = 1;
    EXPECT_EQ(draw_at({0.5F, 3.0F, -1.0F, 3.0F}, top1, 1, 0), 1);
}

TEST(RowDraw, DrawsFollowTheSoftmaxAtTheTemperature) {
    const std::vector<float> row = {1.0F, 0.2F, -0.5F, 2.0F, 1.5F, -3.0F, 0.0F, 0.9F};
    const int n = 40000;
    for (float t : {1.0F, 0.6F, 1.7F}) {
        const auto f = frequencies(row, plain(t), n);
        // 7 degrees of freedom: 24.3 is the 0.999 quantile.
        EXPECT_LT(chi_square(f, softmax(row, t), n), 24.3) << "temperature " << t;
    }
}

TEST(RowDraw, TopKThenTopPThenMinPKeepExactlyTheirSurvivors) {
    // Probabilities at T = 1 after top_k = 4: ids 3, 4, 0, 7 (logits 2, 1.5, 1, 0.9).
    const std::vector<float> row = {1.0F, 0.2F, -0.5F, 2.0F, 1.5F, -3.0F, 0.0F, 0.9F};
    SamplingConfig cfg = plain(1.0F);
    cfg.top_k = 4;
    const int n = 30000;
    std::vector<float> kept(row.size(), -kInf);
    for (int id : {3, 4, 0, 7}) {
        kept[static_cast<size_t>(id)] = row[static_cast<size_t>(id)];
    }
    EXPECT_LT(chi_square(frequencies(row, cfg, n), softmax(kept, 1.0F), n), 16.3);  // 3 dof

    // top_p 0.7 over those four (0.415, 0.252, 0.153, 0.138): ids 3 and 4 reach 0.667 < 0.7,
    // so id 0 joins and id 7 is cut.
    cfg.top_p = 0.7F;
    kept[7] = -kInf;
    EXPECT_LT(chi_square(frequencies(row, cfg, n), softmax(kept, 1.0F), n), 13.8);  // 2 dof

    // min_p 0.5: weights relative to the top are 1, 0.61, 0.37: id 0 goes.
    cfg.min_p = 0.5F;
    kept[0] = -kInf;
    EXPECT_LT(chi_square(frequencies(row, cfg, n), softmax(kept, 1.0F), n), 10.8);  // 1 dof

    // min_p alone, over the whole vocabulary.
    SamplingConfig min_p = plain(1.0F);
    min_p.min_p = 0.3F;  // keeps weights >= 0.3: ids 3 (1), 4 (0.61), 0 (0.37), 7 (0.33)
    std::vector<float> cut(row.size(), -kInf);
    for (int id : {3, 4, 0, 7}) {
        cut[static_cast<size_t>(id)] = row[static_cast<size_t>(id)];
    }
    EXPECT_LT(chi_square(frequencies(row, min_p, n), softmax(cut, 1.0F), n), 16.3);
}

TEST(RowDraw, BannedIdsNeverWinAndBrokenRowsDrawNothing) {
    std::vector<float> row = {5.0F, -kInf, 4.0F, std::nanf(""), 4.5F};
    SamplingConfig cfg = plain(3.0F);
    std::set<int32_t> seen;
    for (uint32_t pos = 0; pos < 2000; ++pos) {
        seen.insert(draw_at(row, cfg, 9, pos));
    }
    EXPECT_EQ(seen, (std::set<int32_t>{0, 2, 4}));
    EXPECT_EQ(draw_at({1.0F, kInf, 0.0F}, cfg, 9, 0), -1);
    EXPECT_EQ(draw_at({std::nanf(""), -kInf}, cfg, 9, 0), -1);
    EXPECT_EQ(draw_at({1.0F, kInf, 0.0F}, plain(0.0F), 9, 0), -1);
    // A bias of -inf bans an id through the entries.
    cfg.logit_bias = {{0, -kInf}};
    for (uint32_t pos = 0; pos < 200; ++pos) {
        std::vector<float> r = {50.0F, 0.0F, 0.0F};
        DrawBatch b = planned(cfg, {}, 3, 3);
        b.rows[0].position = pos;
        EXPECT_NE(draw_row(r, b.rows[0], b.entries), 0);
    }
}

TEST(RowDraw, ASeedAndPositionFixTheTokenAndPositionsVaryIt) {
    std::vector<float> row(1000, 0.0F);  // uniform: every id equally likely
    SamplingConfig cfg = plain(1.0F);
    std::set<int32_t> tokens;
    for (uint32_t pos = 0; pos < 50; ++pos) {
        const int32_t t = draw_at(row, cfg, 77, pos);
        EXPECT_EQ(t, draw_at(row, cfg, 77, pos));
        tokens.insert(t);
    }
    EXPECT_GT(tokens.size(), 40U);
    int differ = 0;
    for (uint32_t pos = 0; pos < 50; ++pos) {
        differ += draw_at(row, cfg, 77, pos) != draw_at(row, cfg, 78, pos) ? 1 : 0;
    }
    EXPECT_GT(differ, 40);
}

TEST(RowDraw, SkippingHopelessIdsChangesNoDraw) {
    // Logits spread over ~40 nats: the bound skips most ids; a brute-force pass over every id,
    // one at a time, must pick the same token at every position (so the four-lane keys are the
    // scalar keys, tail and skipped blocks included).
    std::mt19937 gen(3);
    std::uniform_real_distribution<float> spread(-30.0F, 10.0F);
    std::vector<float> row(3001);  // not a multiple of the four-lane blocks
    for (float& l : row) {
        l = spread(gen);
    }
    row[1234] = std::numeric_limits<float>::quiet_NaN();
    row[77] = -kInf;
    const float max_l = *std::max_element(row.begin(), row.end(), [](float a, float b) {
        return std::isnan(a) || (!std::isnan(b) && a < b);
    });
    for (float t : {1.0F, 3.0F, 40.0F}) {  // 40: nearly flat, every id a candidate
        for (uint32_t pos = 0; pos < 300; ++pos) {
            float best_key = 0.0F;
            int32_t best = -1;
            for (size_t c = 0; c < row.size(); ++c) {
                if (!draw::finite(row[c])) {
                    continue;
                }
                const float z = draw::mul(draw::sub(row[c], max_l), 1.0F / t);
                const float key = draw::add(
                    z, draw::gumbel(draw::draw_bits(draw::row_key(5, pos), static_cast<uint32_t>(c))));
                if (draw::before(key, static_cast<int32_t>(c), best_key, best)) {
                    best_key = key;
                    best = static_cast<int32_t>(c);
                }
            }
            ASSERT_EQ(draw_at(row, plain(t), 5, pos), best) << "position " << pos;
        }
    }
}

// The top-k the host finds by a skipping scan is the rule's top-k: against a full sort of every
// finite logit, with ties (equal values across the row), banned and NaN logits, k above the
// number of finite logits, at many positions.
TEST(RowDraw, TopKScanFindsTheRulesTopK) {
    std::mt19937 gen(11);
    std::uniform_int_distribution<int> level(0, 40);  // few distinct values: many ties
    for (const int64_t vocab : {int64_t{5}, int64_t{64}, int64_t{5003}}) {
        std::vector<float> row(static_cast<size_t>(vocab));
        for (float& l : row) {
            l = 0.25F * static_cast<float>(level(gen));
        }
        row[static_cast<size_t>(vocab / 2)] = -kInf;
        row[static_cast<size_t>(vocab - 1)] = std::numeric_limits<float>::quiet_NaN();
        for (const int32_t k : {2, 7, 20, 64}) {
            SamplingConfig cfg = plain(1.0F);
            cfg.top_k = k;
            if (k >= vocab) {
                continue;  // no cut: the whole-vocabulary draw
            }
            // The reference: every finite logit sorted in the rule's order, the first k.
            std::vector<std::pair<float, int32_t>> all;
            for (int64_t c = 0; c < vocab; ++c) {
                if (draw::finite(row[static_cast<size_t>(c)])) {
                    all.emplace_back(row[static_cast<size_t>(c)], static_cast<int32_t>(c));
                }
            }
            std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
                return draw::before(a.first, a.second, b.first, b.second);
            });
            all.resize(std::min<size_t>(all.size(), static_cast<size_t>(k)));
            const float max_l = all.front().first;
            for (uint32_t pos = 0; pos < 40; ++pos) {
                const uint64_t key = draw::row_key(3, pos);
                float best_key = 0.0F;
                int32_t best = -1;
                for (const auto& [v, id] : all) {
                    const float z = draw::mul(draw::sub(v, max_l), 1.0F);
                    const float kk = draw::add(
                        z, draw::gumbel(draw::draw_bits(key, static_cast<uint32_t>(id))));
                    if (draw::before(kk, id, best_key, best)) {
                        best_key = kk;
                        best = id;
                    }
                }
                ASSERT_EQ(draw_at(row, cfg, 3, pos), best)
                    << "vocab " << vocab << " k " << k << " position " << pos;
            }
        }
    }
}

TEST(RowDraw, CoversEverythingButWideTopKAndWholeVocabularyTopPWhereTheRunnerLeavesIt) {
    SamplingConfig cfg = plain(0.8F);
    EXPECT_TRUE(drawable(cfg, 1000, false));
    cfg.top_p = 0.9F;
    EXPECT_TRUE(drawable(cfg, 1000, true));    // nucleus over the whole vocabulary
    EXPECT_FALSE(drawable(cfg, 1000, false));  // ... on a runner that leaves it to the Sampler
    cfg.top_k = 20;
    EXPECT_TRUE(drawable(cfg, 1000, false));
    cfg.top_k = draw::kMaxTopK + 1;
    EXPECT_FALSE(drawable(cfg, 1000, true));
    cfg.top_k = 2000;  // no cut on this vocabulary, so top_p is over all of it again
    EXPECT_TRUE(drawable(cfg, 1000, true));
    EXPECT_FALSE(drawable(cfg, 1000, false));
    cfg.top_p = 1.0F;
    EXPECT_TRUE(drawable(cfg, 1000, false));
    EXPECT_FALSE(drawable(cfg, draw::kMaxVocab + 1, true));
    EXPECT_TRUE(drawable(plain(0.0F), 1000, false));

    DrawBatch b;
    cfg.top_p = 0.9F;
    cfg.top_k = 0;
    plan_row_draw(cfg, std::vector<int32_t>{1, 2}, 4, 1000, false, b);
    ASSERT_EQ(b.rows.size(), 1U);
    EXPECT_EQ(b.rows[0].mode, draw::kDrawHost);
    EXPECT_TRUE(b.any_host_row());
    plan_row_draw(cfg, std::vector<int32_t>{1, 2}, 4, 1000, true, b);
    ASSERT_EQ(b.rows.size(), 2U);
    EXPECT_EQ(b.rows[1].mode, draw::kDrawSample);
    EXPECT_EQ(b.rows[1].top_k, 0);
    EXPECT_EQ(b.rows[1].top_p, 0.9F);
}

// The nucleus floor by its definition: every finite logit's (z, mass) sorted by z, the masses
// summed from the top until they reach the target; the floor is the z where they do.
float nucleus_floor_by_definition(const std::vector<float>& row, const draw::RowDraw& d) {
    float max_l = -kInf;
    for (float x : row) {
        if (draw::finite(x)) {
            max_l = std::max(max_l, x);
        }
    }
    std::vector<std::pair<float, uint64_t>> zm;
    uint64_t total = 0;
    for (float x : row) {
        if (draw::finite(x)) {
            const float z = draw::mul(draw::sub(x, max_l), d.inv_temperature);
            zm.emplace_back(z, draw::mass_of(z));
            total += zm.back().second;
        }
    }
    std::sort(zm.begin(), zm.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    const uint64_t target = draw::nucleus_target(total, draw::top_p_fixed(d.top_p));
    uint64_t sum = 0;
    for (size_t i = 0; i < zm.size(); ++i) {
        sum += zm[i].second;
        // Ties count whole: the floor is a value, so sum over every logit equal to it first.
        if (sum >= target && (i + 1 == zm.size() || zm[i + 1].first != zm[i].first)) {
            return zm[i].first;
        }
    }
    return zm.back().first;
}

TEST(RowDraw, WholeVocabularyTopPFloorIsTheDefinitions) {
    std::mt19937 gen(21);
    std::normal_distribution<float> normal(0.0F, 3.0F);
    for (int64_t vocab : {int64_t{1}, int64_t{7}, int64_t{1000}, int64_t{151936}}) {
        for (int shape = 0; shape < 5; ++shape) {
            std::vector<float> row(static_cast<size_t>(vocab));
            for (auto& x : row) {
                x = normal(gen);
            }
            if (shape == 1) {
                std::fill(row.begin(), row.end(), 0.5F);  // one value: every id ties at the floor
            } else if (shape == 2) {
                for (size_t i = 0; i < row.size(); i += 3) {
                    row[i] = -kInf;  // banned ids hold no mass
                }
                row[row.size() / 2] = 9.0F;
            } else if (shape == 3) {
                for (auto& x : row) {
                    x = std::round(x);  // a handful of distinct values: ties at every level
                }
            } else if (shape == 4) {
                row[0] = 40.0F;  // one id holds nearly all the mass
            }
            for (float t : {0.3F, 1.0F, 2.5F}) {
                for (float p : {1e-9F, 0.05F, 0.5F, 0.9F, 0.999F}) {
                    SamplingConfig cfg = plain(t);
                    cfg.top_p = p;
                    const DrawBatch b = planned(cfg, {}, 3, vocab);
                    float max_l = -kInf;
                    for (float x : row) {
                        max_l = draw::finite(x) ? std::max(max_l, x) : max_l;
                    }
                    EXPECT_EQ(nucleus_floor(row, max_l, b.rows[0]),
                              nucleus_floor_by_definition(row, b.rows[0]))
                        << "vocab " << vocab << " shape " << shape << " T " << t << " p " << p;
                }
            }
        }
    }
}

TEST(RowDraw, WholeVocabularyTopPDrawsTheNucleusSoftmax) {
    // T = 1 weights relative to the top: id 3 (1), 4 (0.61), 0 (0.37), 7 (0.33), 1 (0.17),
    // 6 (0.14), 2 (0.08), 5 (0.007); total 2.707. top_p 0.7 needs 1.895: ids 3, 4 and 0 hold
    // 1.974 (3 and 4 alone 1.607), so the nucleus is those three.
    const std::vector<float> row = {1.0F, 0.2F, -0.5F, 2.0F, 1.5F, -3.0F, 0.0F, 0.9F};
    SamplingConfig cfg = plain(1.0F);
    cfg.top_p = 0.7F;
    const int n = 30000;
    std::vector<float> kept(row.size(), -kInf);
    for (int id : {3, 4, 0}) {
        kept[static_cast<size_t>(id)] = row[static_cast<size_t>(id)];
    }
    EXPECT_LT(chi_square(frequencies(row, cfg, n), softmax(kept, 1.0F), n), 13.8);  // 2 dof

    // min_p on top: weights 1, 0.61, 0.37 against min_p 0.5 leave ids 3 and 4.
    cfg.min_p = 0.5F;
    kept[0] = -kInf;
    EXPECT_LT(chi_square(frequencies(row, cfg, n), softmax(kept, 1.0F), n), 10.8);  // 1 dof

    // Every draw lies at or above the floor, on a large random row at several temperatures.
    std::mt19937 gen(5);
    std::normal_distribution<float> normal(0.0F, 2.0F);
    std::vector<float> big(50000);
    for (auto& x : big) {
        x = normal(gen);
    }
    const float max_l = *std::max_element(big.begin(), big.end());
    for (float t : {0.6F, 1.0F}) {
        SamplingConfig c = plain(t);
        c.top_p = 0.9F;
        const DrawBatch b = planned(c, {}, 8, static_cast<int64_t>(big.size()));
        const float z_floor = nucleus_floor(big, max_l, b.rows[0]);
        EXPECT_LT(z_floor, 0.0F);
        for (uint32_t pos = 0; pos < 64; ++pos) {
            const int32_t id = draw_at(big, c, 8, pos);
            ASSERT_GE(id, 0);
            const float z = draw::mul(draw::sub(big[static_cast<size_t>(id)], max_l), 1.0F / t);
            EXPECT_GE(z, z_floor) << "T " << t << " position " << pos;
        }
    }
}

TEST(RowDraw, NucleusTargetIsTheCeilingOfTheShareAndNeverZero) {
    const uint64_t total = (uint64_t{1} << 57) + 12345;
    const uint32_t p = draw::top_p_fixed(0.9F);
    // Exact by 128-bit arithmetic (a GCC extension, so -Wpedantic is told).
    __extension__ using U128 = unsigned __int128;
    const U128 product = static_cast<U128>(total) * p;
    const auto want = static_cast<uint64_t>((product + 0xffffff) >> 24);
    EXPECT_EQ(draw::nucleus_target(total, p), want);
    EXPECT_EQ(draw::nucleus_target(1000, 0), 1U);
    EXPECT_EQ(draw::nucleus_target(uint64_t{1} << 40, draw::top_p_fixed(0.5F)), uint64_t{1} << 39);
    EXPECT_EQ(draw::top_p_fixed(0.5F), 1U << 23);
    for (float z : {0.0F, -1e-30F, -0.5F, -3.0F, -100.0F}) {
        EXPECT_EQ(draw::from_order_key(draw::order_key(z)), z);
        EXPECT_LT(draw::order_key(draw::mul(z, 2.0F) - 1.0F), draw::order_key(z));
    }
    EXPECT_EQ(draw::mass_of(0.0F), uint64_t{1} << 40);
    EXPECT_EQ(draw::mass_of(-200.0F), 0U);
}

TEST(RowDraw, PackedBatchesHoldRowsThenEntries) {
    SamplingConfig cfg = plain(1.0F);
    cfg.repetition_penalty = 1.2F;
    DrawBatch b;
    plan_row_draw(cfg, std::vector<int32_t>{4, 5, 4}, 1, 100, true, b);
    plan_row_draw(cfg, std::vector<int32_t>{6}, 2, 100, true, b);
    ASSERT_EQ(b.rows.size(), 2U);
    ASSERT_EQ(b.entries.size(), 3U);  // {4, 5} then {6}
    EXPECT_EQ(b.rows[1].first_entry, 2U);
    EXPECT_EQ(b.rows[1].n_entries, 1U);
    EXPECT_EQ(b.rows[0].position, 3U);
    const std::vector<int32_t> words = b.packed(2);
    ASSERT_EQ(words.size(), 2 * 12 + 3 * 4U);
    EXPECT_EQ(words[24 + 8], 6);  // the third entry's id
    // Padded to a bucket of 4 rows: two rows that draw nothing, the entries after them.
    const std::vector<int32_t> padded = b.packed(4);
    ASSERT_EQ(padded.size(), 4 * 12 + 3 * 4U);
    EXPECT_EQ(padded[24], static_cast<int32_t>(draw::kDrawHost));
    EXPECT_EQ(padded[36], static_cast<int32_t>(draw::kDrawHost));
    EXPECT_EQ(padded[48 + 8], 6);
}

}  // namespace
}  // namespace helexa::engine
