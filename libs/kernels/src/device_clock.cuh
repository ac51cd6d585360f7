// Debugging clocks for per-CTA traces (skinny_mma_set_trace, decode_chain_set_trace): the
// global nanosecond timer, comparable across SMs, and the SM a CTA runs on.
#pragma once

#include <cuda_runtime.h>

namespace helexa::kernels {

[[maybe_unused]] __device__ __forceinline__ unsigned long long global_ns() {
    unsigned long long t = 0;
    asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
    return t;
}

[[maybe_unused]] __device__ __forceinline__ unsigned sm_id() {
    unsigned id = 0;
    asm volatile("mov.u32 %0, %smid;" : "=r"(id));
    return id;
}

}  // namespace helexa::kernels
