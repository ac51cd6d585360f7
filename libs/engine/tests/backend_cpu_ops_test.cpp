// Each CPU backend operation against a naive scalar reference on awkward sizes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "helexa/engine/cpu_backend.h"
#include "helexa/engine/safetensors.h"

namespace helexa::engine {
namespace {

class CpuOps : public ::testing::Test {
protected:
    void SetUp() override { backend_ = make_cpu_backend(3); }

    Tensor make(const std::vector<float>& host, int64_t rows, int64_t cols) {
        auto t = backend_->alloc(DType::kF32, rows, cols);
        EXPECT_TRUE(t.has_value());
        EXPECT_TRUE(backend_->copy_from_host(*t, host.data()).has_value());
        return *t;
    }
    Tensor make_i32(const std::vector<int32_t>& host) {
        auto t = backend_->alloc(DType::kI32, 1, static_cast<int64_t>(host.size()));
        EXPECT_TRUE(backend_->copy_from_host(*t, host.data()).has_value());
        return *t;
    }
    std::vector<float> read(const Tensor& t) {
        std::vector<float> out(static_cast<size_t>(t.numel()));
        EXPECT_TRUE(backend_->copy_to_host(out.data(), t).has_value());
        return out;
    }
    std::vector<float> random(size_t n, float scale = 1.0f) {
        std::uniform_real_distribution<float> d(-scale, scale);
        std::vector<float> v(n);
        for (auto& x : v) {
            x = d(rng_);
        }
        return v;
    }

    std::unique_ptr<Backend> backend_;
    std::mt19937 rng_{1234};
};

void expect_near_all(const std::vector<float>& got, const std::vector<double>& want, double tol,
                     const char* what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], tol * (1.0 + std::abs(want[i]))) << what << " at " << i;
    }
}

TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
    cpu::ThreadPool pool(4);
    for (int64_t n : {1, 3, 4, 5, 17, 1000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        pool.parallel_for(n, 1, [&](int64_t a, int64_t b, int) {
            for (int64_t i = a; i < b; ++i) {
                hits[static_cast<size_t>(i)]++;
            }
        });
        for (auto& h : hits) {
            ASSERT_EQ(h.load(), 1) << "n=" << n;
        }
    }
}

TEST(Conversions, Bf16AndF16RoundTrip) {
    for (float v : {0.0f, 1.0f, -2.5f, 3.140625f, 65504.0f, 6.0e-8f, -1.0e-5f}) {
        EXPECT_EQ(f16_to_f32(f32_to_f16(v)), f16_to_f32(f32_to_f16(f16_to_f32(f32_to_f16(v)))));
        EXPECT_NEAR(f16_to_f32(f32_to_f16(v)), v, std::abs(v) * 1e-3 + 6e-8) << v;
        EXPECT_NEAR(bf16_to_f32(f32_to_bf16(v)), v, std::abs(v) * 8e-3) << v;
    }
    EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
    EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
    EXPECT_TRUE(std::isinf(f16_to_f32(f32_to_f16(1e6f))));
}

// linear over every weight dtype, with and without bias, including strided input/output views
// and row counts on both sides of the sgemm threshold.
TEST_F(CpuOps, LinearMatchesNaiveForEveryDtype) {
    for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
        for (int64_t T : {1, 2, 5, 6, 7, 33}) {
            const int64_t K = 37;
            const int64_t N = 129;
            auto xs = random(static_cast<size_t>(T * (K + 3)));
            auto ws = random(static_cast<size_t>(N * K));
            auto bs = random(static_cast<size_t>(N));
            // Weights as stored: round to the dtype first so the reference sees the same values.
            std::vector<std::byte> wbytes(static_cast<size_t>(N * K * dtype_size(dt)));
            for (int64_t i = 0; i < N * K; ++i) {
                if (dt == DType::kF32) {
                    std::memcpy(wbytes.data() + i * 4, &ws[static_cast<size_t>(i)], 4);
                } else {
                    const uint16_t h = dt == DType::kBF16 ? f32_to_bf16(ws[static_cast<size_t>(i)])
                                                          : f32_to_f16(ws[static_cast<size_t>(i)]);
                    ws[static_cast<size_t>(i)] =
                        dt == DType::kBF16 ? bf16_to_f32(h) : f16_to_f32(h);
                    std::memcpy(wbytes.data() + i * 2, &h, 2);
                }
            }
            auto w = backend_->upload_weight(wbytes, dt, N, K);
            ASSERT_TRUE(w.has_value());
            EXPECT_EQ(w->dtype, dt);  // kept in file dtype
            Tensor xfull = make(xs, T, K + 3);
            Tensor x = xfull.col_slice(2, K);  // strided view
            Tensor bias = make(bs, 1, N);
            auto ofull = backend_->alloc(DType::kF32, T, N + 5);
            Tensor out = ofull->col_slice(1, N);
            ASSERT_TRUE(backend_->linear(out, x, *w, bias).has_value());
            std::vector<double> want;
            for (int64_t t = 0; t < T; ++t) {
                for (int64_t n = 0; n < N; ++n) {
                    double acc = bs[static_cast<size_t>(n)];
                    for (int64_t k = 0; k < K; ++k) {
                        acc += static_cast<double>(xs[static_cast<size_t>(t * (K + 3) + 2 + k)]) *
                               ws[static_cast<size_t>(n * K + k)];
                    }
                    want.push_back(acc);
                }
            }
            expect_near_all(read(out), want, 1e-5, "linear");
        }
    }
}

