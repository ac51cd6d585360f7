// See grid_wait_probe.h.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "helexa/kernels/grid_wait_probe.h"
#include "launch.cuh"

namespace helexa::kernels {
namespace {

__device__ __forceinline__ uint64_t global_ns() {
    uint64_t t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

__global__ void delayed_fill16_kernel(uint16_t* dst, uint16_t bits, size_t count,
                                      uint64_t delay_ns) {
    allow_dependent_launch();
    // Thread 0 of each CTA times the delay; the rest of the CTA waits on it at the barrier.
    if (threadIdx.x == 0) {
        const uint64_t start = global_ns();
        while (global_ns() - start < delay_ns) {
        }
    }
    __syncthreads();
    const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
    for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < count;
         i += stride) {
        dst[i] = bits;
    }
}

}  // namespace

cudaError_t launch_delayed_fill16(void* dst, uint16_t bits, size_t count, uint64_t delay_ns,
                                  cudaStream_t stream) {
    if (count == 0) {
        return cudaSuccess;
    }
    // Few CTAs: the tested kernel must find free SMs to start on while this one delays.
    const auto blocks = static_cast<unsigned>(std::min<size_t>(4, (count + 255) / 256));
    delayed_fill16_kernel<<<blocks, 256, 0, stream>>>(static_cast<uint16_t*>(dst), bits, count,
                                                       delay_ns);
    return cudaGetLastError();
}

}  // namespace helexa::kernels
