// RMSNorm launchers (bf16/f16/f32 activations, weight of the same ElemType, f32 accumulation).
// Numerics follow transformers' Qwen3RMSNorm / LlamaRMSNorm: x is upcast to f32, scaled by
// rsqrt(mean(x^2) + eps), rounded back to the activation type, then multiplied by the weight.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "helexa/kernels/elem_type.h"

namespace helexa::kernels {

// out[r, :] = rms_norm(x[r, :]) * weight[:]; x, out: [rows, cols] (strided); weight: [cols].
// out may alias x.
cudaError_t launch_rms_norm(void* out, int64_t out_stride, const void* x, int64_t x_stride,
                            const void* weight, int64_t rows, int64_t cols, float eps,
                            ElemType type, cudaStream_t stream);

// The pre-norm decoder's fused residual step:
//   residual[r, :] += x[r, :];  out[r, :] = rms_norm(residual[r, :]) * weight[:]
// residual, x, out: [rows, cols] (strided); out must not alias residual.
cudaError_t launch_add_rms_norm(void* out, int64_t out_stride, void* residual,
                                int64_t residual_stride, const void* x, int64_t x_stride,
                                const void* weight, int64_t rows, int64_t cols, float eps,
                                ElemType type, cudaStream_t stream);

// The residual step after a matmul split over K into f32 partials (CublasLtMatmul's
// run_k_split: o_proj and down at decode sizes, whose consumer sums the parts instead of a reduce
// kernel of cuBLASLt's):
//   residual[r, :] = to_act(residual[r, :] + sum of partials[s][r, :], s = 0, 1, ... in order)
//   out[r, :] = rms_norm(residual[r, :]) * weight[:]
// partials: n_parts f32 slabs [rows, cols], slab s at partials + s * part_stride, row stride
// part_row_stride. out must not alias residual. out equals launch_rms_norm of the updated
// residual bit for bit (the same reduction order, rms_norm_order.cuh) when both take the 16-byte
// path (rows, weight and slabs 16-byte aligned).
cudaError_t launch_add_partials_rms_norm(void* out, int64_t out_stride, void* residual,
                                         int64_t residual_stride, const float* partials,
                                         int64_t n_parts, int64_t part_stride,
                                         int64_t part_row_stride, const void* weight,
                                         int64_t rows, int64_t cols, float eps, ElemType type,
                                         cudaStream_t stream);

// Per-head RMSNorm in place (Qwen3 q_norm / k_norm): x viewed as [rows, n_heads, head_dim]
// (row stride x_stride); weight: [head_dim].
cudaError_t launch_rms_norm_heads(void* x, int64_t x_stride, const void* weight, int64_t rows,
                                  int64_t n_heads, int64_t head_dim, float eps, ElemType type,
                                  cudaStream_t stream);

}  // namespace helexa::kernels
