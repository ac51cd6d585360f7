// Ordering between the CTAs of one grid through global memory (gpu scope): the flags, counters
// and grid barriers of the persistent kernels (skinny_mma_matmul.cu's shared tiles and chained
// stages, decode_chain.cu's barriers between projections).
//
// The pattern: a writer stores its results, then publishes a flag or counter with release
// semantics; a reader polls relaxed and, once it has seen what it needs, fences (acquire) or
// loads with acquire semantics before it reads the results. Results written by other CTAs are
// read through L2 (ld.global.cg / __ldcg): L1 is not coherent across SMs.
#pragma once

#include <cuda_runtime.h>

namespace helexa::kernels {

[[maybe_unused]] __device__ __forceinline__ unsigned load_relaxed(const unsigned* p) {
    unsigned v = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
#else
    v = *reinterpret_cast<const volatile unsigned*>(p);
#endif
    return v;
}

[[maybe_unused]] __device__ __forceinline__ unsigned load_acquire(const unsigned* p) {
    unsigned v = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
#else
    v = *reinterpret_cast<const volatile unsigned*>(p);
    __threadfence();
#endif
    return v;
}

// After relaxed loads that saw release stores: makes them acquires (the fence pattern).
[[maybe_unused]] __device__ __forceinline__ void fence_acq_rel_gpu() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("fence.acq_rel.gpu;" ::: "memory");
#endif
}

[[maybe_unused]] __device__ __forceinline__ void store_release(unsigned* p, unsigned v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
#else
    *reinterpret_cast<volatile unsigned*>(p) = v;
#endif
}

// *p += v with release semantics (what this thread, and what its CTA ordered before it with a
// barrier, wrote is visible to whoever acquires the sum).
[[maybe_unused]] __device__ __forceinline__ void add_release(unsigned* p, unsigned v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("red.release.gpu.global.add.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
#else
    __threadfence();
    atomicAdd(p, v);
#endif
}

}  // namespace helexa::kernels
