// cuBLASLt's tuning is paid once per tuning class, not once per row count: a serving process
// meets a new token count at nearly every chunked-prefill step, and timing sixteen candidates
// four times each would stall every one of them. The reused algorithm must still compute the
// right product for the shape it is reused on.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <iostream>
#include <random>
#include <vector>

#include "cublaslt_matmul.h"
#include "cuda_test_support.h"
#include "helexa/kernels/grid_wait_probe.h"
#include "programmatic_edges.h"

namespace helexa::cuda::testing {
namespace {

struct DeviceBuffer {
    void* p = nullptr;
    explicit DeviceBuffer(size_t bytes) { EXPECT_EQ(cudaMalloc(&p, bytes), cudaSuccess); }
    ~DeviceBuffer() { cudaFree(p); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

std::vector<uint16_t> random_bf16(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<uint16_t> v(n);
    for (auto& e : v) {
        e = to_bf16_bits(u(rng));
    }
    return v;
}

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

    const auto x_host = random_bf16(static_cast<size_t>(kMaxT * K), 1);
    const auto w_host = random_bf16(static_cast<size_t>(N * K), 2);
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

// The programmatic edges of captured graphs into cuBLASLt's kernels (programmatic_edges.h): a
// graph gets one exactly where the plan's algorithm was probed to wait for its grid dependency,
// and the product stays right behind a kernel that lets dependents start at once but writes the
// matmul's input 200 us later (into NaNs): a kernel started early that did not wait would read
// them. Shapes of a 32-stream Qwen3-8B step (o_proj with the residual accumulated, gate_up).
TEST(CublasLtProgrammaticEdges, OnlyWaitingAlgorithmsStartEarlyAndProductsStayRight) {
    if (cudaSetDevice(0) != cudaSuccess) {
        GTEST_SKIP() << "no CUDA device";
    }
    constexpr size_t kWorkspace = 32u << 20;
    constexpr uint16_t kOne = 0x3F80;  // 1.0 in bf16
    DeviceBuffer workspace(kWorkspace);
    auto mm = CublasLtMatmul::create(workspace.p, kWorkspace);
    ASSERT_TRUE(mm.has_value()) << mm.error().full_message();
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);

    struct Shape {
        int64_t T, N, K;
        bool accumulate;
    };
    const std::vector<Shape> shapes = {
        {32, 4096, 4096, true}, {32, 6144, 4096, false}, {8, 4096, 12288, true},
        {64, 24576, 4096, false}};
    for (const auto& [T, N, K, accumulate] : shapes) {
        const auto w_host = random_bf16(static_cast<size_t>(N * K), 3);
        DeviceBuffer x(static_cast<size_t>(T * K) * 2);
        DeviceBuffer w(w_host.size() * 2);
        DeviceBuffer out(static_cast<size_t>(T * N) * 2);
        ASSERT_EQ(cudaMemcpy(w.p, w_host.data(), w_host.size() * 2, cudaMemcpyHostToDevice),
                  cudaSuccess);
        // The eager first run tunes and probes the plan.
        ASSERT_EQ(kernels::launch_delayed_fill16(x.p, kOne, static_cast<size_t>(T * K), 0, stream),
                  cudaSuccess);
        const size_t probed = (*mm)->grid_wait_probes().size();
        auto st = (*mm)->run(out.p, N, CUDA_R_16BF, x.p, K, w.p, nullptr, T, N, K, CUDA_R_16BF,
                             accumulate, stream);
        ASSERT_TRUE(st.has_value()) << st.error().full_message();
        ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
        const auto& probes = (*mm)->grid_wait_probes();
        ASSERT_EQ(probes.size(), probed + ((*mm)->programmatic_edges() ? 1 : 0));
        const bool waits =
            probes.size() > probed && probes.back() == static_cast<int>(GridWaitProbe::kWaits);
        if (probes.size() > probed) {
            std::cout << "[ probe    ] " << T << "x" << N << "x" << K
                      << (accumulate ? " accumulate" : "") << ": cuBLASLt's first kernel "
                      << to_string(static_cast<GridWaitProbe>(probes.back())) << "\n";
        }

        // The captured step: the late writer, then the matmul.
        ASSERT_EQ(cudaMemset(x.p, 0xFF, static_cast<size_t>(T * K) * 2), cudaSuccess);
        ASSERT_EQ(cudaMemset(out.p, 0, static_cast<size_t>(T * N) * 2), cudaSuccess);
        ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
        ASSERT_EQ(kernels::launch_delayed_fill16(x.p, kOne, static_cast<size_t>(T * K), 200'000,
                                                 stream),
                  cudaSuccess);
        st = (*mm)->run(out.p, N, CUDA_R_16BF, x.p, K, w.p, nullptr, T, N, K, CUDA_R_16BF,
                        accumulate, stream);
        cudaGraph_t graph = nullptr;
        ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
        ASSERT_TRUE(st.has_value()) << st.error().full_message();
        size_t n_edges = 0;
        ASSERT_EQ(cudaGraphGetEdges(graph, nullptr, nullptr, nullptr, &n_edges), cudaSuccess);
        std::vector<cudaGraphNode_t> from(n_edges);
        std::vector<cudaGraphNode_t> to(n_edges);
        std::vector<cudaGraphEdgeData> data(n_edges);
        ASSERT_EQ(cudaGraphGetEdges(graph, from.data(), to.data(), data.data(), &n_edges),
                  cudaSuccess);
        // The late writer is the graph's one root; cuBLASLt's own kernels may be joined by
        // programmatic edges among themselves (its split-K reduction is), which are not ours.
        size_t n_roots = 0;
        ASSERT_EQ(cudaGraphGetRootNodes(graph, nullptr, &n_roots), cudaSuccess);
        ASSERT_EQ(n_roots, 1u);
        cudaGraphNode_t writer = nullptr;
        ASSERT_EQ(cudaGraphGetRootNodes(graph, &writer, &n_roots), cudaSuccess);
        int programmatic = 0;
        for (size_t e = 0; e < n_edges; ++e) {
            programmatic +=
                from[e] == writer && data[e].type == cudaGraphDependencyTypeProgrammatic ? 1 : 0;
        }
        EXPECT_EQ(programmatic, waits ? 1 : 0) << T << "x" << N << "x" << K;
        cudaGraphExec_t exec = nullptr;
        ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
        cudaGraphDestroy(graph);
        ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
        ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
        cudaGraphExecDestroy(exec);

        // x is all ones: each output is its weight row's sum (plus the zeroed residual).
        std::vector<uint16_t> got_bits(static_cast<size_t>(T * N));
        ASSERT_EQ(cudaMemcpy(got_bits.data(), out.p, got_bits.size() * 2, cudaMemcpyDeviceToHost),
                  cudaSuccess);
        std::vector<float> got(got_bits.size());
        std::vector<float> want(got_bits.size());
        for (int64_t n = 0; n < N; ++n) {
            double row = 0;
            for (int64_t k = 0; k < K; ++k) {
                row += from_bf16_bits(w_host[n * K + k]);
            }
            for (int64_t t = 0; t < T; ++t) {
                want[t * N + n] = static_cast<float>(row);
                got[t * N + n] = from_bf16_bits(got_bits[t * N + n]);
            }
        }
        EXPECT_LE(rel_error(got, want), 1e-2) << T << "x" << N << "x" << K;
    }
    cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace helexa::cuda::testing
