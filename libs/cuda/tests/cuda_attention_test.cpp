// Paged attention and KV writes on CUDA against the CPU backend: mixed batches of prefill chunks
// (with and without a cached prefix) and decode tokens, GQA, head dims 16/64/128, contexts long
// enough for split-K, blocks scattered through the pool.
#include <algorithm>
#include <numeric>

#include "cuda_test_support.h"

namespace helexa::cuda::testing {
namespace {

struct AttnCase {
    int64_t head_dim;
    int64_t n_heads;
    int64_t n_kv_heads;
    std::vector<std::pair<int64_t, int64_t>> seqs;  // (cached prefix, new tokens)
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
    engine::AttentionBatch bg{n_seqs, max_blocks, max_ctx, max_query, qs.gpu, cs.gpu,
                              ts.gpu.reshaped(n_seqs, max_blocks)};
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
        AttnCase{64, 14, 2, {{4999, 1}}},
        // Prefill from scratch and chunks over a cached prefix, mixed with decodes.
        AttnCase{128, 32, 8, {{0, 300}, {500, 77}, {64, 1}, {0, 1}}},
        AttnCase{128, 16, 16, {{0, 129}, {17, 64}}},
        AttnCase{64, 8, 1, {{100, 3}, {0, 2}, {31, 4}}}));

}  // namespace
}  // namespace helexa::cuda::testing