TEST_F(CpuOps, LinearRejectsShapeMismatch) {
    Tensor x = make(random(10), 2, 5);
    Tensor w = make(random(12), 3, 4);
    auto out = backend_->alloc(DType::kF32, 2, 3);
    EXPECT_FALSE(backend_->linear(*out, x, w, Tensor{}).has_value());
}

TEST_F(CpuOps, NormsMatchNaive) {
    const int64_t R = 7;
    const int64_t C = 45;
    auto xs = random(static_cast<size_t>(R * C), 3.0f);
    auto ys = random(static_cast<size_t>(R * C));
    auto ws = random(static_cast<size_t>(C));
    const float eps = 1e-5f;
    auto naive = [&](const std::vector<double>& v) {
        std::vector<double> out;
        for (int64_t r = 0; r < R; ++r) {
            double ss = 0;
            for (int64_t c = 0; c < C; ++c) {
                ss += v[static_cast<size_t>(r * C + c)] * v[static_cast<size_t>(r * C + c)];
            }
            const double inv = 1.0 / std::sqrt(ss / C + eps);
            for (int64_t c = 0; c < C; ++c) {
                out.push_back(v[static_cast<size_t>(r * C + c)] * inv * ws[static_cast<size_t>(c)]);
            }
        }
        return out;
    };
    Tensor x = make(xs, R, C);
    Tensor w = make(ws, 1, C);
    auto out = backend_->alloc(DType::kF32, R, C);
    ASSERT_TRUE(backend_->rms_norm(*out, x, w, eps).has_value());
    expect_near_all(read(*out), naive(std::vector<double>(xs.begin(), xs.end())), 1e-5, "rms");

    Tensor y = make(ys, R, C);
    ASSERT_TRUE(backend_->add_rms_norm(*out, x, y, w, eps).has_value());
    std::vector<double> sum(xs.size());
    for (size_t i = 0; i < xs.size(); ++i) {
        sum[i] = static_cast<double>(xs[i]) + ys[i];
    }
    expect_near_all(read(x), sum, 1e-6, "residual after add_rms_norm");
    expect_near_all(read(*out), naive(sum), 1e-5, "add_rms_norm");
}

