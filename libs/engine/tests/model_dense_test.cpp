// The dense decoder (qwen3 tied/untied, llama with llama3 rope scaling, qwen2 with qkv bias) on
// seeded random models: against an independent naive forward written here in double, and
// self-consistency of the step API (chunked prefill, batching, paged KV with shuffled blocks).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <random>

#include "helexa/engine/cpu_backend.h"
#include "helexa/engine/model_runner.h"
#include "helexa/engine/random_model.h"
#include "helexa/engine/row_draw.h"
#include "helexa/engine/weights.h"

namespace helexa::engine {
namespace {

namespace fs = std::filesystem;
using Mat = std::vector<double>;

fs::path temp_model_dir(const std::string& name) {
    return fs::temp_directory_path() / ("helexa_model_" + std::to_string(::getpid()) + "_" + name);
}

// An independent scalar forward over the whole prompt: logits [n_tokens, vocab].
class NaiveModel {
public:
    NaiveModel(const fs::path& dir, const ModelConfig& c) : c_(c) {
        auto set = WeightSet::open(dir);
        EXPECT_TRUE(set.has_value());
        w_ = std::move(*set);
    }

    Mat weight(const std::string& name) const {
        const TensorInfo* t = w_.find(name);
        EXPECT_NE(t, nullptr) << name;
        std::vector<float> f(static_cast<size_t>(t->numel()));
        cpu::to_f32(f.data(), t->bytes.data(), t->dtype, t->numel());
        return Mat(f.begin(), f.end());
    }
    bool has(const std::string& name) const { return w_.find(name) != nullptr; }

    // y[T, N] = x[T, K] W[N, K]^T (+ b)
    static Mat linear(const Mat& x, const Mat& w, int64_t K, const Mat* b = nullptr) {
        const int64_t T = static_cast<int64_t>(x.size()) / K;
        const int64_t N = static_cast<int64_t>(w.size()) / K;
        Mat y(static_cast<size_t>(T * N));
        for (int64_t t = 0; t < T; ++t) {
            for (int64_t n = 0; n < N; ++n) {
                double acc = b ? (*b)[static_cast<size_t>(n)] : 0.0;
                for (int64_t k = 0; k < K; ++k) {
                    acc += x[static_cast<size_t>(t * K + k)] * w[static_cast<size_t>(n * K + k)];
                }
                y[static_cast<size_t>(t * N + n)] = acc;
            }
        }
        return y;
    }
    Mat norm(const Mat& x, const Mat& w) const {
        const auto d = static_cast<int64_t>(w.size());
        Mat y(x.size());
        for (size_t r = 0; r < x.size() / static_cast<size_t>(d); ++r) {
            double ss = 0;
            for (int64_t i = 0; i < d; ++i) {
                ss += x[r * d + i] * x[r * d + i];
            }
            const double inv = 1.0 / std::sqrt(ss / d + c_.rms_norm_eps);
            for (int64_t i = 0; i < d; ++i) {
                y[r * d + i] = x[r * d + i] * inv * w[static_cast<size_t>(i)];
            }
        }
        return y;
    }
    void rope(Mat& x, int64_t T, int64_t nh) const {
        const auto inv = rope_inv_freq(c_);
        const int64_t hd = c_.head_dim;
        const int64_t half = c_.rotary_dim() / 2;
        for (int64_t t = 0; t < T; ++t) {
            for (int64_t h = 0; h < nh; ++h) {
                double* v = &x[static_cast<size_t>((t * nh + h) * hd)];
                for (int64_t i = 0; i < half; ++i) {
                    const double a = static_cast<double>(t) * inv[static_cast<size_t>(i)];
                    const double x0 = v[i];
                    const double x1 = v[i + half];
                    v[i] = x0 * std::cos(a) - x1 * std::sin(a);
                    v[i + half] = x1 * std::cos(a) + x0 * std::sin(a);
                }
            }
        }
    }

