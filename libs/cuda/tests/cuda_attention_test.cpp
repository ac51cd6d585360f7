// Paged attention and KV writes on CUDA against the CPU backend: mixed batches of prefill chunks
// (with and without a cached prefix) and decode tokens, GQA, head dims 16/64/128, contexts long
// enough for split-K, blocks scattered through the pool.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <numeric>

#include "cuda_test_support.h"
#include "helexa/kernels/decode_chain.h"

namespace helexa::cuda::testing {
namespace {

struct AttnCase {
    int64_t head_dim;
    int64_t n_heads;
    int64_t n_kv_heads;
    std::vector<std::pair<int64_t, int64_t>> seqs;  // (cached prefix, new tokens)
    // When > 0, the context bound the launch is planned for (a decode graph's width bucket,
    // above the longest context): the grid is sized for it and replayed on shorter contexts.
    int64_t bound = 0;
};

class CudaAttention : public CudaVsCpu, public ::testing::WithParamInterface<AttnCase> {};

TEST_P(CudaAttention, MatchesCpu) {
    const AttnCase& c = GetParam();
    const int64_t hd = c.head_dim;
    const int64_t nh = c.n_heads;
    const int64_t nkv = c.n_kv_heads;
    const int64_t bs = 16;
    int64_t total_blocks = 0;
    for (auto [prefix, n] : c.seqs) {
        total_blocks += (prefix + n + bs - 1) / bs;
    }
    const int64_t n_blocks = total_blocks + 7;
    const int64_t layer = 1;
    std::unique_ptr<engine::KvCache> kv_cpu;
    std::unique_ptr<engine::KvCache> kv_gpu;
    {
        auto k = cpu_->alloc_kv_cache({DType::kF32, 2, nkv, hd, bs, n_blocks});
        ASSERT_TRUE(k.has_value());
        kv_cpu = std::move(*k);
        on_gpu([&] {
            auto g = gpu_->alloc_kv_cache({DType::kBF16, 2, nkv, hd, bs, n_blocks});
            ASSERT_TRUE(g.has_value()) << g.error().full_message();
            kv_gpu = std::move(*g);
        });
    }
    // Scatter each sequence's blocks through the pool (reversed order) so a kernel that
    // assumes contiguous blocks fails.
    std::vector<int32_t> free_blocks(static_cast<size_t>(n_blocks));
    std::iota(free_blocks.rbegin(), free_blocks.rend(), 0);
    size_t next = 0;
    std::vector<std::vector<int32_t>> tables;
    int64_t max_blocks = 1;
    int64_t max_ctx = 0;
    int64_t max_query = 0;
    for (auto [prefix, n] : c.seqs) {
        const int64_t total = prefix + n;
        std::vector<int32_t> table;
        for (int64_t b = 0; b < (total + bs - 1) / bs; ++b) {
            table.push_back(free_blocks[next++]);
        }
        max_blocks = std::max<int64_t>(max_blocks, static_cast<int64_t>(table.size()));
        max_ctx = std::max(max_ctx, total);
        max_query = std::max(max_query, n);
        // K/V of the whole sequence, written through kv_write (prefix as an earlier step would).
        auto k = upload(random(static_cast<size_t>(total * nkv * hd), 2.0f), total, nkv * hd);
        auto v = upload(random(static_cast<size_t>(total * nkv * hd)), total, nkv * hd);
        std::vector<int32_t> slots;
        for (int64_t p = 0; p < total; ++p) {
            slots.push_back(static_cast<int32_t>(table[static_cast<size_t>(p / bs)] * bs + p % bs));
        }
        auto slots_t = upload_i32(slots);
        ASSERT_TRUE(cpu_->kv_write(*kv_cpu, layer, k.cpu, v.cpu, slots_t.cpu).has_value());
        on_gpu([&] {
            ASSERT_TRUE(gpu_->kv_write(*kv_gpu, layer, k.gpu, v.gpu, slots_t.gpu).has_value());
        });
        tables.push_back(table);
    }
    if (c.bound > 0) {
        ASSERT_GE(c.bound, max_ctx);
        max_ctx = c.bound;
        max_blocks = (c.bound + bs - 1) / bs;
    }
    std::vector<int32_t> qstart = {0};
    std::vector<int32_t> ctx;
    std::vector<int32_t> flat(c.seqs.size() * static_cast<size_t>(max_blocks), 0);
    for (size_t i = 0; i < c.seqs.size(); ++i) {
        qstart.push_back(qstart.back() + static_cast<int32_t>(c.seqs[i].second));
        ctx.push_back(static_cast<int32_t>(c.seqs[i].first + c.seqs[i].second));
        std::copy(tables[i].begin(), tables[i].end(),
                  flat.begin() + static_cast<int64_t>(i) * max_blocks);
    }
    const int64_t T = qstart.back();
    // q as a strided column slice of a wider buffer, as the model passes it.
    const int64_t width = (nh + 2 * nkv) * hd;
    auto qkv = upload(random(static_cast<size_t>(T * width), 2.0f), T, width);
    auto qs = upload_i32(qstart);
    auto cs = upload_i32(ctx);
    auto ts = upload_i32(flat);
    const auto n_seqs = static_cast<int64_t>(c.seqs.size());
    engine::AttentionBatch bc{n_seqs, max_blocks, max_ctx, max_query, qs.cpu, cs.cpu,
                              ts.cpu.reshaped(n_seqs, max_blocks)};
    // The spread the step planner gives these contexts (models::context_spread): the decode
    // cases of uneven contexts take the balanced split plan (kernels/attention.h).
    int64_t ctx_sum = 0;
    int64_t longest = 0;
    for (const int32_t e : ctx) {
        ctx_sum += e;
        longest = std::max<int64_t>(longest, e);
    }
    int64_t spread = 1;
    while (spread * 2 <= longest * n_seqs / std::max<int64_t>(ctx_sum, 1) && spread < 64) {
        spread *= 2;
    }
    engine::AttentionBatch bg{n_seqs, max_blocks, max_ctx, max_query, qs.gpu, cs.gpu,
                              ts.gpu.reshaped(n_seqs, max_blocks), spread};
    auto out = output(T, nh * hd);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    ASSERT_TRUE(cpu_->attention(out.cpu, qkv.cpu.col_slice(0, nh * hd), *kv_cpu, layer, bc, nh,
                                scale)
                    .has_value());
    on_gpu([&] {
        auto st = gpu_->attention(out.gpu, qkv.gpu.col_slice(0, nh * hd), *kv_gpu, layer, bg, nh,
                                  scale);
        ASSERT_TRUE(st.has_value()) << st.error().full_message();
    });
    const auto got = read_gpu(out.gpu);
    const auto want = read_cpu(out.cpu);
    EXPECT_LE(rel_error(got, want), 1e-2);
    // Per sequence too, so one wrong sequence is named.
    for (size_t s = 0; s < c.seqs.size(); ++s) {
        const auto b = static_cast<size_t>(qstart[s] * nh * hd);
        const auto e = static_cast<size_t>(qstart[s + 1] * nh * hd);
        EXPECT_LE(rel_error({got.begin() + b, got.begin() + e}, {want.begin() + b, want.begin() + e}),
                  1e-2)
            << "sequence " << s << " (prefix " << c.seqs[s].first << ", new " << c.seqs[s].second
            << ")";
    }
    on_gpu([&] { kv_gpu.reset(); });
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaAttention,
    ::testing::Values(
        // Fixture-sized: head_dim 16, 4 heads over 2 KV heads.
        AttnCase{16, 4, 2, {{0, 9}, {13, 1}, {5, 6}}},
        // Pure decode batch, contexts around block edges.
        AttnCase{128, 32, 8, {{15, 1}, {16, 1}, {0, 1}, {200, 1}, {1023, 1}}},
        // Long decode contexts (split-K).
        AttnCase{128, 32, 8, {{8191, 1}, {3000, 1}}},
        // The same, and one stream in the cluster merge's range, planned for a graph's width
        // bucket above the longest: the split length comes from the step's longest context.
        AttnCase{128, 32, 8, {{8191, 1}, {3000, 1}}, 16384},
        AttnCase{128, 32, 8, {{700, 1}}, 4096},
        AttnCase{64, 14, 2, {{4999, 1}}},
        // Prefill from scratch and chunks over a cached prefix, mixed with decodes.
        AttnCase{128, 32, 8, {{0, 300}, {500, 77}, {64, 1}, {0, 1}}},
        AttnCase{128, 16, 16, {{0, 129}, {17, 64}}},
        AttnCase{64, 8, 1, {{100, 3}, {0, 2}, {31, 4}}},
        // An agent's long context among short ones (spread 8): the long sequence split into
        // about one wave's shares, the short ones one split each, their other CTAs empty.
        AttnCase{128, 32, 8,
                 {{3000, 1}, {99, 1}, {120, 1}, {64, 1}, {15, 1}, {100, 1}, {77, 1}, {130, 1},
                  {99, 1}, {120, 1}, {64, 1}, {15, 1}, {100, 1}, {77, 1}, {130, 1}, {40, 1},
                  {99, 1}, {120, 1}, {64, 1}, {15, 1}, {100, 1}, {77, 1}, {130, 1}, {40, 1}}},
        // The same planned for a graph's width bucket of 4096 keys and replayed on these
        // contexts: the work list's split length comes from the step's own contexts.
        AttnCase{128, 32, 8,
                 {{3000, 1}, {99, 1}, {120, 1}, {64, 1}, {15, 1}, {100, 1}, {77, 1}, {130, 1},
                  {99, 1}, {120, 1}, {64, 1}, {15, 1}, {100, 1}, {77, 1}, {130, 1}, {40, 1},
                  {99, 1}, {120, 1}, {64, 1}, {15, 1}, {100, 1}, {77, 1}, {130, 1}, {40, 1}},
                 4096},
        // 40 sequences (the work list's lookup runs over two warps' worth), two long ones, the
        // second past the first 32, and a verify chunk of 3 rows (two row groups at 8 heads a
        // KV head).
        AttnCase{128, 32, 4,
                 {{1999, 1}, {99, 1}, {120, 1}, {64, 1}, {15, 1}, {100, 1}, {77, 1}, {130, 1},
                  {99, 1}, {120, 1}, {64, 1}, {15, 1}, {100, 1}, {77, 1}, {130, 1}, {40, 1},
                  {99, 1}, {120, 1}, {64, 1}, {15, 1}, {100, 1}, {77, 1}, {130, 1}, {40, 1},
                  {99, 1}, {120, 1}, {64, 1}, {15, 1}, {100, 1}, {77, 1}, {130, 1}, {40, 1},
                  {99, 1}, {120, 1}, {64, 1}, {6000, 3}, {100, 1}, {77, 1}, {130, 1}, {40, 1}},
                 8192}));

// The q/k/v epilogue fused into the decode attention (one kernel) against Backend's composition
// (the epilogue kernel, then the attention), bit for bit: the attention output, and the new keys
// and values in the pool, read back by a second attention over both caches. Contexts give one
// split, splits merged through a thread-block cluster (2-8) and through the workspace (> 8);
// Qwen3's q/k norm and blocks without it, full and partial rotary, GQA groups 1-7. The CPU
// backend's composition checks what both compute. (HELEXA_ATTN_FUSE_ANY_GRID=1 fuses the last
// case too.)
struct QkvAttnCase {
    int64_t head_dim;
    int64_t n_heads;
    int64_t n_kv_heads;
    bool qk_norm;
    int64_t rotary_dim;
    std::vector<int64_t> ctx;  // per sequence, the new token included
};

class CudaQkvAttention : public CudaVsCpu, public ::testing::WithParamInterface<QkvAttnCase> {
protected:
    // One decode step's attention inputs for a QkvAttnCase: a CPU cache and n_gpu CUDA caches holding
    // the same prefix (every key but the new one) in scattered blocks, the batch, positions, slots,
    // rotary table, q/k norm weights and the step's qkv rows.
    struct DecodeStepInputs {
        int64_t n_seqs = 0;
        int64_t layer = 1;
        std::unique_ptr<engine::KvCache> kv_cpu;
        std::vector<std::unique_ptr<engine::KvCache>> kv_gpu;
        Pair qs, cs, ts, pos, slots, qn, kn;
        engine::AttentionBatch bc, bg;
        engine::RopeTable rc, rg;
        std::vector<float> qkv_values;  // [n_seqs, (n_heads + 2 n_kv_heads) head_dim]
    };

