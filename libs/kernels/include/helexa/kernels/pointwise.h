// Small memory-bound launchers of the dense decoder: embedding lookup, row gather, residual add,
// SwiGLU, dtype conversion and rotary embedding.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "helexa/kernels/elem_type.h"

namespace helexa::kernels {

// out[t, :] = table[ids[t], :]. table: [vocab, cols] (row stride table_stride); ids: int32 [T];
// out: [T, cols]. Ids outside [0, vocab) write zeros and set *bad_id (a device int32, may be
// null) to 1, so the caller can fail the request without a per-step host check.
cudaError_t launch_embedding(void* out, int64_t out_stride, const void* table,
                             int64_t table_stride, const int32_t* ids, int64_t n_tokens,
                             int64_t vocab, int64_t cols, int32_t* bad_id, ElemType type,
                             cudaStream_t stream);

// out[r, :] = x[rows[r], :]; rows: int32 [n_rows].
cudaError_t launch_gather_rows(void* out, int64_t out_stride, const void* x, int64_t x_stride,
                               const int32_t* rows, int64_t n_rows, int64_t cols, ElemType type,
                               cudaStream_t stream);

// ids[i] = prev[map[i]] where map[i] >= 0, else left as it is (int32, n entries; the caller
// keeps every index below prev's length): a step's input ids fed from the previous step's
// argmax on the device (engine::Backend::feed_ids).
cudaError_t launch_feed_ids(int32_t* ids, const int32_t* prev, const int32_t* map, int64_t n,
                            cudaStream_t stream);

// out = x + y over [rows, cols] (each strided; out may alias x or y).
cudaError_t launch_add(void* out, int64_t out_stride, const void* x, int64_t x_stride,
                       const void* y, int64_t y_stride, int64_t rows, int64_t cols,
                       ElemType type, cudaStream_t stream);

// out[r, i] = silu(gate_up[r, i]) * gate_up[r, n + i] for i < n; gate_up: [rows, 2n];
// out: [rows, n]. silu in f32, as transformers computes act_fn(gate) * up in the model dtype
// (one rounding of silu(gate) to the activation type before the product).
cudaError_t launch_silu_mul(void* out, int64_t out_stride, const void* gate_up,
                            int64_t gate_up_stride, int64_t rows, int64_t n, ElemType type,
                            cudaStream_t stream);

// out[r, c] += bias[c] over [rows, cols] (out strided, of out_type; bias of bias_type), in f32
// and rounded once: the bias of a linear whose GEMM cannot apply it (cuBLASLt with f32 output).
cudaError_t launch_add_bias(void* out, int64_t out_stride, ElemType out_type, const void* bias,
                            ElemType bias_type, int64_t rows, int64_t cols, cudaStream_t stream);

// Element type conversion of a contiguous array of n elements (weights at load, logits).
cudaError_t launch_convert(void* dst, ElemType dst_type, const void* src, ElemType src_type,
                           int64_t n, cudaStream_t stream);

// Rotary embedding in place, neox / rotate_half style (transformers' apply_rotary_pos_emb):
// x viewed as [rows, n_heads, head_dim] (row stride x_stride); for i < rotary_dim / 2,
// (x[i], x[i + rotary_dim/2]) rotates by angle = float(pos[r]) * inv_freq[i] (an f32 product,
// then cos/sin in f32, each multiplied by attention_scaling); dims >= rotary_dim pass through.
// positions: int32 [rows]; inv_freq: f32 [rotary_dim / 2].
cudaError_t launch_rope(void* x, int64_t x_stride, const int32_t* positions,
                        const float* inv_freq, int64_t rows, int64_t n_heads, int64_t head_dim,
                        int64_t rotary_dim, float attention_scaling, ElemType type,
                        cudaStream_t stream);

}  // namespace helexa::kernels
