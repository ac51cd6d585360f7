// cuBLASLt's tuning is paid once per tuning class, not once per row count: a serving process
// meets a new token count at nearly every chunked-prefill step, and timing sixteen candidates
// four times each would stall every one of them. The reused algorithm must still compute the
// right product for the shape it is reused on.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "cublaslt_matmul.h"
#include "cuda_test_support.h"

namespace helexa::cuda::testing {
namespace {

TEST(CublasLtTuning, TunesOncePerClassAndTheReusedAlgorithmIsRight) {
    if (cudaSetDevice(0) != cudaSuccess) {
        GTEST_SKIP() << "no CUDA device";
    }
    constexpr int64_t N = 1024;
    constexpr int64_t K = 512;
    constexpr int64_t kMaxT = 400;
    constexpr size_t kWorkspace = 32u << 20;
    DeviceBuffer workspace(kWorkspace);
    auto mm = CublasLtMatmul::create(workspace.p, kWorkspace);
    ASSERT_TRUE(mm.has_value()) << mm.error().full_message();
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);

    std::mt19937 x_rng(1);
    std::mt19937 w_rng(2);
    const auto x_host = random_bf16(static_cast<size_t>(kMaxT * K), x_rng);
    const auto w_host = random_bf16(static_cast<size_t>(N * K), w_rng);
    DeviceBuffer x(x_host.size() * 2);
    DeviceBuffer w(w_host.size() * 2);
    DeviceBuffer out(static_cast<size_t>(kMaxT * N) * 4);
    ASSERT_EQ(cudaMemcpy(x.p, x_host.data(), x_host.size() * 2, cudaMemcpyHostToDevice),
              cudaSuccess);
    ASSERT_EQ(cudaMemcpy(w.p, w_host.data(), w_host.size() * 2, cudaMemcpyHostToDevice),
              cudaSuccess);

    // (rows, tunings expected after running them): 33 opens the 40-row class, 37 and 40 reuse
    // it, 41 opens the 48-row class, 300 the 512-row class, which 400 reuses; 3 is its own.
    const std::vector<std::pair<int64_t, int64_t>> steps = {
        {33, 1}, {37, 1}, {40, 1}, {41, 2}, {300, 3}, {400, 3}, {3, 4}, {37, 4}};
    for (const auto& [T, tunings] : steps) {
        ASSERT_EQ(cudaMemset(out.p, 0xFF, static_cast<size_t>(T * N) * 4), cudaSuccess);  // NaN
        auto st = (*mm)->run(out.p, N, CUDA_R_32F, x.p, K, w.p, nullptr, T, N, K, CUDA_R_16BF,
                             false, stream);
        ASSERT_TRUE(st.has_value()) << st.error().full_message();
        ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
        EXPECT_EQ((*mm)->tuned_shapes(), tunings) << "after T=" << T;
        EXPECT_EQ(CublasLtMatmul::tuning_rows(T), T <= 8 ? T : T <= 64 ? (T + 7) / 8 * 8 : 512);

        std::vector<float> got(static_cast<size_t>(T * N));
        ASSERT_EQ(cudaMemcpy(got.data(), out.p, got.size() * 4, cudaMemcpyDeviceToHost),
                  cudaSuccess);
        std::vector<float> want(got.size());
        for (int64_t t = 0; t < T; ++t) {
            for (int64_t n = 0; n < N; ++n) {
                double acc = 0;
                for (int64_t k = 0; k < K; ++k) {
                    acc += static_cast<double>(from_bf16_bits(x_host[t * K + k])) *
                           from_bf16_bits(w_host[n * K + k]);
                }
                want[t * N + n] = static_cast<float>(acc);
            }
        }
        // f32 accumulation of exact bf16 products: far inside the bf16 tolerance.
        EXPECT_LE(rel_error(got, want), 1e-4) << "T=" << T;
    }
    cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace helexa::cuda::testing