TEST_F(CpuOps, PerHeadNormAndRopeMatchNaive) {
    const int64_t T = 5;
    const int64_t nh = 3;
    const int64_t hd = 10;
    const int64_t rot = 6;  // partial rotary: dims 6..9 pass through
    auto xs = random(static_cast<size_t>(T * nh * hd), 2.0f);
    auto ws = random(static_cast<size_t>(hd));
    std::vector<int32_t> pos = {0, 7, 3, 100, 4095};
    std::vector<float> inv = {1.0f, 0.1f, 0.01f};
    Tensor x = make(xs, T, nh * hd);
    Tensor w = make(ws, 1, hd);
    ASSERT_TRUE(backend_->rms_norm_heads(x, nh, w, 1e-6f).has_value());
    Tensor inv_t = make(inv, 1, 3);
    ASSERT_TRUE(
        backend_->rope(x, nh, hd, make_i32(pos), RopeTable{inv_t, rot, 1.0f}).has_value());
    std::vector<double> want;
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t h = 0; h < nh; ++h) {
            std::vector<double> v(static_cast<size_t>(hd));
            double ss = 0;
            for (int64_t d = 0; d < hd; ++d) {
                v[static_cast<size_t>(d)] = xs[static_cast<size_t>((t * nh + h) * hd + d)];
                ss += v[static_cast<size_t>(d)] * v[static_cast<size_t>(d)];
            }
            for (int64_t d = 0; d < hd; ++d) {
                v[static_cast<size_t>(d)] *= ws[static_cast<size_t>(d)] / std::sqrt(ss / hd + 1e-6);
            }
            std::vector<double> r = v;
            for (int64_t i = 0; i < rot / 2; ++i) {
                const double a = pos[static_cast<size_t>(t)] * static_cast<double>(inv[static_cast<size_t>(i)]);
                r[static_cast<size_t>(i)] = v[static_cast<size_t>(i)] * std::cos(a) -
                                            v[static_cast<size_t>(i + rot / 2)] * std::sin(a);
                r[static_cast<size_t>(i + rot / 2)] =
                    v[static_cast<size_t>(i + rot / 2)] * std::cos(a) +
                    v[static_cast<size_t>(i)] * std::sin(a);
            }
            want.insert(want.end(), r.begin(), r.end());
        }
    }
    // Angles up to 4095 rad in f32 lose ~1e-4 relative phase, as transformers does too.
    expect_near_all(read(x), want, 2e-3, "rope");
}

TEST_F(CpuOps, SiluMulEmbeddingGatherMatchNaive) {
    const int64_t T = 4;
    const int64_t I = 9;
    auto gu = random(static_cast<size_t>(T * 2 * I), 4.0f);
    Tensor g = make(gu, T, 2 * I);
    auto out = backend_->alloc(DType::kF32, T, I);
    ASSERT_TRUE(backend_->silu_mul(*out, g).has_value());
    std::vector<double> want;
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t c = 0; c < I; ++c) {
            const double a = gu[static_cast<size_t>(t * 2 * I + c)];
            want.push_back(a / (1 + std::exp(-a)) * gu[static_cast<size_t>(t * 2 * I + I + c)]);
        }
    }
    expect_near_all(read(*out), want, 1e-5, "silu_mul");

    // bf16 embedding table.
    const int64_t V = 11;
    const int64_t H = 6;
    auto table = random(static_cast<size_t>(V * H));
    std::vector<uint16_t> tb(table.size());
    for (size_t i = 0; i < table.size(); ++i) {
        tb[i] = f32_to_bf16(table[i]);
    }
    auto tt = backend_->upload_weight(
        std::as_bytes(std::span<const uint16_t>(tb)), DType::kBF16, V, H);
    ASSERT_TRUE(tt.has_value());
    std::vector<int32_t> ids = {10, 0, 3, 3};
    auto emb = backend_->alloc(DType::kF32, 4, H);
    ASSERT_TRUE(backend_->embedding(*emb, *tt, make_i32(ids)).has_value());
    std::vector<double> ew;
    for (int32_t id : ids) {
        for (int64_t c = 0; c < H; ++c) {
            ew.push_back(bf16_to_f32(tb[static_cast<size_t>(id * H + c)]));
        }
    }
    expect_near_all(read(*emb), ew, 0, "embedding");
    auto bad = backend_->embedding(*emb, *tt, make_i32({0, 1, 11, 2}));
    ASSERT_FALSE(bad.has_value());
    EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidRequest);

    auto gathered = backend_->alloc(DType::kF32, 2, H);
    ASSERT_TRUE(backend_->gather_rows(*gathered, *emb, make_i32({3, 0})).has_value());
    auto gv = read(*gathered);
    auto ev = read(*emb);
    EXPECT_TRUE(std::equal(gv.begin(), gv.begin() + H, ev.begin() + 3 * H));
    EXPECT_TRUE(std::equal(gv.begin() + H, gv.end(), ev.begin()));
}

