// Every CudaBackend operation against the CPU backend (reference numerics) on fresh random
// bf16-representable inputs and awkward sizes; CUDA outputs are NaN-poisoned first, so an
// unwritten element fails. bf16 activations: relative L2 error <= 1e-2 (METHOD.md).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>

#include "cuda_backend_impl.h"
#include "cuda_test_support.h"
#include "helexa/engine/row_draw.h"
#include "helexa/kernels/decode_chain.h"
#include "helexa/kernels/sampling.h"
#include "helexa/kernels/skinny_mma_matmul.h"

namespace helexa::cuda::testing {
namespace {

class CudaOps : public CudaVsCpu {};

TEST_F(CudaOps, EmbeddingAndGatherRows) {
    for (int64_t H : {64, 1000, 4096}) {
        const int64_t vocab = 777;
        auto table = upload(random(static_cast<size_t>(vocab * H)), vocab, H);
        const std::vector<int32_t> ids = {0, 776, 5, 5, 300, 1, 42};
        auto ids_t = upload_i32(ids);
        const auto T = static_cast<int64_t>(ids.size());
        auto out = output(T, H);
        ASSERT_TRUE(cpu_->embedding(out.cpu, table.cpu, ids_t.cpu).has_value());
        on_gpu([&] { ASSERT_TRUE(gpu_->embedding(out.gpu, table.gpu, ids_t.gpu).has_value()); });
        // Embedding is a copy: exact.
        EXPECT_EQ(read_gpu(out.gpu), read_cpu(out.cpu)) << "H=" << H;

        auto rows = upload_i32({6, 0, 3});
        auto g = output(3, H);
        ASSERT_TRUE(cpu_->gather_rows(g.cpu, out.cpu, rows.cpu).has_value());
        on_gpu([&] { ASSERT_TRUE(gpu_->gather_rows(g.gpu, out.gpu, rows.gpu).has_value()); });
        EXPECT_EQ(read_gpu(g.gpu), read_cpu(g.cpu)) << "H=" << H;
    }
}

TEST_F(CudaOps, RmsNormFamily) {
    for (int64_t cols : {64, 100, 1024, 5120}) {
        for (int64_t rows : {1, 7, 130}) {
            const auto n = static_cast<size_t>(rows * cols);
            auto x = upload(random(n, 3.0f), rows, cols);
            auto w = upload(random(static_cast<size_t>(cols), 2.0f), 1, cols);
            auto out = output(rows, cols);
            ASSERT_TRUE(cpu_->rms_norm(out.cpu, x.cpu, w.cpu, 1e-6f).has_value());
            on_gpu([&] { ASSERT_TRUE(gpu_->rms_norm(out.gpu, x.gpu, w.gpu, 1e-6f).has_value()); });
            EXPECT_LE(rel_error(read_gpu(out.gpu), read_cpu(out.cpu)), kBf16Tol)
                << "rms_norm " << rows << "x" << cols;

            // residual += x; out = norm(residual) * w
            auto residual = upload(random(n, 3.0f), rows, cols);
            auto out2 = output(rows, cols);
            ASSERT_TRUE(
                cpu_->add_rms_norm(out2.cpu, residual.cpu, x.cpu, w.cpu, 1e-6f).has_value());
            on_gpu([&] {
                ASSERT_TRUE(
                    gpu_->add_rms_norm(out2.gpu, residual.gpu, x.gpu, w.gpu, 1e-6f).has_value());
            });
            EXPECT_LE(rel_error(read_gpu(residual.gpu), read_cpu(residual.cpu)), kBf16Tol)
                << "add_rms_norm residual " << rows << "x" << cols;
            EXPECT_LE(rel_error(read_gpu(out2.gpu), read_cpu(out2.cpu)), kBf16Tol)
                << "add_rms_norm out " << rows << "x" << cols;

            auto y = upload(random(n), rows, cols);
            auto sum = output(rows, cols);
            ASSERT_TRUE(cpu_->add(sum.cpu, x.cpu, y.cpu).has_value());
            on_gpu([&] { ASSERT_TRUE(gpu_->add(sum.gpu, x.gpu, y.gpu).has_value()); });
            EXPECT_LE(rel_error(read_gpu(sum.gpu), read_cpu(sum.cpu)), kBf16Tol);
        }
    }
}

// The norm kernel and the skinny matmul's fused norm (fused_rms_norm.cuh) each follow
// rms_norm_order.cuh, so a row normalised by either is the same bits: the matmul of the norm
// kernel's output equals the matmul with the norm fused, bit for bit. Widths of one warp's rows
// (1024) and of 2 packs a thread (4096, 5120), where the norm kernel holds the row in registers.
TEST_F(CudaOps, TheNormKernelGivesTheFusedNormsBits) {
    for (int64_t K : {1024, 4096, 5120}) {
        for (int64_t T : {1, 2}) {
            const int64_t N = 96;
            auto x = upload(random(static_cast<size_t>(T * K), 3.0f), T, K);
            auto w = upload(random(static_cast<size_t>(N * K), 0.05f), N, K);
            auto nw = upload(random(static_cast<size_t>(K), 2.0f), 1, K);
            auto fused = output(T, N);
            auto normed = output(T, K);
            auto apart = output(T, N);
            const engine::LinearFusion norm_first{nw.gpu, 1e-6f,
                                                  engine::LinearFusion::Output::kStore};
            on_gpu([&] {
                ASSERT_TRUE(gpu_->fused_linear(fused.gpu, x.gpu, w.gpu, Tensor{}, norm_first,
                                               engine::LinearScratch{})
                                .has_value());
                ASSERT_TRUE(gpu_->rms_norm(normed.gpu, x.gpu, nw.gpu, 1e-6f).has_value());
                ASSERT_TRUE(gpu_->linear(apart.gpu, normed.gpu, w.gpu, Tensor{}).has_value());
            });
            EXPECT_EQ(read_gpu(apart.gpu), read_gpu(fused.gpu)) << "T=" << T << " K=" << K;
        }
    }
}

TEST_F(CudaOps, LinearSkinnyAndGemmPaths) {
    struct Case {
        int64_t T, N, K;
        bool bias;
        DType out;
    };
    const std::vector<Case> cases = {
        {1, 64, 64, false, DType::kBF16},     {1, 4096, 4096, false, DType::kBF16},
        {3, 1000, 512, true, DType::kBF16},   {8, 3072, 1024, false, DType::kBF16},
        {5, 2048, 12288, false, DType::kBF16}, {1, 777, 256, false, DType::kF32},
        {9, 1000, 512, true, DType::kBF16},   {64, 4096, 4096, false, DType::kBF16},
        {200, 1536, 768, true, DType::kBF16}, {33, 777, 256, false, DType::kF32},
    };
    for (const auto& c : cases) {
        auto x = upload(random(static_cast<size_t>(c.T * c.K)), c.T, c.K);
        auto w = upload(random(static_cast<size_t>(c.N * c.K), 0.05f), c.N, c.K);
        Pair b{};
        if (c.bias) {
            b = upload(random(static_cast<size_t>(c.N)), 1, c.N);
        }
        auto out = output(c.T, c.N, c.out);
        ASSERT_TRUE(cpu_->linear(out.cpu, x.cpu, w.cpu, b.cpu).has_value());
        on_gpu([&] {
            auto st = gpu_->linear(out.gpu, x.gpu, w.gpu, b.gpu);
            ASSERT_TRUE(st.has_value()) << st.error().full_message();
        });
        EXPECT_LE(rel_error(read_gpu(out.gpu), read_cpu(out.cpu)), kBf16Tol)
            << "linear T=" << c.T << " N=" << c.N << " K=" << c.K << " bias=" << c.bias;
    }
}

// fused_linear (input RMSNorm, residual accumulate, SwiGLU, f32 logits) against the CPU
// backend's composition of the separate operations, on each path the backend can pick by row
// count: the skinny kernel (T <= the skinny row limit), the norm kernel + tensor-core skinny
// matmul (T <= HELEXA_CUDA_MMA_MAX_ROWS), and the norm kernel + cuBLASLt (+ beta = 1
// accumulate, + silu_mul).
class FusedLinear : public CudaVsCpu {
protected:
    void check(const std::string& label);
};

void FusedLinear::check(const std::string& label) {
    auto& t = *this;
    using engine::LinearFusion;
    using engine::LinearScratch;
    using Output = LinearFusion::Output;
    struct Case {
        int64_t T, N, K;
        bool norm;
        Output output;
        bool bias;
        DType out;
    };
    const std::vector<Case> cases = {
        {1, 4096, 4096, true, Output::kStore, false, DType::kBF16},
        {1, 4096, 4096, false, Output::kAccumulate, false, DType::kBF16},
        {1, 6144, 4096, true, Output::kSwiGlu, false, DType::kBF16},
        {1, 777, 512, true, Output::kStore, false, DType::kF32},
        {2, 1000, 512, true, Output::kAccumulate, true, DType::kBF16},
        {2, 2048, 1024, true, Output::kSwiGlu, true, DType::kBF16},
        {3, 1554, 256, false, Output::kSwiGlu, false, DType::kBF16},
        {3, 999, 1024, true, Output::kStore, true, DType::kBF16},
        {4, 1024, 3072, false, Output::kAccumulate, false, DType::kBF16},
        {4, 1000, 768, true, Output::kStore, false, DType::kF32},
        {8, 2048, 768, true, Output::kSwiGlu, false, DType::kBF16},
        {33, 1536, 256, false, Output::kAccumulate, true, DType::kBF16},
        {33, 777, 512, true, Output::kStore, false, DType::kF32},
        // Serving-step shapes of the tensor-core skinny path (o_proj / down at 16-32 streams),
        // every n-tile count (T <= 8, 16, 32, 64), tiles split over many CTAs (12 x 640 x 4096:
        // 320 units over one CTA per SM) and whole tiles with split ones between them.
        {32, 4096, 4096, false, Output::kAccumulate, false, DType::kBF16},
        {16, 1024, 12288, false, Output::kAccumulate, true, DType::kBF16},
        {64, 2048, 1024, true, Output::kSwiGlu, false, DType::kBF16},
        {12, 640, 4096, false, Output::kStore, true, DType::kF32},
        {7, 3000, 2048, true, Output::kSwiGlu, true, DType::kBF16},
        // SwiGLU halves that are whole 8-row groups but not whole 64-row tiles: the tensor-core
        // path takes these (halves of 1500 and 777 rows above go to cuBLASLt).
        {7, 3008, 2048, true, Output::kSwiGlu, true, DType::kBF16},
        {3, 1552, 256, false, Output::kSwiGlu, false, DType::kBF16},
    };
    for (const auto& c : cases) {
        const int64_t out_cols = c.output == Output::kSwiGlu ? c.N / 2 : c.N;
        auto x = t.upload(t.random(static_cast<size_t>(c.T * c.K)), c.T, c.K);
        auto w = t.upload(t.random(static_cast<size_t>(c.N * c.K), 0.05f), c.N, c.K);
        auto nw = t.upload(t.random(static_cast<size_t>(c.K), 2.0f), 1, c.K);
        Pair b{};
        if (c.bias) {
            b = t.upload(t.random(static_cast<size_t>(c.N)), 1, c.N);
        }
        // Accumulate reads out: both sides start from the same residual.
        auto out = c.output == Output::kAccumulate
                       ? t.upload(t.random(static_cast<size_t>(c.T * out_cols)), c.T, out_cols)
                       : t.output(c.T, out_cols, c.out);
        auto normed = t.output(c.T, c.K);
        auto product = t.output(c.T, c.N);
        LinearFusion fc{c.norm ? nw.cpu : Tensor{}, 1e-6f, c.output};
        LinearFusion fg{c.norm ? nw.gpu : Tensor{}, 1e-6f, c.output};
        auto st = t.cpu_->fused_linear(out.cpu, x.cpu, w.cpu, b.cpu, fc,
                                       LinearScratch{normed.cpu, product.cpu});
        ASSERT_TRUE(st.has_value()) << st.error().full_message();
        t.on_gpu([&] {
            auto g = t.gpu_->fused_linear(out.gpu, x.gpu, w.gpu, b.gpu, fg,
                                          LinearScratch{normed.gpu, product.gpu});
            ASSERT_TRUE(g.has_value()) << g.error().full_message();
        });
        EXPECT_LE(rel_error(t.read_gpu(out.gpu), t.read_cpu(out.cpu)), kBf16Tol)
            << label << " fused_linear T=" << c.T << " N=" << c.N << " K=" << c.K
            << " norm=" << c.norm << " output=" << static_cast<int>(c.output)
            << " bias=" << c.bias;
        if (label == "mma" && c.output != Output::kAccumulate) {
            // The tensor-core path sums a split tile's shares in a fixed order: a second run
            // gives the same bits (accumulate would add twice, so it is left out).
            const auto first = t.read_gpu(out.gpu);
            t.on_gpu([&] {
                auto g = t.gpu_->fused_linear(out.gpu, x.gpu, w.gpu, b.gpu, fg,
                                              LinearScratch{normed.gpu, product.gpu});
                ASSERT_TRUE(g.has_value()) << g.error().full_message();
            });
            EXPECT_EQ(t.read_gpu(out.gpu), first) << "rerun T=" << c.T << " N=" << c.N;
        }
    }
}

TEST_F(FusedLinear, MatchesTheComposition) { check("default"); }

// The same with the skinny kernel taking every row count it has (up to kSkinnyMaxRows), so
// its T = 3 and 4 variants are checked too.
class FusedLinearAllSkinny : public FusedLinear {
protected:
    void SetUp() override {
        setenv("HELEXA_CUDA_SKINNY_MAX_ROWS", "4", 1);
        FusedLinear::SetUp();
        unsetenv("HELEXA_CUDA_SKINNY_MAX_ROWS");
    }
};

TEST_F(FusedLinearAllSkinny, MatchesTheComposition) { check("skinny"); }

// The same with the tensor-core skinny matmul taking every row count above the skinny path up to
// its maximum (off by default until it beats cuBLASLt: cuda_backend.cpp).
class FusedLinearMma : public FusedLinear {
protected:
    void SetUp() override {
        setenv("HELEXA_CUDA_MMA_MAX_ROWS", "64", 1);
        FusedLinear::SetUp();
        unsetenv("HELEXA_CUDA_MMA_MAX_ROWS");
    }
};

TEST_F(FusedLinearMma, MatchesTheComposition) { check("mma"); }

// The same with both skinny kernels off: every row count takes the norm kernel + cuBLASLt
// (+ beta = 1 accumulate, + silu_mul) path.
class FusedLinearCublasLt : public FusedLinear {
protected:
    void SetUp() override {
        setenv("HELEXA_CUDA_SKINNY_MAX_ROWS", "0", 1);
        setenv("HELEXA_CUDA_MMA_MAX_ROWS", "0", 1);
        FusedLinear::SetUp();
        unsetenv("HELEXA_CUDA_SKINNY_MAX_ROWS");
        unsetenv("HELEXA_CUDA_MMA_MAX_ROWS");
    }
};

TEST_F(FusedLinearCublasLt, MatchesTheComposition) { check("cublaslt"); }

// run_chain over the MLP's two links with the tensor-core path and the chain on
// (HELEXA_CUDA_MMA_MAX_ROWS=64, HELEXA_CUDA_MLP_CHAIN=1), where the CUDA backend chains gate_up
// and down in one launch, against the CPU backend's composition. Shapes: every n-tile count,
// grids smaller than the card (3 x 128 x 128: four gate_up units and two down units), stages of
// different CTA counts, the Qwen3-8B MLP (192 gate_up tiles feeding 32 down tiles over one CTA
// per SM), and gate_up ranges that hold three or more whole tiles (4 x 32768 x 64: K of one
// unit).
class FusedMlpMma : public FusedLinear {
protected:
    void SetUp() override {
        setenv("HELEXA_CUDA_MMA_MAX_ROWS", "64", 1);
        setenv("HELEXA_CUDA_MLP_CHAIN", "1", 1);
        FusedLinear::SetUp();
        unsetenv("HELEXA_CUDA_MMA_MAX_ROWS");
        unsetenv("HELEXA_CUDA_MLP_CHAIN");
    }
};

struct MlpCase {
    int64_t T, F, D;
};
const std::vector<MlpCase> kMlpCases = {{3, 128, 128},    {8, 512, 256},    {17, 1536, 1024},
                                        {33, 768, 512},   {64, 2048, 1024}, {16, 12288, 4096},
                                        {4, 32768, 64}};

TEST_F(FusedMlpMma, MatchesTheComposition) {
    using engine::LinearScratch;
    for (const auto& c : kMlpCases) {
        auto residual = upload(random(static_cast<size_t>(c.T * c.D)), c.T, c.D);
        auto nw = upload(random(static_cast<size_t>(c.D), 2.0f), 1, c.D);
        auto gate_up = upload(random(static_cast<size_t>(2 * c.F * c.D), 0.05f), 2 * c.F, c.D);
        auto down = upload(random(static_cast<size_t>(c.D * c.F), 0.05f), c.D, c.F);
        auto act = output(c.T, c.F);
        auto normed = output(c.T, c.D);
        auto gu = output(c.T, 2 * c.F);
        auto proj = output(c.T, c.D);
        // One call: the CPU side keeps the residual in f32, the GPU side rounds it to bf16, so
        // repeated calls would compare that rounding, not the MLP (the bit-exact test below
        // makes repeated calls).
        using Output = engine::LinearFusion::Output;
        const engine::ChainLink cpu_links[] = {
            engine::LinearLink{act.cpu, residual.cpu, gate_up.cpu, Tensor{},
                               {nw.cpu, 1e-6f, Output::kSwiGlu},
             LinearScratch{normed.cpu, gu.cpu}},
            engine::LinearLink{residual.cpu, act.cpu, down.cpu, Tensor{},
                               {Tensor{}, 0.0f, Output::kAccumulate}, LinearScratch{{}, proj.cpu}}};
        const engine::ChainLink gpu_links[] = {
            engine::LinearLink{act.gpu, residual.gpu, gate_up.gpu, Tensor{},
                               {nw.gpu, 1e-6f, Output::kSwiGlu},
             LinearScratch{normed.gpu, gu.gpu}},
            engine::LinearLink{residual.gpu, act.gpu, down.gpu, Tensor{},
                               {Tensor{}, 0.0f, Output::kAccumulate}, LinearScratch{{}, proj.gpu}}};
        auto st = cpu_->run_chain(cpu_links);
        ASSERT_TRUE(st.has_value()) << st.error().full_message();
        on_gpu([&] {
            auto g = gpu_->run_chain(gpu_links);
            ASSERT_TRUE(g.has_value()) << g.error().full_message();
        });
        EXPECT_LE(rel_error(read_gpu(act.gpu), read_cpu(act.cpu)), kBf16Tol)
            << "act T=" << c.T << " F=" << c.F << " D=" << c.D;
        EXPECT_LE(rel_error(read_gpu(residual.gpu), read_cpu(residual.cpu)), kBf16Tol)
            << "residual T=" << c.T << " F=" << c.F << " D=" << c.D;
    }
}

// The chained kernel itself against the two launches it replaces (SwiGLU, then accumulate), bit
// for bit, three calls in a row on each side, on the same inputs.
TEST_F(FusedMlpMma, ChainedLaunchEqualsTheTwoLaunches) {
    bool supported = false;
    on_gpu([&] { supported = kernels::skinny_mma_supported(); });
    if (!supported) {
        GTEST_SKIP() << "the tensor-core skinny matmul needs compute capability 9.0";
    }
    void* workspace = nullptr;
    on_gpu([&] {
        const size_t bytes = kernels::skinny_mma_workspace_bytes();
        ASSERT_EQ(cudaMalloc(&workspace, bytes), cudaSuccess);
        ASSERT_EQ(cudaMemset(workspace, 0, bytes), cudaSuccess);
    });
    for (const auto& c : kMlpCases) {
        const auto start = random(static_cast<size_t>(c.T * c.D));
        auto x = upload(random(static_cast<size_t>(c.T * c.D)), c.T, c.D);
        auto gate_up = upload(random(static_cast<size_t>(2 * c.F * c.D), 0.05f), 2 * c.F, c.D);
        auto down = upload(random(static_cast<size_t>(c.D * c.F), 0.05f), c.D, c.F);
        auto chained = upload(start, c.T, c.D);
        auto apart = upload(start, c.T, c.D);
        auto h_chained = output(c.T, c.F);
        auto h_apart = output(c.T, c.F);
        on_gpu([&] {
            ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
            kernels::SkinnyFusion swiglu;
            swiglu.output = kernels::SkinnyFusion::Output::kSwiGlu;
            kernels::SkinnyFusion accumulate;
            accumulate.output = kernels::SkinnyFusion::Output::kAccumulate;
            for (int call = 0; call < 3; ++call) {
                ASSERT_EQ(kernels::launch_skinny_mma_mlp(
                              chained.gpu.data, c.D, h_chained.gpu.data, c.F, x.gpu.data, c.D,
                              gate_up.gpu.data, down.gpu.data, c.T, c.F, c.D,
                              kernels::ElemType::kBF16, workspace, nullptr),
                          cudaSuccess);
                ASSERT_EQ(kernels::launch_skinny_mma_matmul(
                              h_apart.gpu.data, c.F, kernels::ElemType::kBF16, x.gpu.data, c.D,
                              gate_up.gpu.data, nullptr, c.T, 2 * c.F, c.D,
                              kernels::ElemType::kBF16, swiglu, workspace, nullptr),
                          cudaSuccess);
                ASSERT_EQ(kernels::launch_skinny_mma_matmul(
                              apart.gpu.data, c.D, kernels::ElemType::kBF16, h_apart.gpu.data,
                              c.F, down.gpu.data, nullptr, c.T, c.D, c.F,
                              kernels::ElemType::kBF16, accumulate, workspace, nullptr),
                          cudaSuccess);
            }
            ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        });
        EXPECT_EQ(read_gpu(h_chained.gpu), read_gpu(h_apart.gpu))
            << "h T=" << c.T << " F=" << c.F << " D=" << c.D;
        EXPECT_EQ(read_gpu(chained.gpu), read_gpu(apart.gpu))
            << "residual T=" << c.T << " F=" << c.F << " D=" << c.D;
        // Not the trivial agreement of two unwritten outputs: the chain changed the residual.
        EXPECT_NE(read_gpu(chained.gpu), read_gpu(upload(start, c.T, c.D).gpu));
    }
    on_gpu([&] { EXPECT_EQ(cudaFree(workspace), cudaSuccess); });
}

// The projections between two attentions as one chain (o_proj + residual, the MLP's gate_up
// (+ norm, SwiGLU) and down (+ residual), the next layer's norm + q/k/v with a bias), against
// the CPU backend's links in order. The CUDA backend runs the Qwen3-8B cases as one persistent
// launch (kernels::launch_decode_chain: 1-2 rows, every weight >= 16 MiB) and the smaller ones
// link by link; the second test launches the kernel itself on every case. Shapes (T, hidden D,
// intermediate F, q/k/v width Q, attention width A): tiny (most CTAs get no rows), K past one
// unit with a short last unit (down: 5000 columns in units of 4096; gate_up: 2600 in units of
// 2048) and N not a multiple of the 8-row groups, the Qwen3-8B layer.
class DecodeChain : public CudaVsCpu {
protected:
    struct Case {
        int64_t T, D, F, Q, A;
    };
    const std::vector<Case> cases_ = {{1, 64, 96, 40, 64},
                                      {2, 2600, 5000, 777, 1536},
                                      {1, 4096, 12288, 6144, 4096},
                                      {2, 4096, 12288, 6144, 4096}};

