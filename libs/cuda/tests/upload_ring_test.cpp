// The upload ring lets the caller reuse its bytes the moment a copy returns, and never hands out
// a region whose earlier copy has not run yet: the stream is held back (a host function that
// sleeps) while more copies than the ring holds are enqueued, the host buffer is rewritten after
// every copy, and each destination must still get the bytes it was given.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "cuda_test_support.h"
#include "upload_ring.h"

namespace helexa::cuda::testing {
namespace {

void CUDART_CB sleep_50ms(void*) { std::this_thread::sleep_for(std::chrono::milliseconds(50)); }

TEST(UploadRing, CopiesWrapTheRingWhileTheStreamIsHeldAndEachKeepsItsBytes) {
    if (cudaSetDevice(0) != cudaSuccess) {
        GTEST_SKIP() << "no CUDA device";
    }
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
    // Sizes that do not divide the ring, so regions straddle where it wraps: three laps.
    const std::vector<size_t> sizes = {1000, 70'000, 300'000, 1'500'000, 4, 777'777};
    size_t total = 0;
    std::vector<size_t> offsets;
    while (total < 3 * UploadRing::kRingBytes) {
        offsets.push_back(total);
        total += sizes[offsets.size() % sizes.size()];
    }
    DeviceBuffer dst(total);
    std::vector<uint8_t> host(UploadRing::kMaxCopyBytes);
    {
        UploadRing ring;
        ASSERT_EQ(cudaLaunchHostFunc(stream, sleep_50ms, nullptr), cudaSuccess);
        for (size_t i = 0; i < offsets.size(); ++i) {
            const size_t n = sizes[(i + 1) % sizes.size()];
            for (size_t b = 0; b < n; ++b) {
                host[b] = static_cast<uint8_t>(i * 131 + b * 7);
            }
            ASSERT_EQ(ring.copy(static_cast<uint8_t*>(dst.p) + offsets[i], host.data(), n, stream),
                      cudaSuccess);
            std::fill(host.begin(), host.end(), uint8_t{0xEE});  // reused at once
        }
        ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    }
    std::vector<uint8_t> got(total);
    ASSERT_EQ(cudaMemcpy(got.data(), dst.p, total, cudaMemcpyDeviceToHost), cudaSuccess);
    size_t wrong = 0;
    for (size_t i = 0; i < offsets.size(); ++i) {
        const size_t n = sizes[(i + 1) % sizes.size()];
        for (size_t b = 0; b < n; ++b) {
            wrong += got[offsets[i] + b] != static_cast<uint8_t>(i * 131 + b * 7) ? 1 : 0;
        }
    }
    EXPECT_EQ(wrong, 0u) << "bytes that did not arrive as given, of " << total;
    cudaStreamDestroy(stream);
}

TEST(UploadRing, LargeCopiesAndCopiesDuringCaptureGoStraightFromTheCaller) {
    if (cudaSetDevice(0) != cudaSuccess) {
        GTEST_SKIP() << "no CUDA device";
    }
    cudaStream_t stream = nullptr;
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
    const size_t n = UploadRing::kMaxCopyBytes + 4096;
    std::vector<uint8_t> host(n);
    for (size_t b = 0; b < n; ++b) {
        host[b] = static_cast<uint8_t>(b * 13 + 5);
    }
    DeviceBuffer dst(n);
    UploadRing ring;
    ASSERT_EQ(ring.copy(dst.p, host.data(), n, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    std::vector<uint8_t> got(n);
    ASSERT_EQ(cudaMemcpy(got.data(), dst.p, n, cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(got, host);

    // While capturing, the copy becomes a node that reads the caller's memory at each replay
    // (pinned here, as a captured host copy must be): never a ring region that is reused.
    uint8_t* pinned = nullptr;
    ASSERT_EQ(cudaMallocHost(reinterpret_cast<void**>(&pinned), 256), cudaSuccess);
    for (int b = 0; b < 256; ++b) {
        pinned[b] = static_cast<uint8_t>(b);
    }
    cudaGraph_t graph = nullptr;
    ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    const cudaError_t captured = ring.copy(dst.p, pinned, 256, stream);
    ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
    ASSERT_EQ(captured, cudaSuccess);
    cudaGraphExec_t exec = nullptr;
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    for (int b = 0; b < 256; ++b) {
        pinned[b] = static_cast<uint8_t>(255 - b);  // what a replay must copy
    }
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(got.data(), dst.p, 256, cudaMemcpyDeviceToHost), cudaSuccess);
    for (int b = 0; b < 256; ++b) {
        EXPECT_EQ(got[static_cast<size_t>(b)], static_cast<uint8_t>(255 - b)) << b;
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaFreeHost(pinned);
    cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace helexa::cuda::testing