    Mat forward(const std::vector<int32_t>& ids) const {
        const int64_t T = static_cast<int64_t>(ids.size());
        const int64_t H = c_.hidden_size;
        const int64_t hd = c_.head_dim;
        const int64_t nh = c_.num_attention_heads;
        const int64_t nkv = c_.num_key_value_heads;
        const Mat emb = weight("model.embed_tokens.weight");
        Mat x(static_cast<size_t>(T * H));
        for (int64_t t = 0; t < T; ++t) {
            std::copy_n(emb.begin() + ids[static_cast<size_t>(t)] * H, H, x.begin() + t * H);
        }
        for (int64_t l = 0; l < c_.num_hidden_layers; ++l) {
            const std::string p = "model.layers." + std::to_string(l) + ".";
            Mat h = norm(x, weight(p + "input_layernorm.weight"));
            auto proj = [&](const std::string& n) {
                const std::string wn = p + "self_attn." + n + "_proj.";
                if (has(wn + "bias")) {
                    Mat b = weight(wn + "bias");
                    return linear(h, weight(wn + "weight"), H, &b);
                }
                return linear(h, weight(wn + "weight"), H);
            };
            Mat q = proj("q");
            Mat k = proj("k");
            Mat v = proj("v");
            if (has(p + "self_attn.q_norm.weight")) {
                q = norm(q, weight(p + "self_attn.q_norm.weight"));
                k = norm(k, weight(p + "self_attn.k_norm.weight"));
            }
            rope(q, T, nh);
            rope(k, T, nkv);
            Mat attn(static_cast<size_t>(T * nh * hd), 0.0);
            for (int64_t t = 0; t < T; ++t) {
                for (int64_t hh = 0; hh < nh; ++hh) {
                    const int64_t g = hh / (nh / nkv);
                    std::vector<double> s;
                    double mx = -1e300;
                    for (int64_t j = 0; j <= t; ++j) {
                        double d = 0;
                        for (int64_t e = 0; e < hd; ++e) {
                            d += q[static_cast<size_t>((t * nh + hh) * hd + e)] *
                                 k[static_cast<size_t>((j * nkv + g) * hd + e)];
                        }
                        s.push_back(d / std::sqrt(static_cast<double>(hd)));
                        mx = std::max(mx, s.back());
                    }
                    double den = 0;
                    for (double& e : s) {
                        e = std::exp(e - mx);
                        den += e;
                    }
                    for (int64_t j = 0; j <= t; ++j) {
                        for (int64_t e = 0; e < hd; ++e) {
                            attn[static_cast<size_t>((t * nh + hh) * hd + e)] +=
                                s[static_cast<size_t>(j)] / den *
                                v[static_cast<size_t>((j * nkv + g) * hd + e)];
                        }
                    }
                }
            }
            Mat o = linear(attn, weight(p + "self_attn.o_proj.weight"), nh * hd);
            for (size_t i = 0; i < x.size(); ++i) {
                x[i] += o[i];
            }
            h = norm(x, weight(p + "post_attention_layernorm.weight"));
            Mat gate = linear(h, weight(p + "mlp.gate_proj.weight"), H);
            Mat up = linear(h, weight(p + "mlp.up_proj.weight"), H);
            for (size_t i = 0; i < gate.size(); ++i) {
                gate[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
            }
            Mat down = linear(gate, weight(p + "mlp.down_proj.weight"), c_.intermediate_size);
            for (size_t i = 0; i < x.size(); ++i) {
                x[i] += down[i];
            }
        }
        x = norm(x, weight("model.norm.weight"));
        return linear(x, weight(has("lm_head.weight") ? "lm_head.weight"
                                                      : "model.embed_tokens.weight"),
                      H);
    }

private:
    ModelConfig c_;
    WeightSet w_;
};

struct Variant {
    std::string name;
    RandomModelSpec spec;
};

std::vector<Variant> variants() {
    std::vector<Variant> v;
    RandomModelSpec base;
    base.dtype = DType::kF32;
    base.init_std = 0.08f;  // larger than HF's 0.02 so logits are far from uniform
    base.seed = 42;
    v.push_back({"qwen3_tied", base});
    auto untied = base;
    untied.tie_word_embeddings = false;
    untied.seed = 43;
    v.push_back({"qwen3_untied", untied});
    auto llama = base;
    llama.model_type = "llama";
    llama.tie_word_embeddings = false;
    llama.rope_theta = 500000;
    RopeConfig r;
    r.type = RopeType::kLlama3;
    r.factor = 8;
    r.low_freq_factor = 1;
    r.high_freq_factor = 4;
    r.original_max_position_embeddings = 64;  // small, so the scaled band matters at short range
    llama.rope_scaling = r;
    llama.seed = 44;
    v.push_back({"llama3", llama});
    auto qwen2 = base;
    qwen2.model_type = "qwen2";
    qwen2.seed = 45;
    qwen2.rope_theta = 10000;
    v.push_back({"qwen2_bias", qwen2});
    return v;
}

class DenseModel : public ::testing::TestWithParam<Variant> {
protected:
    void SetUp() override {
        dir_ = temp_model_dir(GetParam().name);
        ASSERT_TRUE(write_random_model(GetParam().spec, dir_).has_value());
        ModelRunnerOptions opt;
        opt.backend.n_threads = 2;
        opt.block_size = 4;
        opt.n_blocks = 96;
        auto r = load_model_runner(dir_, opt);
        ASSERT_TRUE(r.has_value()) << r.error().full_message();
        runner_ = std::move(*r);
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::vector<int32_t> prompt(size_t n, uint32_t seed) const {
        std::mt19937 rng(seed);
        std::vector<int32_t> ids(n);
        for (auto& id : ids) {
            id = static_cast<int32_t>(rng() % static_cast<uint32_t>(runner_->vocab_size()));
        }
        return ids;
    }

    // Runs `ids` through the runner in chunks of `chunk`, returning the logits after each chunk.
    std::vector<std::vector<float>> run_chunked(const std::vector<int32_t>& ids, size_t chunk,
                                                const std::vector<int32_t>& table) {
        std::vector<std::vector<float>> out;
        for (size_t s = 0; s < ids.size(); s += chunk) {
            const size_t n = std::min(chunk, ids.size() - s);
            StepBatch b;
            b.seqs.push_back({1, std::span(ids).subspan(s, n), static_cast<int64_t>(s), table,
                              true});
            std::vector<float> logits;
            auto st = runner_->step(b, logits);
            EXPECT_TRUE(st.has_value()) << st.error().full_message();
            out.push_back(logits);
        }
        return out;
    }

    std::vector<int32_t> identity_table(int32_t first, int32_t n) const {
        std::vector<int32_t> t(static_cast<size_t>(n));
        std::iota(t.begin(), t.end(), first);
        return t;
    }

    fs::path dir_;
    std::unique_ptr<CausalLmRunner> runner_;
};

double max_abs_diff(std::span<const float> a, std::span<const double> b) {
    double m = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        m = std::max(m, std::abs(a[i] - b[i]));
    }
    return m;
}

// Token-by-token decode (every position through the 1-row path) and one-shot prefill against
// the naive forward at every position.
TEST_P(DenseModel, MatchesNaiveForwardAtEveryPosition) {
    const auto ids = prompt(23, 1);
    NaiveModel naive(dir_, runner_->config());
    const Mat ref = naive.forward(ids);
    const int64_t V = runner_->vocab_size();
    auto steps = run_chunked(ids, 1, identity_table(0, 8));
    ASSERT_EQ(steps.size(), ids.size());
    for (size_t t = 0; t < ids.size(); ++t) {
        std::span<const double> want(ref.data() + t * V, static_cast<size_t>(V));
        EXPECT_LT(max_abs_diff(steps[t], want), 2e-4) << "position " << t;
        const auto got_max = std::max_element(steps[t].begin(), steps[t].end()) - steps[t].begin();
        const auto want_max = std::max_element(want.begin(), want.end()) - want.begin();
        EXPECT_EQ(got_max, want_max) << "position " << t;
    }
    auto oneshot = run_chunked(ids, ids.size(), identity_table(8, 8));
    EXPECT_LT(max_abs_diff(oneshot[0], std::span(ref.data() + (ids.size() - 1) * V,
                                                  static_cast<size_t>(V))),
              2e-4);
}

TEST_P(DenseModel, ChunkedPrefillEqualsOneShot) {
    const auto ids = prompt(37, 2);
    auto oneshot = run_chunked(ids, ids.size(), identity_table(0, 10));
    for (size_t chunk : {5u, 8u, 16u}) {
        auto chunked = run_chunked(ids, chunk, identity_table(10, 10));
        const auto& last = chunked.back();
        for (size_t i = 0; i < last.size(); ++i) {
            ASSERT_NEAR(last[i], oneshot[0][i], 1e-4) << "chunk " << chunk << " logit " << i;
        }
    }
}

TEST_P(DenseModel, PagedKvWithShuffledBlocksEqualsContiguous) {
    const auto ids = prompt(29, 3);
    auto contiguous = run_chunked(ids, 7, identity_table(0, 8));
    std::vector<int32_t> shuffled = {77, 3, 50, 12, 91, 8, 33, 60};
    auto paged = run_chunked(ids, 7, shuffled);
    ASSERT_EQ(paged.size(), contiguous.size());
    for (size_t c = 0; c < paged.size(); ++c) {
        for (size_t i = 0; i < paged[c].size(); ++i) {
            ASSERT_NEAR(paged[c][i], contiguous[c][i], 1e-5);
        }
    }
}

// Three sequences in one step — a fresh prefill, a decode after a cached prefix and a
// continuation chunk — give the same logits as each run alone.
TEST_P(DenseModel, BatchedStepEqualsEachSequenceAlone) {
    const auto a = prompt(11, 4);
    const auto b = prompt(19, 5);
    const auto c = prompt(6, 6);
    const auto ta = identity_table(0, 5);
    const auto tb = identity_table(5, 5);
    const auto tc = identity_table(10, 5);
    // Alone: a in one shot; b prefix 18 then decode 1; c prefix 2 then chunk 4.
    auto alone_a = run_chunked(a, a.size(), ta).back();
    std::vector<int32_t> b_prefix(b.begin(), b.end() - 1);
    run_chunked(b_prefix, b_prefix.size(), tb);
    StepBatch solo_b;
    solo_b.seqs.push_back({2, std::span(b).subspan(18, 1), 18, tb, true});
    std::vector<float> alone_b;
    ASSERT_TRUE(runner_->step(solo_b, alone_b).has_value());
    std::vector<int32_t> c_prefix(c.begin(), c.begin() + 2);
    run_chunked(c_prefix, 2, tc);
    StepBatch solo_c;
    solo_c.seqs.push_back({3, std::span(c).subspan(2, 4), 2, tc, true});
    std::vector<float> alone_c;
    ASSERT_TRUE(runner_->step(solo_c, alone_c).has_value());

    // Batched, with fresh blocks for every sequence (prefixes re-prefilled first).
    const auto ta2 = identity_table(20, 5);
    const auto tb2 = identity_table(25, 5);
    const auto tc2 = identity_table(30, 5);
    run_chunked(b_prefix, 9, tb2);
    run_chunked(c_prefix, 2, tc2);
    const auto td = identity_table(40, 1);  // spans in a StepBatch must outlive the step
    StepBatch batch;
    batch.seqs.push_back({2, std::span(b).subspan(18, 1), 18, tb2, true});
    batch.seqs.push_back({1, std::span(a), 0, ta2, true});
    batch.seqs.push_back({9, std::span(a).subspan(0, 3), 0, td, false});
    batch.seqs.push_back({3, std::span(c).subspan(2, 4), 2, tc2, true});
    std::vector<float> logits;
    ASSERT_TRUE(runner_->step(batch, logits).has_value());
    const auto V = static_cast<size_t>(runner_->vocab_size());
    ASSERT_EQ(logits.size(), 3 * V);  // no row for the sequence without need_logits
    {
        // The scheduler's path: the same step again (same blocks, same K/V written), its rows
        // left in the runner's memory.
        std::span<float> rows;
        ASSERT_TRUE(runner_->step_in_place(batch, rows).has_value());
        ASSERT_EQ(rows.size(), logits.size());
        EXPECT_TRUE(std::equal(rows.begin(), rows.end(), logits.begin()));
    }
    for (size_t i = 0; i < V; ++i) {
        ASSERT_NEAR(logits[i], alone_b[i], 1e-4);
        ASSERT_NEAR(logits[V + i], alone_a[i], 1e-4);
        ASSERT_NEAR(logits[2 * V + i], alone_c[i], 1e-4);
    }
}

INSTANTIATE_TEST_SUITE_P(Architectures, DenseModel, ::testing::ValuesIn(variants()),
                         [](const auto& param_info) { return param_info.param.name; });

class DenseModelSingle : public ::testing::Test {
protected:
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    fs::path dir_ = temp_model_dir("single");
};

TEST_F(DenseModelSingle, Bf16WeightsMatchNaiveOnTheSameWeights) {
    RandomModelSpec spec;
    spec.dtype = DType::kBF16;
    spec.init_std = 0.08f;
    spec.seed = 9;
    ASSERT_TRUE(write_random_model(spec, dir_).has_value());
    ModelRunnerOptions opt;
    opt.block_size = 16;
    opt.n_blocks = 4;
    auto r = load_model_runner(dir_, opt);
    ASSERT_TRUE(r.has_value()) << r.error().full_message();
    std::vector<int32_t> ids = {1, 5, 200, 7, 7, 300, 2, 511, 0, 64};
    NaiveModel naive(dir_, (*r)->config());
    const Mat ref = naive.forward(ids);
    std::vector<int32_t> table = {2, 0};
    StepBatch b;
    b.seqs.push_back({1, ids, 0, table, true});
    std::vector<float> logits;
    ASSERT_TRUE((*r)->step(b, logits).has_value());
    const auto V = static_cast<size_t>((*r)->vocab_size());
    EXPECT_LT(max_abs_diff(logits, std::span(ref.data() + (ids.size() - 1) * V, V)), 2e-4);
    EXPECT_EQ((*r)->weight_bytes(), random_model_parameter_count(spec) * 2);
}

// step_sample draws each covered row where the logits are (the CPU backend's draw_rows), the
// same tokens as the rule over step()'s rows on the host; a kDrawHost row gets -2 and every
// row's logits come back.
TEST_F(DenseModelSingle, StepSampleDrawsCoveredRowsAndReturnsLogitsForHostRows) {
    RandomModelSpec spec;
    spec.dtype = DType::kF32;
    ASSERT_TRUE(write_random_model(spec, dir_).has_value());
    auto r = load_model_runner(dir_, ModelRunnerOptions{.block_size = 4, .n_blocks = 16});
    ASSERT_TRUE(r.has_value());
    const int64_t V = (*r)->vocab_size();
    const std::vector<int32_t> a = {3, 9, 27, 81};
    const std::vector<int32_t> b = {5, 10, 200};
    const std::vector<int32_t> ta = {0};
    const std::vector<int32_t> tb = {1};
    StepBatch batch;
    batch.seqs.push_back({1, a, 0, ta, true});
    batch.seqs.push_back({2, b, 0, tb, true});
    std::vector<float> logits;
    ASSERT_TRUE((*r)->step(batch, logits).has_value());

    SamplingConfig greedy_penalised;
    greedy_penalised.temperature = 0.0F;
    greedy_penalised.repetition_penalty = 1.5F;
    SamplingConfig top_k;
    top_k.temperature = 0.7F;
    top_k.top_k = 8;
    top_k.top_p = 0.9F;
    for (uint32_t position = 0; position < 8; ++position) {
        DrawBatch draws;
        const std::vector<int32_t> generated = {81, 27, 81};
        plan_row_draw(greedy_penalised, generated, 11, V, true, draws);
        plan_row_draw(top_k, {}, 12, V, true, draws);
        draws.rows[1].position = position;
        std::vector<int32_t> tokens;
        std::span<float> host_rows;
        ASSERT_TRUE((*r)->step_sample(batch, draws, tokens, host_rows).has_value());
        ASSERT_EQ(tokens.size(), 2U);
        EXPECT_TRUE(host_rows.empty());
        for (size_t row = 0; row < 2; ++row) {
            std::vector<float> own(logits.begin() + static_cast<std::ptrdiff_t>(row * V),
                                   logits.begin() + static_cast<std::ptrdiff_t>((row + 1) * V));
            EXPECT_EQ(tokens[row], draw_row(own, draws.rows[row], draws.entries)) << row;
        }
    }

    SamplingConfig nucleus;  // top-p over the whole vocabulary, on a runner that leaves it to
    nucleus.top_p = 0.8F;    // the host Sampler
    DrawBatch mixed;
    plan_row_draw(top_k, {}, 12, V, true, mixed);
    plan_row_draw(nucleus, {}, 13, V, false, mixed);
    std::vector<int32_t> tokens;
    std::span<float> host_rows;
    ASSERT_TRUE((*r)->step_sample(batch, mixed, tokens, host_rows).has_value());
    ASSERT_EQ(tokens.size(), 2U);
    EXPECT_GE(tokens[0], 0);
    EXPECT_EQ(tokens[1], -2);
    ASSERT_EQ(host_rows.size(), logits.size());
    EXPECT_TRUE(std::equal(host_rows.begin() + V, host_rows.end(), logits.begin() + V));

    DrawBatch short_draws;  // one draw for two rows: refused, not read past
    plan_row_draw(top_k, {}, 12, V, true, short_draws);
    EXPECT_FALSE((*r)->step_sample(batch, short_draws, tokens, host_rows).has_value());
}

TEST_F(DenseModelSingle, RejectsBadStepsAndBadModels) {
    RandomModelSpec spec;
    spec.dtype = DType::kF32;
    ASSERT_TRUE(write_random_model(spec, dir_).has_value());
    ModelRunnerOptions opt;
    opt.block_size = 4;
    opt.n_blocks = 8;
    auto r = load_model_runner(dir_, opt);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ((*r)->kv_layout().n_blocks, 8);
    EXPECT_EQ((*r)->max_context_tokens(), 32);
    std::vector<int32_t> ids = {1, 2, 3, 4, 5};
    std::vector<int32_t> short_table = {0};
    std::vector<float> logits;
    StepBatch b;
    b.seqs.push_back({1, ids, 0, short_table, true});
    auto st = (*r)->step(b, logits);
    ASSERT_FALSE(st.has_value());
    EXPECT_NE(st.error().message().find("needs 2 KV blocks"), std::string::npos);
    std::vector<int32_t> bad_block = {0, 8};
    b.seqs[0].block_table = bad_block;
    EXPECT_FALSE((*r)->step(b, logits).has_value());
    std::vector<int32_t> bad_token = {1, 9999};
    std::vector<int32_t> table = {0, 1};
    b.seqs[0] = {1, bad_token, 0, table, true};
    EXPECT_FALSE((*r)->step(b, logits).has_value());
    StepBatch empty;
    ASSERT_TRUE((*r)->step(empty, logits).has_value());
    EXPECT_TRUE(logits.empty());

    // A missing tensor names itself; an unsupported model_type names the supported set.
    auto config = random_model_config_json(spec);
    config["model_type"] = "gpt2";
    std::ofstream(dir_ / "config.json") << config.dump();
    auto bad = load_model_runner(dir_, opt);
    ASSERT_FALSE(bad.has_value());
    EXPECT_NE(bad.error().full_message().find("qwen3, llama, qwen2"), std::string::npos);
    config["model_type"] = "qwen3";
    config["tie_word_embeddings"] = false;
    std::ofstream(dir_ / "config.json") << config.dump();
    auto missing = load_model_runner(dir_, opt);
    ASSERT_FALSE(missing.has_value());
    EXPECT_NE(missing.error().full_message().find("lm_head.weight"), std::string::npos);
}

TEST_F(DenseModelSingle, ActivationHookNamesEveryLayer) {
    RandomModelSpec spec;
    spec.dtype = DType::kF32;
    ASSERT_TRUE(write_random_model(spec, dir_).has_value());
    auto r = load_model_runner(dir_, ModelRunnerOptions{.block_size = 4, .n_blocks = 4});
    ASSERT_TRUE(r.has_value());
    std::map<std::string, std::pair<int64_t, int64_t>> seen;
    (*r)->set_activation_hook([&](std::string_view name, std::span<const float> data,
                                  int64_t rows, int64_t cols) {
        EXPECT_EQ(static_cast<int64_t>(data.size()), rows * cols);
        seen[std::string(name)] = {rows, cols};
    });
    std::vector<int32_t> ids = {3, 4, 5};
    std::vector<int32_t> table = {0};
    StepBatch b;
    b.seqs.push_back({1, ids, 0, table, true});
    std::vector<float> logits;
    ASSERT_TRUE((*r)->step(b, logits).has_value());
    for (const char* name : {"embed", "layers.0.input_norm", "layers.0.q", "layers.0.k",
                             "layers.0.v", "layers.0.attn_out", "layers.0.attn_proj",
                             "layers.0.post_norm", "layers.0.mlp_out", "layers.0.out",
                             "layers.1.out", "final_norm", "logits"}) {
        EXPECT_TRUE(seen.count(name)) << name;
    }
    EXPECT_EQ(seen["layers.0.q"], (std::pair<int64_t, int64_t>{3, 64}));
    EXPECT_EQ(seen["logits"], (std::pair<int64_t, int64_t>{1, 512}));
}

TEST(RandomModel, IsDeterministicAndSeedSensitive) {
    const auto d1 = temp_model_dir("det1");
    const auto d2 = temp_model_dir("det2");
    const auto d3 = temp_model_dir("det3");
    RandomModelSpec spec;
    spec.eos_token_ids = {7, 8};
    spec.bos_token_id = 1;
    ASSERT_TRUE(write_random_model(spec, d1).has_value());
    ASSERT_TRUE(write_random_model(spec, d2).has_value());
    spec.seed = 1;
    ASSERT_TRUE(write_random_model(spec, d3).has_value());
    auto slurp = [](const fs::path& p) {
        std::ifstream in(p, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    EXPECT_EQ(slurp(d1 / "model.safetensors"), slurp(d2 / "model.safetensors"));
    EXPECT_NE(slurp(d1 / "model.safetensors"), slurp(d3 / "model.safetensors"));
    auto cfg = load_model_config(d1);
    ASSERT_TRUE(cfg.has_value());
    EXPECT_EQ(cfg->eos_token_ids, (std::vector<int32_t>{7, 8}));
    spec.model_type = "mistral";
    EXPECT_FALSE(write_random_model(spec, d3).has_value());
    for (const auto& d : {d1, d2, d3}) {
        std::error_code ec;
        fs::remove_all(d, ec);
    }
}

}  // namespace
}  // namespace helexa::engine
