// A decode step's layer work streamed by one persistent launch: at 1-2 rows the attention (with
// its q/k/v epilogue), the output projection (+ residual), the MLP (norm, gate_up + SwiGLU, down
// + residual) and the next layer's norm + q/k/v projection, each link reading what the earlier
// ones wrote.
//
// Why one launch: at batch 1 each projection is a weight stream that ends in a kernel boundary,
// and every boundary left HBM idle for 3-5 us (the last CTAs' tail, the flush, the next grid's
// ramp: docs/perf/cuda-engine.md, runs 8-14), ~15 us of a Qwen3-8B layer's 121. Here each CTA's
// producer warp keeps streaming weights of the next links into a shared-memory ring while its
// consumers wait at the grid barrier between two links, so the boundary costs the barrier's
// latency only where the ring runs dry. Under programmatic dependent launch the ring also fills
// with the output projection's weights while the attention before it still runs.
//
// The attention link (optional in the backend: HELEXA_CUDA_CHAIN_ATTENTION=1) runs between two
// grid barriers on every CTA's consumer warps while the producers stream the next links'
// weights: as a kernel of its own it adds ~11 us to each Qwen3-8B layer at batch 1
// (chain_attention.cuh says how it is split up, and what it costs so far).
//
// Each projection link computes what launch_skinny_matmul computes for it (the same fusions and
// roundings); only the f32 summation order differs. The attention link computes what
// launch_paged_attention with its epilogue computes, up to the f32 summation order. Rows are
// summed whole by one warp in a fixed order, so the result does not depend on which CTA took
// which rows: every run gives the same bits.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "helexa/kernels/attention.h"
#include "helexa/kernels/elem_type.h"
#include "helexa/kernels/skinny_matmul.h"

namespace helexa::kernels {

inline constexpr int kDecodeChainMaxLinks = 5;
inline constexpr int64_t kDecodeChainMaxRows = 2;

// One projection of the chain, as launch_skinny_matmul takes it: out[T, N] (SwiGLU: [T, N/2]) =
// x[T, K] * w[N, K]^T (+ bias) with the fusion; out in the chain's element type. Or, with
// `attention` set, the decode attention launch_paged_attention would run for those args (with
// their epilogue: T sequences of one query row each); the other fields are then unused.
struct DecodeChainLink {
    const PagedAttentionArgs* attention = nullptr;
    void* out = nullptr;
    int64_t out_stride = 0;
    const void* x = nullptr;
    int64_t x_stride = 0;
    const void* w = nullptr;
    const void* bias = nullptr;
    int64_t n = 0;
    int64_t k = 0;
    SkinnyFusion fusion;
};

// Whether the current device can run the chain (compute capability >= 9.0: bulk copies and
// mbarriers). Cached per process.
bool decode_chain_supported();

// Whether launch_decode_chain takes these links at T rows: 1 <= T <= kDecodeChainMaxRows,
// 1..kDecodeChainMaxLinks links, each projection with K % 8 == 0, x_stride % 8 == 0,
// x_stride >= K, 16-byte aligned x, w and norm weight, even N for SwiGLU; at most one attention
// link, valid for launch_paged_attention with a fusable epilogue (attention.h), T sequences,
// head_dim 64 or 128, at most 4 q heads per KV head, and its workspace large enough for the
// chain's splits (paged_attention_workspace_bytes is); T rows of the widest x (or the
// attention's scratch) fitting next to a ring of at least two slots in shared memory.
bool decode_chain_fits(const DecodeChainLink* links, int n_links, int64_t T);

// The workspace of the chain launches on one stream: decode_chain_workspace_bytes() of zeroed
// device memory (grid barrier and work counters, two sets that alternate launches use; every
// launch leaves its set zero again) and which set the next launch takes.
size_t decode_chain_workspace_bytes();
struct DecodeChainWorkspace {
    void* device = nullptr;
    unsigned next_set = 0;
    // The CTAs of each launch, 0 for one per SM (the backend's choice). Fewer run the grid a
    // device with fewer SMs would, as the kernel test does: rows are handed out the same way on
    // any count, so the outputs' bits do not depend on it. (Fewer on an H200, leaving SMs to the
    // attention kernel around the chain, measured slower: docs/perf/cuda-engine.md, run 20.)
    int ctas = 0;
};

// Runs the links in order in one launch of one CTA per SM, or of workspace.ctas CTAs when that
// is fewer (every CTA must be resident at once: the CTAs wait for each other between links). A
// link may read what earlier links wrote; no link's out may alias its own x. type: bf16 or f16.
// Every launch on the stream goes through the same workspace (it flips next_set).
cudaError_t launch_decode_chain(const DecodeChainLink* links, int n_links, int64_t T,
                                ElemType type, DecodeChainWorkspace& workspace,
                                cudaStream_t stream);

// Debugging: every later launch writes, per CTA, decode_chain_trace_words() words to
// device_buffer (SM, start, first copy, exit, the attention's first item's end of epilogue, of
// passes and of merge, 0, then per link: x ready (attention: start), last unit done (attention:
// done), barrier passed, units (attention: 0); globaltimer nanoseconds); null stops it.
// linear_bench --trace prints them.
void decode_chain_set_trace(unsigned long long* device_buffer);
int decode_chain_trace_words();

}  // namespace helexa::kernels
