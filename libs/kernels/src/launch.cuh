// How every kernel of this library is launched: with programmatic dependent launch (PDL) on
// Hopper and later, so the next kernel of a decode step is scheduled while this one drains.
//
// Why: a batch-1 decode step is hundreds of small kernels; between two of them the GPU otherwise
// idles for the previous grid's tail, the flush, and the next grid's ramp (~2-4 us each, the
// same order as a small projection's whole runtime). With PDL the next grid's CTAs become
// resident as soon as every CTA of this grid has started; they issue whatever does not depend on
// this grid's output (a matmul's first weight loads) and then block in grid_dependency_wait()
// until this grid has completed and its writes are visible.
//
// The contract every kernel launched through launch_kernel() keeps:
// - every thread calls grid_dependency_wait() before it reads or writes any memory that another
//   kernel writes (activations, KV cache, outputs); only read-only weights may be touched
//   before it. Every thread calling it (before any early return) also keeps the ordering
//   transitive: a grid cannot complete before its predecessor has.
// - allow_dependent_launch() is called right after the wait, so at most two grids of a stream are
//   resident at once and a multi-wave grid's own CTAs are never crowded out by its successor.
// HELEXA_CUDA_PDL=0 launches plainly (for A/B measurements); devices before compute capability
// 9.0 always launch plainly and the device functions compile to nothing there.
#pragma once

#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <utility>

namespace helexa::kernels {

__device__ __forceinline__ void grid_dependency_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void allow_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" :::);
#endif
}

// Whether launches on the current device use PDL (compute capability >= 9.0, not disabled by
// HELEXA_CUDA_PDL=0). Cached per process: one process drives devices of one generation.
inline bool pdl_enabled() {
    static const bool enabled = [] {
        if (const char* env = std::getenv("HELEXA_CUDA_PDL"); env != nullptr &&
                                                              std::strcmp(env, "0") == 0) {
            return false;
        }
        int device = 0;
        int major = 0;
        if (cudaGetDevice(&device) != cudaSuccess ||
            cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) !=
                cudaSuccess) {
            return false;
        }
        return major >= 9;
    }();
    return enabled;
}

// kernel<<<grid, block, smem, stream>>>(args...) with the PDL attribute when enabled; returns
// the launch's error. Captured into CUDA graphs as a programmatic edge.
template <typename... Params, typename... Args>
cudaError_t launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                          cudaStream_t stream, Args&&... args) {
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t config{};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = smem;
    config.stream = stream;
    config.attrs = attr;
    config.numAttrs = pdl_enabled() ? 1 : 0;
    return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace helexa::kernels