// Paged attention over shuffled blocks, GQA, several sequences with cached prefixes, against a
// naive causal attention over contiguous K/V.
// fused_linear's three outputs and its input norm against a naive reference (the CPU backend
// runs the default composition; a device backend's fused kernels are held to the same).
TEST_F(CpuOps, FusedLinearMatchesNaive) {
    using Output = LinearFusion::Output;
    const int64_t T = 3;
    const int64_t K = 24;
    const int64_t N = 10;
    const float eps = 1e-5f;
    const auto xv = random(static_cast<size_t>(T * K));
    const auto wv = random(static_cast<size_t>(N * K));
    const auto bv = random(static_cast<size_t>(N));
    const auto nv = random(static_cast<size_t>(K), 2.0f);
    const auto rv = random(static_cast<size_t>(T * N));
    // y = norm(x) w^T + b, per row.
    std::vector<double> y(static_cast<size_t>(T * N));
    for (int64_t t = 0; t < T; ++t) {
        double ss = 0;
        for (int64_t k = 0; k < K; ++k) {
            ss += static_cast<double>(xv[t * K + k]) * xv[t * K + k];
        }
        const double inv = 1.0 / std::sqrt(ss / K + eps);
        for (int64_t n = 0; n < N; ++n) {
            double acc = bv[n];
            for (int64_t k = 0; k < K; ++k) {
                acc += xv[t * K + k] * inv * nv[k] * wv[n * K + k];
            }
            y[t * N + n] = acc;
        }
    }
    const Tensor x = make(xv, T, K);
    const Tensor w = make(wv, N, K);
    const Tensor b = make(bv, 1, N);
    const Tensor nw = make(nv, 1, K);
    const LinearScratch scratch{make(std::vector<float>(T * K), T, K),
                                make(std::vector<float>(T * N), T, N)};

    const Tensor stored = make(std::vector<float>(T * N), T, N);
    ASSERT_TRUE(backend_->fused_linear(stored, x, w, b, {nw, eps, Output::kStore}, scratch));
    expect_near_all(read(stored), y, 1e-5, "norm + store");

    const Tensor residual = make(rv, T, N);
    ASSERT_TRUE(backend_->fused_linear(residual, x, w, b, {nw, eps, Output::kAccumulate}, scratch));
    std::vector<double> acc(y.size());
    for (size_t i = 0; i < y.size(); ++i) {
        acc[i] = rv[i] + y[i];
    }
    expect_near_all(read(residual), acc, 1e-5, "norm + accumulate");

    const Tensor act = make(std::vector<float>(T * N / 2), T, N / 2);
    ASSERT_TRUE(backend_->fused_linear(act, x, w, b, {nw, eps, Output::kSwiGlu}, scratch));
    std::vector<double> swiglu(static_cast<size_t>(T * N / 2));
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t i = 0; i < N / 2; ++i) {
            const double g = y[t * N + i];
            swiglu[t * N / 2 + i] = g / (1.0 + std::exp(-g)) * y[t * N + N / 2 + i];
        }
    }
    expect_near_all(read(act), swiglu, 1e-5, "norm + swiglu");

    // The composition needs its scratch; a missing one is an error, not a crash.
    EXPECT_FALSE(backend_->fused_linear(act, x, w, b, {nw, eps, Output::kSwiGlu}, {}));
}

