// The decode-time linear: out[T, N] = x[T, K] * w[N, K]^T (+ bias[N]) for a handful of rows T,
// where the step is bound by reading w once. Each warp streams whole rows of w with 16-byte
// loads and dots them against all T rows of x (kept in shared memory), so w is read exactly once
// per call whatever T is. cuBLASLt takes over above kSkinnyMaxRows (or when this path is slower
// for a shape, as measured by the GPU benchmark).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "helexa/kernels/elem_type.h"

namespace helexa::kernels {

inline constexpr int64_t kSkinnyMaxRows = 8;

// x: [T, K] (row stride x_stride), w: [N, K] contiguous, bias: [N] or null, all of `type`
// (bf16 or f16); out: [T, N] (row stride out_stride) of out_type (type or f32).
// Requires 1 <= T <= kSkinnyMaxRows, K % 8 == 0, x_stride % 8 == 0, 16-byte aligned x and w.
cudaError_t launch_skinny_matmul(void* out, int64_t out_stride, ElemType out_type, const void* x,
                                 int64_t x_stride, const void* w, const void* bias, int64_t T,
                                 int64_t N, int64_t K, ElemType type, cudaStream_t stream);

}  // namespace helexa::kernels
