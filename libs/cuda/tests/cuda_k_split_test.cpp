// The residual add after o_proj and down at 3-64 rows, split over K (CudaBackend's
// k_split_then_norm): cuBLASLt's batched GEMM writes one f32 partial per K slice
// (CublasLtMatmul::run_k_split), and one kernel adds their sum to the residual and normalises it
// for the next projection (kernels::launch_add_partials_rms_norm), instead of cuBLASLt's own
// split-K reduce kernel and then the norm kernel. Each piece is checked alone (the partials are
// the products of their K slices; the residual is rounded once from the parts summed in order,
// and its norm equals the norm kernel's bit for bit), then the backend's chain against the CPU's
// links in order at the decode batch sizes that take it.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cublaslt_matmul.h"
#include "cuda_test_support.h"
#include "helexa/kernels/norm.h"

namespace helexa::cuda::testing {
namespace {

template <typename T>
void upload_to(DeviceBuffer& d, const std::vector<T>& host) {
    ASSERT_EQ(cudaMemcpy(d.p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
              cudaSuccess);
}

template <typename T>
std::vector<T> download(const DeviceBuffer& d, size_t n) {
    std::vector<T> host(n);
    EXPECT_EQ(cudaMemcpy(host.data(), d.p, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return host;
}

bool have_device() { return cudaSetDevice(0) == cudaSuccess; }

// The part count kept from the tuner's timings: the fewest within the margin of the fastest, so
// noise between counts that time alike (run 21's three processes at 32 x 4096 x 12288) keeps
// one choice, and more parts are taken only for a clear win.
TEST(KSplitChoice, TheFewestPartsWithinTheMarginOfTheFastest) {
    using Timed = std::vector<std::pair<int64_t, float>>;
    const Timed first = {{1, 30.3F}, {2, 28.6F}, {3, 30.3F}, {4, 28.9F}, {6, 29.5F}, {8, 29.5F}};
    const Timed second = {{1, 30.5F}, {2, 29.0F}, {3, 30.1F}, {4, 28.8F}, {6, 29.3F}, {8, 28.8F}};
    EXPECT_EQ(CublasLtMatmul::choose_k_split(first), 2);
    EXPECT_EQ(CublasLtMatmul::choose_k_split(second), 2);  // 8 is 0.7% faster: within the margin
    EXPECT_EQ(CublasLtMatmul::choose_k_split(Timed{{1, 40.0F}, {2, 35.0F}, {8, 28.0F}}), 8);
    EXPECT_EQ(CublasLtMatmul::choose_k_split(Timed{{1, 10.25F}, {4, 10.0F}}), 1);  // 2.5%
    EXPECT_EQ(CublasLtMatmul::choose_k_split(Timed{{1, 10.35F}, {4, 10.0F}}), 4);  // 3.5%
    EXPECT_EQ(CublasLtMatmul::choose_k_split(Timed{{3, 5.0F}}), 3);
    EXPECT_EQ(CublasLtMatmul::choose_k_split(Timed{}), 0);
}

// Rows of one (T, D) shape in parts, through each of the kernel's paths: all loads first (rows of
// one warp's 4 packs a lane, D <= 1024; rows of up to 512 threads' 2 packs), the generic walk on
// the 16-byte path (D = 12288: more threads than that) and on the element path (D not a multiple
// of 8); one part (cuBLASLt splitting inside one GEMM) up to eight.
TEST(KSplitNorm, TheResidualTakesThePartsSumInOrderAndItsNormIsTheNormKernels) {
    if (!have_device()) {
        GTEST_SKIP() << "no CUDA device";
    }
    struct Case {
        int64_t T, D, parts;
    };
    // (32, 4096, 2): Qwen3-8B's down at 32 streams, whose two parts load in the first round.
    const std::vector<Case> cases = {{3, 1024, 1},  {5, 1000, 3},  {32, 4096, 4},
                                     {64, 4096, 8}, {9, 5000, 6},  {7, 1004, 2},
                                     {4, 12288, 3}, {32, 8192, 2}, {32, 4096, 2},
                                     {16, 1024, 2}};
    std::mt19937 rng(7);
    for (const Case& c : cases) {
        const std::string at = "T=" + std::to_string(c.T) + " D=" + std::to_string(c.D) +
                               " parts=" + std::to_string(c.parts);
        const auto n = static_cast<size_t>(c.T * c.D);
        const auto residual_host = random_bf16(n, rng, 4.0f);
        const auto weight_host = random_bf16(static_cast<size_t>(c.D), rng, 2.0f);
        std::uniform_real_distribution<float> u(-1.0f, 1.0f);
        std::vector<float> parts_host(static_cast<size_t>(c.parts) * n);
        for (auto& p : parts_host) {
            p = u(rng);  // f32 values, not bf16-representable: the sum is rounded only once
        }
        DeviceBuffer residual(n * 2);
        DeviceBuffer weight(weight_host.size() * 2);
        DeviceBuffer parts(parts_host.size() * 4);
        DeviceBuffer fused(n * 2);
        DeviceBuffer apart(n * 2);
        upload_to(residual, residual_host);
        upload_to(weight, weight_host);
        upload_to(parts, parts_host);
        ASSERT_EQ(cudaMemset(fused.p, 0xFF, n * 2), cudaSuccess);  // NaN where unwritten
        ASSERT_EQ(cudaMemset(apart.p, 0xFF, n * 2), cudaSuccess);

        ASSERT_EQ(kernels::launch_add_partials_rms_norm(
                      fused.p, c.D, residual.p, c.D, static_cast<const float*>(parts.p),
                      c.parts, c.T * c.D, c.D, weight.p, c.T, c.D, 1e-6f,
                      kernels::ElemType::kBF16, nullptr),
                  cudaSuccess)
            << at;
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << at;

        // The residual: the parts summed in f32 from part 0 on, added to it, rounded once.
        const auto got_residual = download<uint16_t>(residual, n);
        std::vector<uint16_t> want_residual(n);
        for (size_t i = 0; i < n; ++i) {
            float sum = parts_host[i];
            for (int64_t s = 1; s < c.parts; ++s) {
                sum += parts_host[static_cast<size_t>(s) * n + i];
            }
            want_residual[i] = to_bf16_bits(from_bf16_bits(residual_host[i]) + sum);
        }
        EXPECT_EQ(got_residual, want_residual) << at;

        // Its norm: the norm kernel's on the updated residual, bit for bit.
        ASSERT_EQ(kernels::launch_rms_norm(apart.p, c.D, residual.p, c.D, weight.p, c.T, c.D,
                                           1e-6f, kernels::ElemType::kBF16, nullptr),
                  cudaSuccess);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        const auto got_norm = download<uint16_t>(fused, n);
        EXPECT_EQ(got_norm, download<uint16_t>(apart, n)) << at;
        EXPECT_TRUE(std::none_of(got_norm.begin(), got_norm.end(),
                                 [](uint16_t b) { return (b & 0x7F80) == 0x7F80; }))
            << "an unwritten or non-finite normalised element, " << at;
    }
}

TEST(KSplitNorm, RefusesWhatItCannotDo) {
    if (!have_device()) {
        GTEST_SKIP() << "no CUDA device";
    }
    DeviceBuffer a(4096);
    DeviceBuffer b(4096);
    DeviceBuffer parts(4096 * 4);
    const auto* p = static_cast<const float*>(parts.p);
    const auto bf16 = kernels::ElemType::kBF16;
    // No part, out aliasing the residual, slabs overlapping each other.
    EXPECT_EQ(kernels::launch_add_partials_rms_norm(a.p, 64, b.p, 64, p, 0, 128, 64, a.p, 2, 64,
                                                    1e-6f, bf16, nullptr),
              cudaErrorInvalidValue);
    EXPECT_EQ(kernels::launch_add_partials_rms_norm(b.p, 64, b.p, 64, p, 1, 128, 64, a.p, 2, 64,
                                                    1e-6f, bf16, nullptr),
              cudaErrorInvalidValue);
    EXPECT_EQ(kernels::launch_add_partials_rms_norm(a.p, 64, b.p, 64, p, 2, 64, 64, a.p, 2, 64,
                                                    1e-6f, bf16, nullptr),
              cudaErrorInvalidValue);
}

// run_k_split: slab s is the product over the s-th K slice, for the count it chose (one of
// k_split_counts), chosen once per tuning class (a later shape of the class times nothing and
// keeps the count).
TEST(CublasLtKSplit, EachPartialIsTheProductOfItsKSliceAndTheCountIsKeptPerClass) {
    if (!have_device()) {
        GTEST_SKIP() << "no CUDA device";
    }
    constexpr int64_t N = 512;
    constexpr int64_t K = 3072;  // splits of whole 64-column groups: 1, 2, 3, 4, 6, 8
    constexpr int64_t kMaxT = 40;
    constexpr int64_t kMaxParts = 8;
    constexpr size_t kWorkspace = 32u << 20;
    EXPECT_EQ(CublasLtMatmul::k_split_counts(K, kMaxParts),
              (std::vector<int64_t>{1, 2, 3, 4, 6, 8}));
    EXPECT_EQ(CublasLtMatmul::k_split_counts(4000, kMaxParts), (std::vector<int64_t>{1}));
    DeviceBuffer workspace(kWorkspace);
    auto mm = CublasLtMatmul::create(workspace.p, kWorkspace);
    ASSERT_TRUE(mm.has_value()) << mm.error().full_message();
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);

    std::mt19937 rng(3);
    const auto x_host = random_bf16(static_cast<size_t>(kMaxT * K), rng);
    const auto w_host = random_bf16(static_cast<size_t>(N * K), rng);
    DeviceBuffer x(x_host.size() * 2);
    DeviceBuffer w(w_host.size() * 2);
    DeviceBuffer parts(static_cast<size_t>(kMaxParts * kMaxT * N) * 4);
    upload_to(x, x_host);
    upload_to(w, w_host);

    // 33 opens the 40-row class (one tuning), 37 reuses it, 5 opens its own.
    const std::vector<std::pair<int64_t, int64_t>> steps = {{33, 1}, {37, 1}, {5, 2}};
    int64_t class_40_parts = 0;
    for (const auto& [T, tunings] : steps) {
        const std::string at = "T=" + std::to_string(T);
        ASSERT_EQ(cudaMemset(parts.p, 0xFF, static_cast<size_t>(kMaxParts * T * N) * 4),
                  cudaSuccess);
        auto got_parts = (*mm)->run_k_split(static_cast<float*>(parts.p), kMaxParts, x.p, K,
                                            w.p, T, N, K, CUDA_R_16BF, stream);
        ASSERT_TRUE(got_parts.has_value()) << got_parts.error().full_message();
        ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
        const int64_t S = *got_parts;
        const auto counts = CublasLtMatmul::k_split_counts(K, kMaxParts);
        EXPECT_NE(std::find(counts.begin(), counts.end(), S), counts.end()) << at;
        EXPECT_EQ((*mm)->tuned_shapes(), tunings) << at;
        if (T > 8) {
            class_40_parts = class_40_parts == 0 ? S : class_40_parts;
            EXPECT_EQ(S, class_40_parts) << "a later shape of the class changed its count";
        }

        const auto got = download<float>(parts, static_cast<size_t>(S * T * N));
        const int64_t slice = K / S;
        std::vector<float> want(got.size());
        for (int64_t s = 0; s < S; ++s) {
            for (int64_t t = 0; t < T; ++t) {
                for (int64_t n = 0; n < N; ++n) {
                    double acc = 0;
                    for (int64_t k = s * slice; k < (s + 1) * slice; ++k) {
                        acc += static_cast<double>(from_bf16_bits(x_host[t * K + k])) *
                               from_bf16_bits(w_host[n * K + k]);
                    }
                    want[static_cast<size_t>((s * T + t) * N + n)] = static_cast<float>(acc);
                }
            }
        }
        // f32 accumulation of exact bf16 products: far inside the bf16 tolerance.
        EXPECT_LE(rel_error(got, want), 1e-4) << at << " parts=" << S;
    }
    cudaStreamDestroy(stream);
}

// The backend's chain between two attentions at the batch sizes that take the K split (3-64
// rows): o_proj (+ residual) then the MLP's gate_up (+ norm, SwiGLU), down (+ residual) then the
// next q/k/v (+ norm, bias), against the CPU backend's links in order. Both residual adds take
// the split and sum path there; 2 rows (the skinny path) are the control.
class KSplitChain : public CudaVsCpu {};

TEST_F(KSplitChain, MatchesTheCpuLinksInOrder) {
    struct Case {
        int64_t T, D, F, Q, A;
    };
    const std::vector<Case> cases = {{3, 1024, 3072, 1536, 1024},
                                     {9, 1024, 3072, 1536, 1024},
                                     {16, 4096, 12288, 6144, 4096},
                                     {32, 4096, 12288, 6144, 4096},
                                     {64, 2048, 6144, 3072, 2048},
                                     {8, 4096, 12288, 6144, 4096},
                                     {2, 1024, 3072, 1536, 1024}};
    using Output = engine::LinearFusion::Output;
    using engine::LinearScratch;
    for (const Case& c : cases) {
        const std::string at = "T=" + std::to_string(c.T) + " D=" + std::to_string(c.D);
        const Pair residual = upload(random(static_cast<size_t>(c.T * c.D)), c.T, c.D);
        const Pair attn = upload(random(static_cast<size_t>(c.T * c.A)), c.T, c.A);
        const Pair o = upload(random(static_cast<size_t>(c.D * c.A), 0.05f), c.D, c.A);
        const Pair post_norm = upload(random(static_cast<size_t>(c.D), 2.0f), 1, c.D);
        const Pair gate_up =
            upload(random(static_cast<size_t>(2 * c.F * c.D), 0.05f), 2 * c.F, c.D);
        const Pair down = upload(random(static_cast<size_t>(c.D * c.F), 0.05f), c.D, c.F);
        const Pair input_norm = upload(random(static_cast<size_t>(c.D), 2.0f), 1, c.D);
        const Pair qkv = upload(random(static_cast<size_t>(c.Q * c.D), 0.05f), c.Q, c.D);
        const Pair qkv_bias = upload(random(static_cast<size_t>(c.Q)), 1, c.Q);
        const Pair act = output(c.T, c.F);
        const Pair q = output(c.T, c.Q);
        const Pair normed = output(c.T, c.D);
        const Pair gu = output(c.T, 2 * c.F);
        const Pair proj = output(c.T, c.D);
        auto links = [&](Tensor Pair::*side) {
            return std::vector<engine::ChainLink>{
                engine::LinearLink{residual.*side, attn.*side, o.*side, Tensor{},
                                   {Tensor{}, 0.0f, Output::kAccumulate},
                                   LinearScratch{{}, proj.*side}},
                engine::LinearLink{act.*side, residual.*side, gate_up.*side, Tensor{},
                                   {post_norm.*side, 1e-6f, Output::kSwiGlu},
                                   LinearScratch{normed.*side, gu.*side}},
                engine::LinearLink{residual.*side, act.*side, down.*side, Tensor{},
                                   {Tensor{}, 0.0f, Output::kAccumulate},
                                   LinearScratch{{}, proj.*side}},
                engine::LinearLink{q.*side, residual.*side, qkv.*side, qkv_bias.*side,
                                   {input_norm.*side, 1e-6f, Output::kStore},
                                   LinearScratch{normed.*side, {}}}};
        };
        // One call each: the CPU keeps the residual in f32 between links, the GPU rounds it to
        // bf16 after each add, so only one call's outputs are compared.
        auto st = cpu_->run_chain(links(&Pair::cpu));
        ASSERT_TRUE(st.has_value()) << st.error().full_message();
        on_gpu([&] {
            auto g = gpu_->run_chain(links(&Pair::gpu));
            ASSERT_TRUE(g.has_value()) << g.error().full_message();
        });
        EXPECT_LE(rel_error(read_gpu(residual.gpu), read_cpu(residual.cpu)), kBf16Tol)
            << "residual " << at;
        EXPECT_LE(rel_error(read_gpu(act.gpu), read_cpu(act.cpu)), kBf16Tol) << "act " << at;
        EXPECT_LE(rel_error(read_gpu(q.gpu), read_cpu(q.cpu)), kBf16Tol) << "q " << at;
        if (c.T > 2) {  // (the skinny path normalises in the matmul: no normed rows to compare)
            EXPECT_LE(rel_error(read_gpu(normed.gpu), read_cpu(normed.cpu)), kBf16Tol)
                << "the last norm " << at;
        }
    }
}

}  // namespace
}  // namespace helexa::cuda::testing
