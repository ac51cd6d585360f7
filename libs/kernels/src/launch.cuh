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
//   kernel writes (activations, KV cache, outputs); before it a kernel may read only what no
//   kernel of the running step writes: weights, the step's metadata (copied in before the step's
//   first kernel, which every later kernel transitively follows) and KV entries of earlier steps
//   (the decode attention's first tile). Every thread calling it (before any early return) also
//   keeps the ordering transitive: a grid cannot complete before its predecessor has. (One
//   exception: a CTA with nothing to read or write may leave at once where other CTAs of the
//   grid always wait, which keeps the ordering: the decode attention's empty splits.)
// - allow_dependent_launch() is called right after the wait, so at most two grids of a stream are
//   resident at once and a multi-wave grid's own CTAs are never crowded out by its successor.
// HELEXA_CUDA_PDL=0 launches plainly (for A/B measurements); devices before compute capability
// 9.0 always launch plainly and the device functions compile to nothing there.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
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

// The library's A/B switches (HELEXA_* environment variables, for measurements): each caller
// reads its switch once into a static, so one process never mixes two settings.
// True unless the variable is set to "0".
inline bool env_on_unless_zero(const char* name) {
    const char* env = std::getenv(name);
    return env == nullptr || std::strcmp(env, "0") != 0;
}

// The variable as a positive integer; `fallback` when it is unset or not a positive number.
inline long env_positive(const char* name, long fallback) {
    const char* env = std::getenv(name);
    const long v = env != nullptr ? std::strtol(env, nullptr, 10) : 0;
    return v > 0 ? v : fallback;
}

// Whether launches on the current device use PDL (compute capability >= 9.0, not disabled by
// HELEXA_CUDA_PDL=0). Cached per process: one process drives devices of one generation.
inline bool pdl_enabled() {
    static const bool enabled = [] {
        if (!env_on_unless_zero("HELEXA_CUDA_PDL")) {
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

// Whether the current device runs thread-block clusters (compute capability >= 9.0). Cached per
// process, as pdl_enabled().
inline bool clusters_supported() {
    static const bool supported = [] {
        int device = 0;
        int major = 0;
        return cudaGetDevice(&device) == cudaSuccess &&
               cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) ==
                   cudaSuccess &&
               major >= 9;
    }();
    return supported;
}

// Every kernel launched here asks for the same L1 / shared-memory split: the most shared memory.
// Why: an SM changes its split only when it is idle, so two consecutive kernels that prefer
// different splits cannot share SMs, and the next kernel's CTAs cannot move in while the previous
// one drains (the point of PDL). The decode attention needs 2 x 109 KB per SM, the fused-norm
// matmuls a little, the rest none (their weight loads bypass L1). HELEXA_CUDA_CARVEOUT=0 leaves
// each kernel to the driver's default (A/B measurements). Set once per (device, kernel); a
// function attribute, not a stream operation, so safe while a graph is captured.
inline bool uniform_carveout_enabled() {
    static const bool enabled = env_on_unless_zero("HELEXA_CUDA_CARVEOUT");
    return enabled;
}

template <typename Kernel>
void prefer_max_shared_memory(Kernel kernel) {
    if (!uniform_carveout_enabled()) {
        return;
    }
    int device = 0;
    if (cudaGetDevice(&device) != cudaSuccess) {
        return;
    }
    static std::mutex mutex;
    static std::set<std::pair<int, const void*>> done;
    std::lock_guard lock(mutex);
    if (done.emplace(device, reinterpret_cast<const void*>(kernel)).second) {
        (void)cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                   cudaSharedmemCarveoutMaxShared);
    }
}

// kernel<<<grid, block, smem, stream>>>(args...) with the PDL attribute when enabled, in thread
// block clusters of cluster_x CTAs along x when cluster_x > 1 (grid.x a multiple of it; sm_90+);
// returns the launch's error. Captured into CUDA graphs as a programmatic edge.
template <typename... Params, typename... Args>
cudaError_t launch_kernel_in_clusters(void (*kernel)(Params...), dim3 grid, dim3 block,
                                      size_t smem, cudaStream_t stream, unsigned cluster_x,
                                      Args&&... args) {
    prefer_max_shared_memory(kernel);
    cudaLaunchAttribute attr[2];
    unsigned n = 0;
    if (pdl_enabled()) {
        attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr[n].val.programmaticStreamSerializationAllowed = 1;
        ++n;
    }
    if (cluster_x > 1) {
        attr[n].id = cudaLaunchAttributeClusterDimension;
        attr[n].val.clusterDim.x = cluster_x;
        attr[n].val.clusterDim.y = 1;
        attr[n].val.clusterDim.z = 1;
        ++n;
    }
    cudaLaunchConfig_t config{};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = smem;
    config.stream = stream;
    config.attrs = attr;
    config.numAttrs = n;
    return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

// kernel<<<grid, block, smem, stream>>>(args...) with the PDL attribute when enabled.
template <typename... Params, typename... Args>
cudaError_t launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                          cudaStream_t stream, Args&&... args) {
    return launch_kernel_in_clusters(kernel, grid, block, smem, stream, 1u,
                                     std::forward<Args>(args)...);
}

// Streaming 16-byte load of weights: read once per call, so kept out of L1 (the small-batch
// matmuls' weight stream).
__device__ __forceinline__ uint4 load_stream(const uint4* p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

// A launcher's check that a pointer allows 16-byte vector accesses.
inline bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

// The device's SM count, asked once (a launch-time query on every call would sit on the decode
// path; one process drives cards of one kind). Only grid-size heuristics depend on it.
inline int device_sm_count() {
    static const int sms = [] {
        int device = 0;
        int n = 0;
        if (cudaGetDevice(&device) != cudaSuccess ||
            cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
            n <= 0) {
            return 132;  // an H100/H200's count
        }
        return n;
    }();
    return sms;
}

}  // namespace helexa::kernels