// run_chain: the MLP block (norm, gate_up + SwiGLU, down + residual) and then a
// normed projection of the new residual (the next layer's q/k/v), each link reading what the
// one before it wrote, against a double-precision evaluation of the same formulas.
TEST_F(CpuOps, FusedLinearChainRunsTheLinksInOrder) {
    using Output = LinearFusion::Output;
    const int64_t T = 3;
    const int64_t D = 16;
    const int64_t F = 24;
    const int64_t Q = 10;
    const float eps = 1e-6f;
    const auto rv = random(static_cast<size_t>(T * D));
    const auto nv = random(static_cast<size_t>(D));
    const auto guv = random(static_cast<size_t>(2 * F * D));
    const auto dv = random(static_cast<size_t>(D * F));
    const auto n2v = random(static_cast<size_t>(D));
    const auto qv = random(static_cast<size_t>(Q * D));
    auto normed = [&](const std::vector<double>& row, const std::vector<float>& w) {
        double ss = 0;
        for (const double v : row) {
            ss += v * v;
        }
        const double inv = 1.0 / std::sqrt(ss / static_cast<double>(row.size()) + eps);
        std::vector<double> out(row.size());
        for (size_t k = 0; k < row.size(); ++k) {
            out[k] = row[k] * inv * w[k];
        }
        return out;
    };
    std::vector<double> want(rv.begin(), rv.end());
    std::vector<double> want_q(static_cast<size_t>(T * Q));
    for (int64_t t = 0; t < T; ++t) {
        const auto xn = normed({rv.begin() + t * D, rv.begin() + (t + 1) * D}, nv);
        std::vector<double> a(static_cast<size_t>(F));
        for (int64_t i = 0; i < F; ++i) {
            double g = 0;
            double u = 0;
            for (int64_t k = 0; k < D; ++k) {
                g += xn[k] * guv[i * D + k];
                u += xn[k] * guv[(F + i) * D + k];
            }
            a[i] = g / (1.0 + std::exp(-g)) * u;
        }
        for (int64_t n = 0; n < D; ++n) {
            for (int64_t i = 0; i < F; ++i) {
                want[t * D + n] += a[i] * dv[n * F + i];
            }
        }
        const auto rn = normed({want.begin() + t * D, want.begin() + (t + 1) * D}, n2v);
        for (int64_t n = 0; n < Q; ++n) {
            for (int64_t k = 0; k < D; ++k) {
                want_q[t * Q + n] += rn[k] * qv[n * D + k];
            }
        }
    }
    const Tensor residual = make(rv, T, D);
    const Tensor act = make(std::vector<float>(T * F), T, F);
    const Tensor q = make(std::vector<float>(T * Q), T, Q);
    const Tensor norm_scratch = make(std::vector<float>(T * D), T, D);
    const ChainLink links[] = {
        LinearLink{act, residual, make(guv, 2 * F, D), Tensor{},
                   {make(nv, 1, D), eps, Output::kSwiGlu},
                   {norm_scratch, make(std::vector<float>(T * 2 * F), T, 2 * F)}},
        LinearLink{residual, act, make(dv, D, F), Tensor{},
                   {Tensor{}, 0.0f, Output::kAccumulate},
                   {Tensor{}, make(std::vector<float>(T * D), T, D)}},
        LinearLink{q, residual, make(qv, Q, D), Tensor{}, {make(n2v, 1, D), eps, Output::kStore},
                   {norm_scratch, Tensor{}}}};
    ASSERT_TRUE(backend_->run_chain(links));
    expect_near_all(read(residual), want, 1e-4, "chain residual");
    expect_near_all(read(q), want_q, 1e-4, "chain's last link");
}

