// cp.async (16-byte global -> shared copies that hold no registers while in flight) and the
// dynamic shared-memory opt-in: shared by the attention kernels and the small-batch matmul.
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

namespace helexa::kernels {

// Raises a kernel's dynamic shared-memory limit once per device (the attribute is per function
// and per device; it is not a stream operation, so it is also safe while a graph is captured).
// `done` is the kernel instantiation's own bit set of devices already raised.
template <typename Kernel>
cudaError_t ensure_dynamic_smem(Kernel kernel, size_t bytes, std::atomic<uint64_t>& done) {
    if (bytes <= 48 * 1024) {
        return cudaSuccess;
    }
    int device = 0;
    cudaError_t err = cudaGetDevice(&device);
    if (err != cudaSuccess) {
        return err;
    }
    const uint64_t bit = device < 64 ? uint64_t{1} << device : 0;
    if (bit != 0 && (done.load(std::memory_order_acquire) & bit) != 0) {
        return cudaSuccess;
    }
    err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(bytes));
    if (err == cudaSuccess) {
        done.fetch_or(bit, std::memory_order_acq_rel);
    }
    return err;
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte async copy global -> shared; when !valid the destination is zero-filled and nothing
// is read (src must still be a mapped address; callers pass the pool base).
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
    const int src_bytes = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(smem)),
                 "l"(gmem), "r"(src_bytes)
                 : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

}  // namespace helexa::kernels
