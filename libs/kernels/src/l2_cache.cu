// See l2_cache.h.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "helexa/kernels/l2_cache.h"

namespace helexa::kernels {
namespace {

// One bulk prefetch covers this much: large enough that a 32 MB matrix is ~1k instructions,
// small enough to spread over several SMs' copy engines.
constexpr uint32_t kChunkBytes = 32 * 1024;
// CTAs of one warp each: the issue rate of a few SMs' TMA units is far above what the memory
// bus drains, so more would only take SM slots from the kernels running beside it.
constexpr int kMaxBlocks = 16;

__global__ void l2_prefetch_kernel(const char* base, uint64_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    const uint64_t n_chunks = (bytes + kChunkBytes - 1) / kChunkBytes;
    const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    for (uint64_t c = blockIdx.x * blockDim.x + threadIdx.x; c < n_chunks; c += stride) {
        const uint64_t offset = c * kChunkBytes;
        const uint64_t left = bytes - offset;
        const auto size = static_cast<uint32_t>(left < kChunkBytes ? left : kChunkBytes);
        asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(base + offset), "r"(size)
                     : "memory");
    }
#else
    (void)base;
    (void)bytes;
#endif
}

// 16-byte loads that allocate in L2 only (.cg); the xor of everything read is stored only if
// it equals a value it practically never does, which keeps the loads alive without writing.
__global__ void l2_evict_kernel(const uint4* data, uint64_t n, unsigned* sink) {
    unsigned acc = 0;
    const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
    for (uint64_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        uint4 v;
        asm volatile("ld.global.cg.v4.u32 {%0, %1, %2, %3}, [%4];"
                     : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                     : "l"(data + i));
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (acc == 0x9e3779b9u) {
        *sink = acc;
    }
}

}  // namespace

cudaError_t launch_l2_evict(const void* scratch, size_t bytes, cudaStream_t stream) {
    const uint64_t n = bytes / sizeof(uint4);
    if (n == 0) {
        return cudaSuccess;
    }
    // The sink is the scratch's own first word: written only in the practically impossible
    // case above, and the scratch's contents are never read by anyone else.
    auto* sink = const_cast<unsigned*>(static_cast<const unsigned*>(scratch));
    const auto blocks = static_cast<unsigned>(std::min<uint64_t>(4096, (n + 255) / 256));
    l2_evict_kernel<<<blocks, 256, 0, stream>>>(static_cast<const uint4*>(scratch), n, sink);
    return cudaGetLastError();
}

cudaError_t launch_l2_prefetch(const void* data, size_t bytes, cudaStream_t stream) {
    // cp.async.bulk wants a 16-byte aligned address and a size that is a multiple of 16.
    const auto begin = (reinterpret_cast<uintptr_t>(data) + 15) & ~uintptr_t{15};
    const auto end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~uintptr_t{15};
    if (end <= begin) {
        return cudaSuccess;
    }
    const uint64_t span = end - begin;
    const uint64_t n_chunks = (span + kChunkBytes - 1) / kChunkBytes;
    const int blocks = static_cast<int>(std::min<uint64_t>(kMaxBlocks, (n_chunks + 31) / 32));
    l2_prefetch_kernel<<<blocks, 32, 0, stream>>>(reinterpret_cast<const char*>(begin), span);
    return cudaGetLastError();
}

}  // namespace helexa::kernels