    void make_inputs(const QkvAttnCase& c, int n_gpu, DecodeStepInputs& in) {
        const int64_t hd = c.head_dim;
        const int64_t nkv = c.n_kv_heads;
        const int64_t bs = 16;
        in.n_seqs = static_cast<int64_t>(c.ctx.size());
        const int64_t n_seqs = in.n_seqs;
        const int64_t layer = in.layer;
        int64_t n_blocks = 3;
        int64_t max_ctx = 0;
        for (int64_t n : c.ctx) {
            n_blocks += (n + bs - 1) / bs;
            max_ctx = std::max(max_ctx, n);
        }
        const int64_t max_blocks = (max_ctx + bs - 1) / bs;
        auto k = cpu_->alloc_kv_cache({DType::kF32, 2, nkv, hd, bs, n_blocks});
        ASSERT_TRUE(k.has_value());
        in.kv_cpu = std::move(*k);
        on_gpu([&] {
            for (int i = 0; i < n_gpu; ++i) {
                auto g = gpu_->alloc_kv_cache({DType::kBF16, 2, nkv, hd, bs, n_blocks});
                ASSERT_TRUE(g.has_value()) << g.error().full_message();
                in.kv_gpu.push_back(std::move(*g));
            }
        });
        std::vector<int32_t> free_blocks(static_cast<size_t>(n_blocks));
        std::iota(free_blocks.rbegin(), free_blocks.rend(), 0);  // scattered, reversed
        size_t next = 0;
        std::vector<int32_t> flat(static_cast<size_t>(n_seqs * max_blocks), 0);
        std::vector<int32_t> qstart = {0};
        std::vector<int32_t> ctx;
        std::vector<int32_t> positions;
        std::vector<int32_t> new_slots;
        for (int64_t s = 0; s < n_seqs; ++s) {
            const int64_t total = c.ctx[static_cast<size_t>(s)];
            std::vector<int32_t> slots;
            for (int64_t b = 0; b < (total + bs - 1) / bs; ++b) {
                flat[static_cast<size_t>(s * max_blocks + b)] = free_blocks[next++];
            }
            for (int64_t pos = 0; pos < total; ++pos) {
                slots.push_back(flat[static_cast<size_t>(s * max_blocks + pos / bs)] * bs +
                                static_cast<int32_t>(pos % bs));
            }
            // The prefix (every key but the new one), as earlier steps would have written it.
            const int64_t prefix = total - 1;
            if (prefix > 0) {
                auto kp = upload(random(static_cast<size_t>(prefix * nkv * hd), 2.0f), prefix,
                                 nkv * hd);
                auto vp =
                    upload(random(static_cast<size_t>(prefix * nkv * hd)), prefix, nkv * hd);
                auto st = upload_i32({slots.begin(), slots.begin() + prefix});
                ASSERT_TRUE(
                    cpu_->kv_write(*in.kv_cpu, layer, kp.cpu, vp.cpu, st.cpu).has_value());
                on_gpu([&] {
                    for (auto& kv : in.kv_gpu) {
                        ASSERT_TRUE(
                            gpu_->kv_write(*kv, layer, kp.gpu, vp.gpu, st.gpu).has_value());
                    }
                });
            }
            qstart.push_back(qstart.back() + 1);
            ctx.push_back(static_cast<int32_t>(total));
            positions.push_back(static_cast<int32_t>(total - 1));
            new_slots.push_back(slots.back());
        }
        in.qs = upload_i32(qstart);
        in.cs = upload_i32(ctx);
        in.ts = upload_i32(flat);
        in.pos = upload_i32(positions);
        in.slots = upload_i32(new_slots);
        in.bc = {n_seqs, max_blocks, max_ctx, 1, in.qs.cpu, in.cs.cpu,
                 in.ts.cpu.reshaped(n_seqs, max_blocks)};
        in.bg = {n_seqs, max_blocks, max_ctx, 1, in.qs.gpu, in.cs.gpu,
                 in.ts.gpu.reshaped(n_seqs, max_blocks)};

        std::vector<float> inv(static_cast<size_t>(c.rotary_dim / 2));
        for (size_t i = 0; i < inv.size(); ++i) {
            inv[i] = static_cast<float>(1.0 / std::pow(1e6, 2.0 * static_cast<double>(i) /
                                                             static_cast<double>(c.rotary_dim)));
        }
        auto t = cpu_->alloc(DType::kF32, 1, std::max<int64_t>(1, c.rotary_dim / 2));
        ASSERT_TRUE(t.has_value());
        if (!inv.empty()) {
            ASSERT_TRUE(cpu_->copy_from_host(*t, inv.data()).has_value());
        }
        in.rc = engine::RopeTable{t->reshaped(1, c.rotary_dim / 2), c.rotary_dim, 1.0f};
        on_gpu([&] {
            auto g = gpu_->alloc(DType::kF32, 1, std::max<int64_t>(1, c.rotary_dim / 2));
            ASSERT_TRUE(g.has_value());
            if (!inv.empty()) {
                ASSERT_TRUE(gpu_->copy_from_host(*g, inv.data()).has_value());
            }
            in.rg = engine::RopeTable{g->reshaped(1, c.rotary_dim / 2), c.rotary_dim, 1.0f};
        });
        if (c.qk_norm) {
            in.qn = upload(random(static_cast<size_t>(hd), 2.0f), 1, hd);
            in.kn = upload(random(static_cast<size_t>(hd), 2.0f), 1, hd);
        }
        in.qkv_values =
            random(static_cast<size_t>(n_seqs * (c.n_heads + 2 * nkv) * hd), 2.0f);
    }
    void release(DecodeStepInputs& in) {
        on_gpu([&] { in.kv_gpu.clear(); });
    }
};

TEST_P(CudaQkvAttention, FusedEqualsEpilogueThenAttention) {
    const QkvAttnCase& c = GetParam();
    const int64_t hd = c.head_dim;
    const int64_t nh = c.n_heads;
    const int64_t nkv = c.n_kv_heads;
    // Three caches with the same prefix: CPU, CUDA fused, CUDA composed.
    DecodeStepInputs in;
    make_inputs(c, 2, in);
    ASSERT_EQ(in.kv_gpu.size(), 2u);
    const int64_t n_seqs = in.n_seqs;
    const int64_t layer = in.layer;
    engine::KvCache& kv_fused = *in.kv_gpu[0];
    engine::KvCache& kv_composed = *in.kv_gpu[1];

    // Two copies of the step's qkv rows: the composition normalises and rotates its copy in place.
    const int64_t width = (nh + 2 * nkv) * hd;
    auto qkv_fused = upload(in.qkv_values, n_seqs, width);
    auto qkv_composed = upload(in.qkv_values, n_seqs, width);
    auto out_fused = output(n_seqs, nh * hd);
    auto out_composed = output(n_seqs, nh * hd);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const float eps = 1e-6f;
    ASSERT_TRUE(cpu_->qkv_attention(out_fused.cpu, qkv_fused.cpu, nh, nkv, hd, in.qn.cpu,
                                    in.kn.cpu, eps, in.pos.cpu, in.rc, *in.kv_cpu, layer,
                                    in.slots.cpu, in.bc, scale)
                    .has_value());
    on_gpu([&] {
        auto st = gpu_->qkv_attention(out_fused.gpu, qkv_fused.gpu, nh, nkv, hd, in.qn.gpu,
                                      in.kn.gpu, eps, in.pos.gpu, in.rg, kv_fused, layer,
                                      in.slots.gpu, in.bg, scale);
        ASSERT_TRUE(st.has_value()) << st.error().full_message();
        // The base class's composition: the epilogue kernel, then the attention.
        st = gpu_->Backend::qkv_attention(out_composed.gpu, qkv_composed.gpu, nh, nkv, hd,
                                          in.qn.gpu, in.kn.gpu, eps, in.pos.gpu, in.rg,
                                          kv_composed, layer, in.slots.gpu, in.bg, scale);
        ASSERT_TRUE(st.has_value()) << st.error().full_message();
    });
    const auto fused = read_gpu(out_fused.gpu);
    EXPECT_EQ(fused, read_gpu(out_composed.gpu)) << "attention output";
    EXPECT_LE(rel_error(fused, read_cpu(out_fused.cpu)), 1e-2);

    // The new keys and values landed in the pool alike: attend over them with a fresh q.
    auto q2 = upload(random(static_cast<size_t>(n_seqs * nh * hd), 2.0f), n_seqs, nh * hd);
    auto again_fused = output(n_seqs, nh * hd);
    auto again_composed = output(n_seqs, nh * hd);
    on_gpu([&] {
        ASSERT_TRUE(gpu_->attention(again_fused.gpu, q2.gpu, kv_fused, layer, in.bg, nh, scale)
                        .has_value());
        ASSERT_TRUE(
            gpu_->attention(again_composed.gpu, q2.gpu, kv_composed, layer, in.bg, nh, scale)
                .has_value());
    });
    EXPECT_EQ(read_gpu(again_fused.gpu), read_gpu(again_composed.gpu)) << "pool contents";
    release(in);
}

// Every case but the last is sized to take the fused path (a decode grid of at most one CTA per
// SM: sequences x KV heads x splits <= 132).
INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaQkvAttention,
    ::testing::Values(
        // Qwen3-8B's block (32 q heads over 8 KV heads, q/k norm): short contexts (one or two
        // splits), 500 keys in 8 one-tile splits merged through the cluster, 1000 and 4096 keys
        // in 8 splits of several tiles merged through the cluster (the default cluster split
        // keys, 512), and 66 splits over 2 KV heads merged through the workspace. Under
        // HELEXA_ATTN_CLUSTER_SPLIT_KEYS=0 the 1000 and 4096 key cases take 16 and 64 short
        // splits through the workspace (4096: past one CTA an SM, so not fused).
        QkvAttnCase{128, 32, 8, true, 128, {1, 2, 17, 64, 65}},
        QkvAttnCase{128, 32, 8, true, 128, {500}},
        QkvAttnCase{128, 32, 8, true, 128, {1000}},
        QkvAttnCase{128, 32, 8, true, 128, {4096}},
        QkvAttnCase{64, 4, 2, true, 64, {4200}},
        // Qwen3-0.6B's group of 2; Llama's block (no q/k norm); partial rotary; groups 1 and 7.
        QkvAttnCase{128, 16, 8, true, 128, {300, 31}},
        QkvAttnCase{128, 32, 8, false, 128, {257, 100, 16}},
        QkvAttnCase{128, 8, 8, true, 64, {99, 400}},
        QkvAttnCase{64, 14, 2, false, 64, {900, 33}},
        // 256 CTAs: the epilogue kernel then the attention (the fallback must agree too).
        QkvAttnCase{128, 32, 8, true, 128, {640, 200, 3, 129}}));


// The attention as the first link of the decode chain (chain_attention.cuh) with the output
// projection after it, as the decoder chains them, the chain forced on
// (HELEXA_CUDA_DECODE_CHAIN=1: the test weights are small; HELEXA_CUDA_CHAIN_ATTENTION=1):
// against the CPU backend's chain,
// with the new keys and values in the pool equal bit for bit to the fused attention kernel's (a
// second attention over both caches), and the chain's trace showing that the attention ran
// inside the launch. Contexts give one split and several merged through the workspace; Qwen3's
// and Llama's blocks, groups 1, 2, 3 and 4, head dims 64 and 128, partial rotary.
class CudaChainAttention : public CudaQkvAttention {
protected:
    void SetUp() override {
        setenv("HELEXA_CUDA_DECODE_CHAIN", "1", 1);
        setenv("HELEXA_CUDA_CHAIN_ATTENTION", "1", 1);
        CudaQkvAttention::SetUp();
        unsetenv("HELEXA_CUDA_DECODE_CHAIN");
        unsetenv("HELEXA_CUDA_CHAIN_ATTENTION");
    }
};

// Debugging (HELEXA_PRINT_CHAIN_TRACE=1): the chain trace's attention (with its first item's
// phases) and o_proj times, us from the earliest CTA start, min / median / max over the CTAs
// that got there.
void print_trace(const std::vector<unsigned long long>& trace) {
    const auto words = static_cast<size_t>(kernels::decode_chain_trace_words());
    const size_t ctas = trace.size() / words;
    unsigned long long t0 = ~0ull;
    for (size_t c = 0; c < ctas; ++c) {
        if (trace[c * words + 1] != 0) {
            t0 = std::min(t0, trace[c * words + 1]);
        }
    }
    const char* names[] = {"attention start",   "item epilogue done", "item passes done",
                           "item merge done",   "attention done",     "attention barrier",
                           "o_proj x ready",    "o_proj last unit"};
    const size_t at[] = {8, 4, 5, 6, 9, 10, 12, 13};
    for (size_t i = 0; i < std::size(at); ++i) {
        std::vector<double> us;
        for (size_t c = 0; c < ctas; ++c) {
            if (const unsigned long long v = trace[c * words + at[i]]; v != 0 && v >= t0) {
                us.push_back(static_cast<double>(v - t0) / 1000.0);
            }
        }
        if (us.empty()) {
            continue;
        }
        std::sort(us.begin(), us.end());
        std::printf("  %-18s %7.2f / %7.2f / %7.2f us (%zu CTAs)\n", names[i], us.front(),
                    us[us.size() / 2], us.back(), us.size());
    }
}

TEST_P(CudaChainAttention, MatchesCpuAndTheFusedKernelsPoolWrites) {
    const QkvAttnCase& c = GetParam();
    bool supported = false;
    on_gpu([&] { supported = kernels::decode_chain_supported(); });
    if (!supported) {
        GTEST_SKIP() << "the decode chain needs compute capability 9.0";
    }
    const int64_t hd = c.head_dim;
    const int64_t nh = c.n_heads;
    const int64_t nkv = c.n_kv_heads;
    const int64_t D = 4096;  // the residual's width: o_proj streams 32 MiB, as Qwen3-8B's does
    DecodeStepInputs in;
    make_inputs(c, 2, in);  // CUDA caches: [0] the chain's, [1] the fused kernel's
    ASSERT_EQ(in.kv_gpu.size(), 2u);
    const int64_t n_seqs = in.n_seqs;
    const int64_t width = (nh + 2 * nkv) * hd;
    auto qkv = upload(in.qkv_values, n_seqs, width);
    auto qkv_alone = upload(in.qkv_values, n_seqs, width);
    auto attn = output(n_seqs, nh * hd);
    auto attn_alone = output(n_seqs, nh * hd);
    auto o_w = upload(random(static_cast<size_t>(D * nh * hd), 0.05f), D, nh * hd);
    auto residual = upload(random(static_cast<size_t>(n_seqs * D)), n_seqs, D);
    auto proj = output(n_seqs, D);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const float eps = 1e-6f;
    using Output = engine::LinearFusion::Output;
    auto links = [&](Tensor Pair::*side, const engine::RopeTable& rope, engine::KvCache& kv,
                     const engine::AttentionBatch& batch) -> std::vector<engine::ChainLink> {
        return {engine::AttentionLink{attn.*side, qkv.*side, nh, nkv, hd, in.qn.*side,
                                      in.kn.*side, eps, in.pos.*side, &rope, &kv, in.layer,
                                      in.slots.*side, &batch, scale},
                engine::LinearLink{residual.*side, attn.*side, o_w.*side, Tensor{},
                                   {Tensor{}, 0.0f, Output::kAccumulate},
                                   engine::LinearScratch{{}, proj.*side}}};
    };
    auto st = cpu_->run_chain(links(&Pair::cpu, in.rc, *in.kv_cpu, in.bc));
    ASSERT_TRUE(st.has_value()) << st.error().full_message();
    std::vector<unsigned long long> trace;
    on_gpu([&] {
        int sms = 0;
        ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
        const size_t words = static_cast<size_t>(sms) * kernels::decode_chain_trace_words();
        void* mem = nullptr;
        ASSERT_EQ(cudaMalloc(&mem, words * sizeof(unsigned long long)), cudaSuccess);
        auto* buf = static_cast<unsigned long long*>(mem);
        ASSERT_EQ(cudaMemset(buf, 0, words * sizeof(*buf)), cudaSuccess);
        kernels::decode_chain_set_trace(buf);
        auto g = gpu_->run_chain(links(&Pair::gpu, in.rg, *in.kv_gpu[0], in.bg));
        EXPECT_TRUE(g.has_value()) << g.error().full_message();
        EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        kernels::decode_chain_set_trace(nullptr);
        trace.resize(words);
        EXPECT_EQ(cudaMemcpy(trace.data(), buf, words * sizeof(*buf), cudaMemcpyDeviceToHost),
                  cudaSuccess);
        EXPECT_EQ(cudaFree(buf), cudaSuccess);
        // The fused attention kernel alone on the other cache.
        g = gpu_->qkv_attention(attn_alone.gpu, qkv_alone.gpu, nh, nkv, hd, in.qn.gpu, in.kn.gpu,
                                eps, in.pos.gpu, in.rg, *in.kv_gpu[1], in.layer, in.slots.gpu,
                                in.bg, scale);
        EXPECT_TRUE(g.has_value()) << g.error().full_message();
    });
    // Link 0's first trace word (the attention's start on CTA 0): set only by a chain launch
    // that ran the attention.
    ASSERT_GT(trace.size(), 8u);
    EXPECT_NE(trace[8], 0u) << "the attention did not run inside the chain";
    if (std::getenv("HELEXA_PRINT_CHAIN_TRACE") != nullptr) {
        print_trace(trace);
    }
    EXPECT_LE(rel_error(read_gpu(attn.gpu), read_cpu(attn.cpu)), 1e-2) << "attention output";
    EXPECT_LE(rel_error(read_gpu(attn.gpu), read_gpu(attn_alone.gpu)), 1e-2)
        << "against the fused kernel";
    EXPECT_LE(rel_error(read_gpu(residual.gpu), read_cpu(residual.cpu)), 1e-2) << "residual";

    auto q2 = upload(random(static_cast<size_t>(n_seqs * nh * hd), 2.0f), n_seqs, nh * hd);
    auto again_chain = output(n_seqs, nh * hd);
    auto again_alone = output(n_seqs, nh * hd);
    on_gpu([&] {
        ASSERT_TRUE(gpu_->attention(again_chain.gpu, q2.gpu, *in.kv_gpu[0], in.layer, in.bg, nh,
                                    scale)
                        .has_value());
        ASSERT_TRUE(gpu_->attention(again_alone.gpu, q2.gpu, *in.kv_gpu[1], in.layer, in.bg, nh,
                                    scale)
                        .has_value());
    });
    EXPECT_EQ(read_gpu(again_chain.gpu), read_gpu(again_alone.gpu)) << "pool contents";
    release(in);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaChainAttention,
    ::testing::Values(
        // Qwen3-8B's block: the new key alone, one split, two, eight and many merged.
        QkvAttnCase{128, 32, 8, true, 128, {1, 2}},
        QkvAttnCase{128, 32, 8, true, 128, {100}},
        QkvAttnCase{128, 32, 8, true, 128, {17, 200}},
        QkvAttnCase{128, 32, 8, true, 128, {1000}},
        QkvAttnCase{128, 32, 8, true, 128, {5000, 3}},
        // Qwen3-0.6B's group of 2; Llama's block; group 1 with partial rotary; head_dim 64 with
        // groups 3 and 1.
        QkvAttnCase{128, 16, 8, true, 128, {300, 31}},
        QkvAttnCase{128, 32, 8, false, 128, {257, 16}},
        QkvAttnCase{128, 8, 8, true, 64, {99, 400}},
        QkvAttnCase{64, 6, 2, false, 64, {900, 33}},
        QkvAttnCase{64, 4, 4, true, 64, {70, 5}}));

}  // namespace
}  // namespace helexa::cuda::testing