    // One case's tensors on both sides; links(side) is the chain over them.
    struct Layer {
        Pair residual, attn, o, post_norm, gate_up, down, input_norm, qkv, qkv_bias;
        Pair act, q, normed, gu, proj;
    };
    Layer make_layer(const Case& c) {
        Layer l;
        l.residual = upload(random(static_cast<size_t>(c.T * c.D)), c.T, c.D);
        l.attn = upload(random(static_cast<size_t>(c.T * c.A)), c.T, c.A);
        l.o = upload(random(static_cast<size_t>(c.D * c.A), 0.05f), c.D, c.A);
        l.post_norm = upload(random(static_cast<size_t>(c.D), 2.0f), 1, c.D);
        l.gate_up = upload(random(static_cast<size_t>(2 * c.F * c.D), 0.05f), 2 * c.F, c.D);
        l.down = upload(random(static_cast<size_t>(c.D * c.F), 0.05f), c.D, c.F);
        l.input_norm = upload(random(static_cast<size_t>(c.D), 2.0f), 1, c.D);
        l.qkv = upload(random(static_cast<size_t>(c.Q * c.D), 0.05f), c.Q, c.D);
        l.qkv_bias = upload(random(static_cast<size_t>(c.Q)), 1, c.Q);
        l.act = output(c.T, c.F);
        l.q = output(c.T, c.Q);
        l.normed = output(c.T, c.D);
        l.gu = output(c.T, 2 * c.F);
        l.proj = output(c.T, c.D);
        return l;
    }
    static std::vector<engine::LinearLink> links(const Layer& l, Tensor Pair::*side) {
        using Output = engine::LinearFusion::Output;
        using engine::LinearScratch;
        return {{l.residual.*side, l.attn.*side, l.o.*side, Tensor{},
                 {Tensor{}, 0.0f, Output::kAccumulate}, LinearScratch{{}, l.proj.*side}},
                {l.act.*side, l.residual.*side, l.gate_up.*side, Tensor{},
                 {l.post_norm.*side, 1e-6f, Output::kSwiGlu},
                 LinearScratch{l.normed.*side, l.gu.*side}},
                {l.residual.*side, l.act.*side, l.down.*side, Tensor{},
                 {Tensor{}, 0.0f, Output::kAccumulate}, LinearScratch{{}, l.proj.*side}},
                {l.q.*side, l.residual.*side, l.qkv.*side, l.qkv_bias.*side,
                 {l.input_norm.*side, 1e-6f, Output::kStore}, LinearScratch{l.normed.*side, {}}}};
    }
    static std::vector<engine::ChainLink> chain_of(const std::vector<engine::LinearLink>& links) {
        return {links.begin(), links.end()};
    }
    void expect_close(const Layer& l, const Case& c, const std::string& label) {
        const std::string at = label + " T=" + std::to_string(c.T) + " D=" + std::to_string(c.D);
        EXPECT_LE(rel_error(read_gpu(l.residual.gpu), read_cpu(l.residual.cpu)), kBf16Tol)
            << "residual " << at;
        EXPECT_LE(rel_error(read_gpu(l.act.gpu), read_cpu(l.act.cpu)), kBf16Tol) << "act " << at;
        EXPECT_LE(rel_error(read_gpu(l.q.gpu), read_cpu(l.q.cpu)), kBf16Tol) << "q " << at;
    }
};

TEST_F(DecodeChain, BackendChainMatchesTheLinksInOrder) {
    for (const auto& c : cases_) {
        const Layer l = make_layer(c);
        // One call: the CPU side keeps the residual in f32 between links, the GPU side rounds it
        // to bf16 (as its separate launches would), so only one call's outputs are compared.
        auto st = cpu_->run_chain(chain_of(links(l, &Pair::cpu)));
        ASSERT_TRUE(st.has_value()) << st.error().full_message();
        on_gpu([&] {
            auto g = gpu_->run_chain(chain_of(links(l, &Pair::gpu)));
            ASSERT_TRUE(g.has_value()) << g.error().full_message();
        });
        expect_close(l, c, "backend");
    }
}

// The kernel itself: it takes these links (launch_decode_chain would refuse what it does not
// fit), matches the CPU, gives the same bits on three launches from the same inputs (rows are
// handed out dynamically, so a CTA-dependent order would show here) and on fewer CTAs than SMs
// (DecodeChainWorkspace::ctas: the grids of devices with 16 fewer SMs and with 5), and leaves
// its workspace zero for the next launch.
TEST_F(DecodeChain, LaunchMatchesReplaysBitIdenticallyOnAnyCtaCountAndLeavesTheWorkspaceZero) {
    bool supported = false;
    on_gpu([&] { supported = kernels::decode_chain_supported(); });
    if (!supported) {
        GTEST_SKIP() << "the decode chain needs compute capability 9.0";
    }
    kernels::DecodeChainWorkspace ws;
    const size_t ws_bytes = kernels::decode_chain_workspace_bytes();
    on_gpu([&] {
        ASSERT_EQ(cudaMalloc(&ws.device, ws_bytes), cudaSuccess);
        ASSERT_EQ(cudaMemset(ws.device, 0, ws_bytes), cudaSuccess);
    });
    int sms = 0;
    on_gpu([&] {
        int device = 0;
        ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
        ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
                  cudaSuccess);
    });
    const int cta_counts[] = {0, 0, 0, std::max(1, sms - 16), 5};
    for (const auto& c : cases_) {
        const Layer l = make_layer(c);
        const auto start = read_gpu(l.residual.gpu);
        ASSERT_TRUE(cpu_->run_chain(chain_of(links(l, &Pair::cpu))).has_value());
        std::vector<kernels::DecodeChainLink> chain;
        for (const engine::LinearLink& g : links(l, &Pair::gpu)) {
            chain.push_back(cuda::backend_impl::decode_chain_link(g));
        }
        const std::string at = " T=" + std::to_string(c.T) + " D=" + std::to_string(c.D);
        std::vector<std::vector<float>> runs;
        for (const int ctas : cta_counts) {
            ws.ctas = ctas;
            const auto residual = upload(start, c.T, c.D);
            on_gpu([&] {
                ASSERT_EQ(cudaMemcpy(l.residual.gpu.data, residual.gpu.data,
                                     static_cast<size_t>(c.T * c.D * 2), cudaMemcpyDefault),
                          cudaSuccess);
                ASSERT_EQ(kernels::launch_decode_chain(chain.data(),
                                                       static_cast<int>(chain.size()), c.T,
                                                       kernels::ElemType::kBF16, ws, nullptr),
                          cudaSuccess);
                ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
            });
            auto all = read_gpu(l.residual.gpu);
            for (const Tensor* t : {&l.act.gpu, &l.q.gpu}) {
                const auto v = read_gpu(*t);
                all.insert(all.end(), v.begin(), v.end());
            }
            runs.push_back(std::move(all));
        }
        expect_close(l, c, "launch");
        for (size_t i = 1; i < runs.size(); ++i) {
            EXPECT_EQ(runs[i], runs[0])
                << "launch " << i << " on " << cta_counts[i] << " CTAs (0: one per SM)" << at;
        }
        std::vector<unsigned> counters(ws_bytes / sizeof(unsigned), 1u);
        on_gpu([&] {
            ASSERT_EQ(cudaMemcpy(counters.data(), ws.device, ws_bytes, cudaMemcpyDefault),
                      cudaSuccess);
        });
        EXPECT_EQ(std::count(counters.begin(), counters.end(), 0u),
                  static_cast<std::ptrdiff_t>(counters.size()))
            << "workspace after" << at;
    }
    on_gpu([&] { EXPECT_EQ(cudaFree(ws.device), cudaSuccess); });
}

TEST_F(CudaOps, HeadNormRopeSiluOnStridedViews) {
    for (int64_t hd : {16, 64, 128}) {
        const int64_t nh = 6;
        const int64_t nkv = 2;
        const int64_t T = 11;
        const int64_t width = (nh + 2 * nkv) * hd;
        auto qkv = upload(random(static_cast<size_t>(T * width), 2.0f), T, width);
        auto qn = upload(random(static_cast<size_t>(hd), 2.0f), 1, hd);
        Tensor qc = qkv.cpu.col_slice(0, nh * hd);
        Tensor qg = qkv.gpu.col_slice(0, nh * hd);
        ASSERT_TRUE(cpu_->rms_norm_heads(qc, nh, qn.cpu, 1e-6f).has_value());
        on_gpu([&] { ASSERT_TRUE(gpu_->rms_norm_heads(qg, nh, qn.gpu, 1e-6f).has_value()); });

        // Positions up to 30k: the f32 angle must match the reference's f32 product.
        std::vector<int32_t> pos(static_cast<size_t>(T));
        std::iota(pos.begin(), pos.end(), 29990);
        pos[0] = 0;
        auto pos_t = upload_i32(pos);
        const int64_t rotary = hd;  // full rotary; partial is covered by the CPU suite
        std::vector<float> inv(static_cast<size_t>(rotary / 2));
        for (size_t i = 0; i < inv.size(); ++i) {
            inv[i] = static_cast<float>(1.0 / std::pow(1e6, 2.0 * static_cast<double>(i) /
                                                             static_cast<double>(rotary)));
        }
        engine::RopeTable rc{};
        engine::RopeTable rg{};
        {
            auto c = cpu_->alloc(DType::kF32, 1, rotary / 2);
            ASSERT_TRUE(cpu_->copy_from_host(*c, inv.data()).has_value());
            rc = engine::RopeTable{*c, rotary, 1.0f};
            on_gpu([&] {
                auto g = gpu_->alloc(DType::kF32, 1, rotary / 2);
                ASSERT_TRUE(gpu_->copy_from_host(*g, inv.data()).has_value());
                rg = engine::RopeTable{*g, rotary, 1.0f};
            });
        }
        ASSERT_TRUE(cpu_->rope(qc, nh, hd, pos_t.cpu, rc).has_value());
        on_gpu([&] { ASSERT_TRUE(gpu_->rope(qg, nh, hd, pos_t.gpu, rg).has_value()); });
        EXPECT_LE(rel_error(read_gpu(qkv.gpu), read_cpu(qkv.cpu)), kBf16Tol) << "hd=" << hd;

        // SwiGLU over a fused gate/up.
        const int64_t I = 3 * hd;
        auto gu = upload(random(static_cast<size_t>(T * 2 * I), 4.0f), T, 2 * I);
        auto act = output(T, I);
        ASSERT_TRUE(cpu_->silu_mul(act.cpu, gu.cpu).has_value());
        on_gpu([&] { ASSERT_TRUE(gpu_->silu_mul(act.gpu, gu.gpu).has_value()); });
        EXPECT_LE(rel_error(read_gpu(act.gpu), read_cpu(act.cpu)), kBf16Tol) << "silu hd=" << hd;
    }
}

// Greedy picks on the device against the CPU sampler: ties across the row's cluster slices go to
// the lowest index, +inf rejects the row, NaN and -inf never win; the float4 path (vocab % 4 ==
// 0), the scalar path, a vocab smaller than one slice per CTA, and more rows than one grid.
TEST_F(CudaOps, ArgmaxRowsMatchesTheCpuSampler) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float inf = std::numeric_limits<float>::infinity();
    for (int64_t vocab : {151936, 1001, 7}) {
        const int64_t rows = vocab == 7 ? 70000 : 9;
        std::vector<float> v = random(static_cast<size_t>(rows * vocab), 4.0f);
        auto row = [&](int64_t r) { return v.data() + r * vocab; };
        // Row 1: the maximum twice, far apart (different slices) -> the first.
        row(1)[3] = 100.0f;
        row(1)[vocab - 2] = 100.0f;
        // Row 2: +inf anywhere rejects the row.
        row(2)[vocab / 2] = inf;
        // Row 3: no finite logit.
        std::fill(row(3), row(3) + vocab, nan);
        // Row 4: NaN and -inf everywhere but one finite value, last.
        for (int64_t c = 0; c < vocab; ++c) {
            row(4)[c] = c % 2 == 0 ? nan : -inf;
        }
        row(4)[vocab - 1] = -1e30f;
        // Row 5: adjacent equal maxima (one thread's pack) -> the first.
        row(5)[vocab - 4] = 50.0f;
        row(5)[vocab - 3] = 50.0f;
        auto logits_cpu = cpu_->alloc(DType::kF32, rows, vocab);
        ASSERT_TRUE(logits_cpu.has_value());
        ASSERT_TRUE(cpu_->copy_from_host(*logits_cpu, v.data()).has_value());
        auto ids_cpu = cpu_->alloc(DType::kI32, 1, rows);
        ASSERT_TRUE(ids_cpu.has_value());
        ASSERT_TRUE(cpu_->argmax_rows(*ids_cpu, *logits_cpu).has_value());
        std::vector<int32_t> want(static_cast<size_t>(rows));
        ASSERT_TRUE(cpu_->copy_to_host(want.data(), *ids_cpu).has_value());
        std::vector<int32_t> got(static_cast<size_t>(rows), -7);
        on_gpu([&] {
            auto logits = gpu_->alloc(DType::kF32, rows, vocab);
            ASSERT_TRUE(logits.has_value());
            ASSERT_TRUE(gpu_->copy_from_host(*logits, v.data()).has_value());
            auto ids = gpu_->alloc(DType::kI32, 1, rows);
            ASSERT_TRUE(ids.has_value());
            const std::vector<int32_t> poison(static_cast<size_t>(rows), -7);
            ASSERT_TRUE(gpu_->copy_from_host(*ids, poison.data()).has_value());
            auto st = gpu_->argmax_rows(*ids, *logits);
            ASSERT_TRUE(st.has_value()) << st.error().full_message();
            ASSERT_TRUE(gpu_->copy_to_host(got.data(), *ids).has_value());
        });
        EXPECT_EQ(want[1], 3) << "vocab " << vocab;
        EXPECT_EQ(want[2], -1) << "vocab " << vocab;
        EXPECT_EQ(want[3], -1) << "vocab " << vocab;
        EXPECT_EQ(want[4], vocab - 1) << "vocab " << vocab;
        EXPECT_EQ(got, want) << "vocab " << vocab;
    }
}

