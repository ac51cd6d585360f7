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

// Per-head RMSNorm in place (Qwen3 q_norm / k_norm): x viewed as [rows, n_heads, head_dim]
// (row stride x_stride); weight: [head_dim].
cudaError_t launch_rms_norm_heads(void* x, int64_t x_stride, const void* weight, int64_t rows,
                                  int64_t n_heads, int64_t head_dim, float eps, ElemType type,
                                  cudaStream_t stream);

}  // namespace helexa::kernels
