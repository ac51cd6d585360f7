// The small-batch linear on tensor cores: out[T, N] = x[T, K] * w[N, K]^T (+ bias[N]) for a few
// dozen rows T (continuous batching's decode steps: 8-64 concurrent streams), where the step is
// still bound by reading w once but a dot product per output on CUDA cores (skinny_matmul.h) no
// longer keeps up, and cuBLASLt's GEMMs lose a third of the bandwidth on the smaller projections
// (ramp, tail and split-K reduction of a kernel that cannot overlap its neighbours).
//
// The fusions are skinny_matmul.h's (SkinnyFusion) except the input norm, which at these row
// counts runs as its own kernel: norm_weight must be null.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "helexa/kernels/elem_type.h"
#include "helexa/kernels/skinny_matmul.h"

namespace helexa::kernels {

inline constexpr int64_t kSkinnyMmaMaxRows = 64;

// The shapes the kernel takes: 1..kSkinnyMmaMaxRows rows, K a multiple of 32.
inline bool skinny_mma_fits(int64_t T, int64_t K) {
    return T >= 1 && T <= kSkinnyMmaMaxRows && K > 0 && K % 32 == 0;
}

// x: [T, K] (row stride x_stride), w: [N, K] contiguous, bias: [N] or null, all of `type` (bf16
// or f16); out: [T, N] (or [T, N/2] for kSwiGlu; row stride out_stride) of out_type (type or f32
// for kStore). Requires skinny_mma_fits(T, K), x_stride % 8 == 0, 16-byte aligned x and w, even
// N for kSwiGlu, fusion.norm_weight == null. out must not alias x. Each output is rounded once,
// as launch_skinny_matmul rounds it; the f32 sums differ from it only in summation order.
cudaError_t launch_skinny_mma_matmul(void* out, int64_t out_stride, ElemType out_type,
                                     const void* x, int64_t x_stride, const void* w,
                                     const void* bias, int64_t T, int64_t N, int64_t K,
                                     ElemType type, const SkinnyFusion& fusion,
                                     cudaStream_t stream);

}  // namespace helexa::kernels