TEST_F(CpuOps, PagedAttentionMatchesNaive) {
    const int64_t nh = 6;
    const int64_t nkv = 2;
    const int64_t hd = 8;
    const int64_t bs = 4;
    const int64_t n_blocks = 32;
    auto kv = backend_->alloc_kv_cache({DType::kF32, 2, nkv, hd, bs, n_blocks});
    ASSERT_TRUE(kv.has_value());
    // Sequences: (cached prefix, new tokens).
    const std::vector<std::pair<int64_t, int64_t>> seqs = {{0, 9}, {13, 1}, {5, 6}};
    std::vector<int32_t> free_blocks(static_cast<size_t>(n_blocks));
    std::iota(free_blocks.begin(), free_blocks.end(), 0);
    std::shuffle(free_blocks.begin(), free_blocks.end(), rng_);
    size_t next_block = 0;
    std::vector<std::vector<int32_t>> tables;
    std::vector<std::vector<float>> ks;
    std::vector<std::vector<float>> vs;
    const int64_t layer = 1;
    int64_t max_blocks = 0;
    int64_t max_ctx = 0;
    for (auto [prefix, n] : seqs) {
        const int64_t total = prefix + n;
        std::vector<int32_t> table;
        for (int64_t b = 0; b < (total + bs - 1) / bs; ++b) {
            table.push_back(free_blocks[next_block++]);
        }
        max_blocks = std::max<int64_t>(max_blocks, static_cast<int64_t>(table.size()));
        max_ctx = std::max(max_ctx, total);
        auto k = random(static_cast<size_t>(total * nkv * hd));
        auto v = random(static_cast<size_t>(total * nkv * hd));
        // Write the whole sequence's K/V (prefix as an earlier step would have).
        std::vector<int32_t> slots;
        for (int64_t p = 0; p < total; ++p) {
            slots.push_back(static_cast<int32_t>(table[static_cast<size_t>(p / bs)] * bs + p % bs));
        }
        ASSERT_TRUE(backend_->kv_write(**kv, layer, make(k, total, nkv * hd),
                                       make(v, total, nkv * hd), make_i32(slots))
                        .has_value());
        tables.push_back(table);
        ks.push_back(k);
        vs.push_back(v);
    }
    std::vector<int32_t> qstart = {0};
    std::vector<int32_t> ctx;
    std::vector<int32_t> flat_tables(static_cast<size_t>(seqs.size() * max_blocks), 0);
    for (size_t i = 0; i < seqs.size(); ++i) {
        qstart.push_back(qstart.back() + static_cast<int32_t>(seqs[i].second));
        ctx.push_back(static_cast<int32_t>(seqs[i].first + seqs[i].second));
        std::copy(tables[i].begin(), tables[i].end(),
                  flat_tables.begin() + static_cast<int64_t>(i) * max_blocks);
    }
    const int64_t T = qstart.back();
    auto qs = random(static_cast<size_t>(T * nh * hd));
    Tensor q = make(qs, T, nh * hd);
    auto tables_t = backend_->alloc(DType::kI32, static_cast<int64_t>(seqs.size()), max_blocks);
    ASSERT_TRUE(backend_->copy_from_host(*tables_t, flat_tables.data()).has_value());
    int64_t max_query = 0;
    for (const auto& [prefix, n] : seqs) {
        max_query = std::max(max_query, n);
    }
    AttentionBatch batch{static_cast<int64_t>(seqs.size()), max_blocks, max_ctx, max_query,
                         make_i32(qstart), make_i32(ctx), *tables_t};
    auto out = backend_->alloc(DType::kF32, T, nh * hd);
    const float scale = 0.35f;
    ASSERT_TRUE(backend_->attention(*out, q, **kv, layer, batch, nh, scale).has_value());

    std::vector<double> want;
    for (size_t s = 0; s < seqs.size(); ++s) {
        const auto [prefix, n] = seqs[s];
        for (int64_t i = 0; i < n; ++i) {
            const int64_t row = qstart[s] + i;
            const int64_t p = prefix + i;
            for (int64_t h = 0; h < nh; ++h) {
                const int64_t g = h / (nh / nkv);
                std::vector<double> sc;
                double mx = -1e300;
                for (int64_t j = 0; j <= p; ++j) {
                    double d = 0;
                    for (int64_t e = 0; e < hd; ++e) {
                        d += static_cast<double>(qs[static_cast<size_t>(row * nh * hd + h * hd + e)]) *
                             ks[s][static_cast<size_t>((j * nkv + g) * hd + e)];
                    }
                    sc.push_back(d * scale);
                    mx = std::max(mx, sc.back());
                }
                double den = 0;
                for (auto& x : sc) {
                    x = std::exp(x - mx);
                    den += x;
                }
                for (int64_t e = 0; e < hd; ++e) {
                    double acc = 0;
                    for (int64_t j = 0; j <= p; ++j) {
                        acc += sc[static_cast<size_t>(j)] / den *
                               vs[s][static_cast<size_t>((j * nkv + g) * hd + e)];
                    }
                    want.push_back(acc);
                }
            }
        }
    }
    expect_near_all(read(*out), want, 1e-5, "attention");

    // A block id outside the pool is an error, not a wild read.
    flat_tables[0] = static_cast<int32_t>(n_blocks);
    ASSERT_TRUE(backend_->copy_from_host(*tables_t, flat_tables.data()).has_value());
    EXPECT_FALSE(backend_->attention(*out, q, **kv, layer, batch, nh, scale).has_value());
}

TEST(BackendFactory, NamesTheSupportedSet) {
    auto cuda = make_backend(BackendOptions{"cuda", 0});
    ASSERT_FALSE(cuda.has_value());
    EXPECT_EQ(cuda.error().code(), ErrorCode::kCudaUnavailable);
    auto other = make_backend(BackendOptions{"tpu", 0});
    ASSERT_FALSE(other.has_value());
    EXPECT_NE(other.error().message().find("cpu"), std::string::npos);
    auto cpu = make_backend(BackendOptions{"cpu", 2});
    ASSERT_TRUE(cpu.has_value());
    EXPECT_EQ((*cpu)->name(), "cpu");
}

}  // namespace
}  // namespace helexa::engine
