// Fused q/k/v epilogue of the attention block: everything between the fused q/k/v projection and
// attention, in one launch.
//
// When to use: each attention layer of the CUDA decoder (decode and prefill, in or out of CUDA
// graph capture) instead of the sequence
//   launch_rms_norm_heads(q), launch_rms_norm_heads(k)   (Qwen3 q_norm / k_norm; optional)
//   launch_rope(q), launch_rope(k)
//   launch_kv_write(k, v)
// which costs five launches per layer. The results are bit-identical to that sequence: the same
// f32 arithmetic with the same rounding points (per-head RMSNorm rounded to the activation type,
// then the weight product rounded once; cos/sin rounded to the activation type; one rounding of
// each rotated value) and the same order of the sum of squares.
//
// Thread-safety: the launcher only enqueues work on `stream` (no allocation, no synchronisation,
// graph-capture safe); concurrent calls are safe when their buffers do not overlap.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "helexa/kernels/elem_type.h"
#include "helexa/kernels/paged_kv.h"

namespace helexa::kernels {

// qkv: [n_tokens, (n_heads + 2 * n_kv_heads) * head_dim] (row stride qkv_stride, in elements):
// per token the q heads, then the k heads, then the v heads, each head_dim contiguous elements.
//   q heads: RMSNorm'ed (when q_norm_weight is set) and rotated IN PLACE (attention reads q here).
//   k heads: RMSNorm'ed (k_norm_weight) and rotated, written back in place (for activation hooks)
//            and into k_pool at slots[t].
//   v heads: copied unchanged into v_pool at slots[t].
// q_norm_weight, k_norm_weight: [head_dim], both set or both null (null: no q/k norm, as for
// Llama / Qwen2). positions: int32 [n_tokens]; inv_freq: f32 [rotary_dim / 2]; rotary_dim even,
// <= head_dim (dims >= rotary_dim pass through; 0 = no rotary, positions/inv_freq may be null).
// Rotary is neox style, as launch_rope documents (cos/sin of float(pos) * inv_freq[i], times
// attention_scaling). k_pool, v_pool: one layer's pools, layout as in paged_kv.h, whose
// n_kv_heads and head_dim must equal the arguments; slots: int32 [n_tokens]. A slot outside the
// pool skips that token's pool writes (q and k are still processed in place) and sets *bad_slot
// (device int32, may be null) to 1.
// Supports f32, f16 and bf16 (one ElemType for activations, weights and pools), head_dim 16..256
// in multiples of 16. Any strides and alignments are accepted; 16-byte accesses are used when the
// qkv rows (and, separately, the pools) are 16-byte aligned. Returns cudaErrorInvalidValue for
// bad arguments; n_tokens == 0 is a no-op.
cudaError_t launch_qkv_epilogue(void* qkv, int64_t qkv_stride, int64_t n_tokens, int64_t n_heads,
                                int64_t n_kv_heads, int64_t head_dim, const void* q_norm_weight,
                                const void* k_norm_weight, float eps, const int32_t* positions,
                                const float* inv_freq, int64_t rotary_dim,
                                float attention_scaling, void* k_pool, void* v_pool,
                                const PagedKvLayout& layout, const int32_t* slots,
                                int32_t* bad_slot, ElemType type, cudaStream_t stream);

}  // namespace helexa::kernels