// The draw rule on the device against the host's draw_row on the same logits, bit for bit: every
// mode (greedy with and without penalties, temperature, top-k with top-p, min-p, top-p over the
// whole vocabulary, host rows left alone), broken rows, top-k rows that take the sort and the
// tournament fallback, whole-vocabulary top-p rows of one value and of many ties, the penalised
// logits it leaves behind, vocabularies from 7 ids (more rows than one grid) to the rule's limit.
TEST_F(CudaOps, DrawRowsMatchTheHostRuleBitForBit) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float inf = std::numeric_limits<float>::infinity();
    std::mt19937 gen(99);
    // How many rows clusters of 8 and of 4 CTAs draw at once on this card (0 without clusters:
    // every size is then one CTA a row, and the prefixes below are 12 and 24 rows).
    int64_t fit8 = 0;
    int64_t fit4 = 0;
    on_gpu([&] {
        fit8 = kernels::draw_rows_max_clusters(8);
        fit4 = kernels::draw_rows_max_clusters(4);
    });
    const bool has_clusters = fit8 > 0;
    if (!has_clusters) {
        fit8 = 12;
        fit4 = 24;
    }
    ASSERT_GT(fit4, fit8);
    for (int64_t vocab : {int64_t{151936}, int64_t{1001}, int64_t{7}, engine::draw::kMaxVocab}) {
        const int64_t rows = vocab == 7 ? 70000 : std::max<int64_t>(48, fit4 + 8);
        std::vector<float> v = random(static_cast<size_t>(rows * vocab), 6.0f);
        auto row = [&](int64_t r) { return v.data() + r * vocab; };
        row(2)[vocab / 2] = inf;                            // broken: +inf
        std::fill(row(3), row(3) + vocab, nan);             // broken: nothing finite
        for (int64_t c = 0; c + 1 < vocab; c += 2) {        // half banned
            row(4)[c] = -inf;
        }
        row(5)[vocab - 1] = row(5)[0] = 40.0f;              // tie across slices
        // Top-k rows (r % 8 == 4, 5): one all tied (every id a candidate: the tournament
        // fallback), one with all but a hundred ids banned (no thread-maximum bound).
        std::fill(row(12), row(12) + vocab, 1.0f);
        for (int64_t c = 0; c < vocab; ++c) {
            row(13)[c] = c % std::max<int64_t>(1, vocab / 100) == 0 ? row(13)[c] : -inf;
        }
        // Whole-vocabulary top-p rows (r % 16 == 7): one value everywhere (every id at the
        // floor), then a handful of distinct values (ties at every level of the radix search).
        std::fill(row(23), row(23) + vocab, 0.5f);
        for (int64_t c = 0; c < vocab; ++c) {
            row(39)[c] = std::round(row(39)[c]);
        }
        engine::DrawBatch draws;
        std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(vocab - 1));
        for (int64_t r = 0; r < rows; ++r) {
            engine::SamplingConfig cfg;
            cfg.repetition_penalty = 1.0F;
            switch (r % 8) {
                case 0: cfg.temperature = 0.0F; break;
                case 1: cfg.temperature = 0.0F; cfg.repetition_penalty = 1.3F;
                        cfg.logit_bias = {{static_cast<int32_t>(vocab / 3), 8.0F}}; break;
                case 2: break;  // temperature 1
                case 3: cfg.temperature = 0.6F; cfg.repetition_penalty = 1.1F;
                        cfg.presence_penalty = 0.5F; cfg.frequency_penalty = 0.3F; break;
                case 4: cfg.temperature = 0.6F; cfg.top_k = 20; cfg.top_p = 0.95F; break;
                case 5: cfg.top_k = engine::draw::kMaxTopK; cfg.min_p = 0.05F; break;
                case 6: cfg.temperature = 1.3F; cfg.min_p = 0.1F; break;
                default: cfg.temperature = 0.6F; cfg.top_p = 0.9F; break;  // Llama's settings
            }
            // Top-p over the whole vocabulary: drawn on rows r % 16 == 7, left to the host
            // Sampler (kDrawHost) on r % 16 == 15.
            std::vector<int32_t> generated(static_cast<size_t>(r % 50));
            for (auto& g : generated) {
                g = id(gen) % std::max<int32_t>(1, static_cast<int32_t>(vocab / 100 + 3));
            }
            engine::plan_row_draw(cfg, generated, 1000 + static_cast<uint64_t>(r), vocab,
                                  r % 16 != 15, draws);
        }
        // The host rule, on a copy.
        std::vector<float> host = v;
        std::vector<int32_t> want(static_cast<size_t>(rows));
        for (int64_t r = 0; r < rows; ++r) {
            const auto& d = draws.rows[static_cast<size_t>(r)];
            want[static_cast<size_t>(r)] =
                d.mode == engine::draw::kDrawHost
                    ? -2
                    : engine::draw_row({host.data() + r * vocab, static_cast<size_t>(vocab)}, d,
                                       draws.entries);
        }
        EXPECT_EQ(want[2], -1);
        EXPECT_EQ(want[3], -1);
        // The whole batch, then as many of its first rows as clusters of 4 and of 8 fit the
        // card at once: the backend gives a row a cluster of 8, 4 or 2 CTAs by the batch's size
        // (kernels::draw_rows_cluster), and the token must not depend on it; then the whole
        // batch in one CTA a row (the form of devices without clusters) and in clusters of 8,
        // launched directly. cluster 0: the backend's choice.
        if (has_clusters) {
            EXPECT_EQ(kernels::draw_rows_cluster(fit8), 8);
            EXPECT_EQ(kernels::draw_rows_cluster(fit4), 4);
            EXPECT_EQ(kernels::draw_rows_cluster(rows), 2);
        }
        const std::vector<std::pair<int64_t, int>> runs = {
            {rows, 0}, {fit4, 0}, {fit8, 0}, {rows, 1}, {rows, 8}};
        for (const auto& [n, cluster] : runs) {
            engine::DrawBatch first_n;
            first_n.rows.assign(draws.rows.begin(), draws.rows.begin() + n);
            first_n.entries = draws.entries;
            const std::vector<int32_t> packed = first_n.packed(first_n.rows.size());
            const size_t n_logits = static_cast<size_t>(n * vocab);
            std::vector<int32_t> got(static_cast<size_t>(n), -7);
            std::vector<float> device_logits(n_logits);
            on_gpu([&] {
                auto logits = gpu_->alloc(DType::kF32, n, vocab);
                ASSERT_TRUE(logits.has_value());
                ASSERT_TRUE(gpu_->copy_from_host(*logits, v.data()).has_value());
                auto packed_t = gpu_->alloc(DType::kI32, 1, static_cast<int64_t>(packed.size()));
                ASSERT_TRUE(packed_t.has_value());
                ASSERT_TRUE(gpu_->copy_from_host(*packed_t, packed.data()).has_value());
                auto ids = gpu_->alloc(DType::kI32, 1, n);
                ASSERT_TRUE(ids.has_value());
                ASSERT_TRUE(gpu_->copy_from_host(*ids, got.data()).has_value());
                if (cluster == 0) {
                    auto st = gpu_->draw_rows(*ids, *logits, *packed_t);
                    ASSERT_TRUE(st.has_value()) << st.error().full_message();
                } else {
                    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
                    ASSERT_EQ(kernels::launch_draw_rows(static_cast<float*>(logits->data), n,
                                                        vocab, packed_t->data,
                                                        static_cast<int32_t*>(ids->data),
                                                        cluster, nullptr),
                              cudaSuccess);
                    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
                }
                ASSERT_TRUE(gpu_->copy_to_host(got.data(), *ids).has_value());
                ASSERT_TRUE(gpu_->copy_to_host(device_logits.data(), *logits).has_value());
            });
            int mismatches = 0;
            for (int64_t r = 0; r < n && mismatches < 10; ++r) {
                if (got[static_cast<size_t>(r)] != want[static_cast<size_t>(r)]) {
                    ADD_FAILURE() << "vocab " << vocab << ", " << n << " rows in clusters of "
                                  << (cluster != 0 ? cluster : kernels::draw_rows_cluster(n))
                                  << ", row " << r << " (mode "
                                  << draws.rows[static_cast<size_t>(r)].mode << ", top_k "
                                  << draws.rows[static_cast<size_t>(r)].top_k << "): device "
                                  << got[static_cast<size_t>(r)] << ", host "
                                  << want[static_cast<size_t>(r)];
                    ++mismatches;
                }
            }
            // Penalised in place exactly as on the host (NaN payloads aside: the device's
            // arithmetic gives its canonical NaN); host rows untouched.
            size_t differing = 0;
            for (size_t i = 0; i < n_logits; ++i) {
                const bool same = std::memcmp(&device_logits[i], &host[i], sizeof(float)) == 0 ||
                                  (std::isnan(device_logits[i]) && std::isnan(host[i]));
                differing += same ? 0 : 1;
            }
            EXPECT_EQ(differing, 0U) << "vocab " << vocab << ", " << n << " rows, cluster "
                                     << cluster;
        }
        // The draws are draws: the temperature-1 rows did not all take their argmax.
        int sampled_off_argmax = 0;
        for (int64_t r = 2 + 8; r < rows && vocab > 7; r += 8) {
            const float* h = host.data() + r * vocab;
            sampled_off_argmax += want[static_cast<size_t>(r)] !=
                                          static_cast<int32_t>(std::max_element(h, h + vocab) - h)
                                      ? 1
                                      : 0;
        }
        if (vocab > 7) {
            EXPECT_GT(sampled_off_argmax, 0) << "vocab " << vocab;
        }
    }
}

}  // namespace
}  // namespace helexa::cuda::testing
