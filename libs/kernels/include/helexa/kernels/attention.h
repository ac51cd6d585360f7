// Causal grouped-query attention over the paged KV cache, for prefill chunks and decode tokens in
// one flattened batch (the engine's AttentionBatch).
//
// Sequence s owns query rows [query_start[s], query_start[s + 1]); its first query row sits at
// absolute position context_len[s] - n_query(s), and query row i attends to keys at positions
// [0, context_len[s] - n_query(s) + i] read through block_tables[s, :] (so a chunk sees the cached
// prefix and itself, causally). Query head h reads KV head h / (n_heads / n_kv_heads).
//
// Two kernels behind one launcher:
// - decode (max_query_len small): one CTA per (sequence, kv head, split); the context is cut into
//   splits so long contexts fill the GPU (split-K / flash-decoding). Up to 8 splits of a
//   (sequence, KV head) run as one thread-block cluster and merge their partial results (max,
//   sum, weighted V in f32) through its distributed shared memory; more land in `workspace` and
//   the last split to finish merges them (an arrival counter in the workspace). The grid
//   depends only on n_seqs and max_context_len, and each CTA reads its true length from
//   context_len, so a launch captured in a CUDA graph stays valid for any context <= the
//   max_context_len it was captured with.
// - prefill: FlashAttention-style tiles (tensor cores, online softmax, no score matrix in
//   memory) over (query tile, sequence, head).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "helexa/kernels/elem_type.h"
#include "helexa/kernels/paged_kv.h"

namespace helexa::kernels {

// qkv_epilogue.h's work done by the decode attention itself: one launch per layer instead of
// two, and no round trip of q and the new key through global memory between them. With it set,
// PagedAttentionArgs::q points at the fused projection's rows [n_tokens, (n_heads + 2 *
// n_kv_heads) * head_dim] (q | k | v heads, q_stride their row stride), and the launch equals
// launch_qkv_epilogue on those rows followed by launch_paged_attention on their q columns, bit
// for bit, except that the qkv rows are left as they were (q and k are normalised and rotated in
// shared memory, not in place). paged_attention_fuses_epilogue() says when it applies.
struct FusedQkvEpilogue {
    const void* q_norm_weight = nullptr;  // [head_dim]: both or neither (Qwen3's q/k norm)
    const void* k_norm_weight = nullptr;
    float eps = 0.0f;
    const int32_t* positions = nullptr;  // int32 [n_tokens]
    const float* inv_freq = nullptr;     // f32 [rotary_dim / 2]
    int64_t rotary_dim = 0;              // even, <= head_dim; 0: no rotary
    float attention_scaling = 1.0f;
    void* k_pool = nullptr;  // PagedAttentionArgs' k_pool / v_pool, writable: the new key and
    void* v_pool = nullptr;  // value are written at slots[token]
    const int32_t* slots = nullptr;  // int32 [n_tokens]
    int32_t* bad_slot = nullptr;     // as launch_qkv_epilogue's; may be null
};

struct PagedAttentionArgs {
    void* out = nullptr;        // [n_tokens, n_heads * head_dim], row stride out_stride
    int64_t out_stride = 0;
    const void* q = nullptr;    // [n_tokens, n_heads * head_dim], row stride q_stride
    int64_t q_stride = 0;
    const void* k_pool = nullptr;  // this layer's K pool (paged_kv.h layout)
    const void* v_pool = nullptr;  // this layer's V pool
    PagedKvLayout layout;
    const int32_t* query_start = nullptr;   // [n_seqs + 1]
    const int32_t* context_len = nullptr;   // [n_seqs]
    const int32_t* block_tables = nullptr;  // [n_seqs, max_blocks_per_seq]
    int64_t n_seqs = 0;
    int64_t max_blocks_per_seq = 0;
    int64_t max_query_len = 0;    // host-known bound on query rows of any sequence
    int64_t max_context_len = 0;  // host-known bound on context_len (sizes the split grid)
    // How unevenly the contexts are spread: max context x n_seqs / the sum of the contexts,
    // rounded down to a power of two (1: even; engine::AttentionBatch::context_spread). A decode
    // launch that would give every (sequence, KV head) one CTA splits the contexts instead into
    // about one wave of equal shares, computed on the device from the step's own contexts, so
    // one long sequence among short ones is not walked by a single CTA per head while the rest
    // of the card idles. A hint, not a bound: any value gives the right result, and a graph
    // replays correctly for any contexts.
    int64_t context_spread = 1;
    int64_t n_heads = 0;
    float scale = 1.0f;
    ElemType type = ElemType::kBF16;  // q, out and the pools; bf16 or f16
    // Scratch of paged_attention_workspace_bytes() bytes, zero-filled once when allocated: it
    // holds arrival counters that every launch leaves at zero again (so a grown workspace must
    // be zeroed again; one workspace must not be shared by launches that may run concurrently).
    void* workspace = nullptr;
    size_t workspace_bytes = 0;
    // Optional: the q/k/v epilogue fused in (see FusedQkvEpilogue).
    const FusedQkvEpilogue* epilogue = nullptr;
};

// Whether launch_paged_attention takes `args` with args.epilogue set: decode steps (one query
// row per sequence: max_query_len == 1) small enough that the decode grid is at most one CTA per
// SM (where fusing was measured to pay; see docs/perf/cuda-engine.md), n_heads / n_kv_heads <=
// 16, the qkv rows and the norm weights 16-byte aligned (the epilogue kernel's vector path,
// whose arithmetic it shares), and the epilogue's pools equal to the args' ones. Otherwise run
// launch_qkv_epilogue, then the attention on the q columns.
bool paged_attention_fuses_epilogue(const PagedAttentionArgs& args);

// Workspace the launcher needs for these bounds (0 when the prefill kernel will be used).
size_t paged_attention_workspace_bytes(int64_t n_seqs, int64_t max_query_len,
                                       int64_t max_context_len, int64_t n_heads,
                                       int64_t head_dim);

cudaError_t launch_paged_attention(const PagedAttentionArgs& args, cudaStream_t stream);

}  // namespace helexa::kernels
