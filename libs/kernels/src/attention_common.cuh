// Private helpers shared by the paged-attention kernels (attention.cu, attention_decode.cu,
// attention_prefill.cu): the parameter block, the host-side split choice, and thin inline-PTX
// wrappers (cp.async, ldmatrix and mma.sync live in async_copy.cuh and mma.cuh).
//
// Fragment layouts (PTX ISA, mma.m16n8k16 with .row.col), lane = 4 * g + t:
//   A (16x16, 4 regs of 2 elems): a0 (row g,   k 2t..2t+1), a1 (row g+8, k 2t..2t+1),
//                                 a2 (row g,   k 2t+8..),   a3 (row g+8, k 2t+8..)
//   B (16x8, 2 regs):             b0 (k 2t..2t+1, col g),   b1 (k 2t+8.., col g)
//   C (16x8, 4 f32):              c0,c1 (row g, col 2t..2t+1), c2,c3 (row g+8, col 2t..2t+1)
// so the C fragments of two adjacent n8 score tiles are exactly the A fragment of P for one k16
// step of P.V (the FlashAttention-2 register trick: P never goes through shared memory).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <type_traits>

#include "async_copy.cuh"
#include "helexa/kernels/attention.h"
#include "launch.cuh"
#include "mma.cuh"

namespace helexa::kernels::attn {

constexpr float kLog2e = 1.4426950408889634f;

// Decode path is used when every sequence has at most this many query rows (decode, short
// speculative/verify chunks); larger chunks go to the prefill kernel.
constexpr int64_t kDecodeMaxQuery = 8;

// Everything both kernels need, passed by value. Pointers are device pointers.
struct AttnParams {
    void* out = nullptr;  // [n_tokens, n_heads * head_dim], row stride out_stride (elements)
    int64_t out_stride = 0;
    const void* q = nullptr;  // [n_tokens, n_heads * head_dim], row stride q_stride (elements)
    int64_t q_stride = 0;
    const void* k_pool = nullptr;  // [n_blocks, n_kv_heads, block_size, head_dim]
    const void* v_pool = nullptr;  // same layout as k_pool
    int64_t n_blocks = 0;
    int32_t n_kv_heads = 0;
    int32_t block_size = 0;
    int32_t block_shift = -1;  // log2(block_size) when it is a power of two, else -1
    const int32_t* query_start = nullptr;   // [n_seqs + 1]
    const int32_t* context_len = nullptr;   // [n_seqs]
    const int32_t* block_tables = nullptr;  // [n_seqs, max_blocks_per_seq]
    int64_t max_blocks_per_seq = 0;
    int32_t n_seqs = 0;
    int32_t max_query_len = 0;    // device query counts are clamped to this
    int32_t max_context_len = 0;  // device context lengths are clamped to this
    int32_t n_heads = 0;
    int32_t group = 0;  // n_heads / n_kv_heads
    float scale_log2 = 0.0f;  // softmax scale * log2(e): scores live in the exp2 domain
    // Decode only.
    int32_t n_row_groups = 0;  // ceil(group * max_query_len / 16): 16 (head, row) pairs per CTA
    int32_t n_splits = 1;
    int32_t split_len = 0;       // keys per split, a multiple of the decode tile
    // > 0: the balanced work list (uneven contexts): the grid's y holds n_items (sequence,
    // split) items over the batch, each split about one wave slot's share of the step's keys
    // (balanced_item in attention_decode.cu); n_splits is then the most splits a sequence
    // takes and split_len the shortest split.
    int32_t n_items = 0;
    int32_t* ws_count = nullptr;  // [n_seqs, n_kv_heads, n_row_groups] split arrivals, kept 0
    float2* ws_ml = nullptr;     // [n_seqs, max_query_len, n_heads, n_splits] (max, sum), log2
    float* ws_acc = nullptr;     // [n_seqs, max_query_len, n_heads, n_splits, head_dim]
    // Gather the first tile's keys older than the step's rows before the PDL wait
    // (HELEXA_ATTN_EARLY_KV=0: after it, for A/B measurements).
    bool early_kv = true;
    // Decode: the splits meet in the shared memory of a thread-block cluster (the grid is
    // launched in clusters of n_splits CTAs, 1 < n_splits <= kMaxClusterSplits) instead of
    // through ws_* and an arrival counter.
    bool cluster_merge = false;
    // Decode with the q/k/v epilogue done in the kernel (PagedAttentionArgs::epilogue; one query
    // row per sequence, one row group): q points at the projection's qkv rows (q | k | v heads),
    // q_stride is their stride; q and the step's new key are normalised and rotated in shared
    // memory, and the new key and value are written to the pools at slots[token].
    bool fused_epilogue = false;
    const void* q_norm_weight = nullptr;  // [head_dim] or null (no q/k norm)
    const void* k_norm_weight = nullptr;
    float norm_eps = 0.0f;
    const int32_t* positions = nullptr;  // [n_tokens]
    const float* inv_freq = nullptr;     // [rotary_half]
    int32_t rotary_half = 0;             // rotary_dim / 2; 0: no rotary
    float attention_scaling = 1.0f;
    const int32_t* slots = nullptr;  // [n_tokens]
    int32_t* bad_slot = nullptr;     // set to 1 when a slot lies outside the pool; may be null
    void* k_pool_out = nullptr;      // k_pool / v_pool, writable
    void* v_pool_out = nullptr;
};

// The largest decode split count merged through a cluster (the portable cluster size).
constexpr int kMaxClusterSplits = 8;

// Decode CTA shape: warps split each key tile (16 keys per warp); 2 warps at head_dim 256 to
// keep the double-buffered tiles in 68 KB of shared memory.
inline int decode_warps(int64_t head_dim) { return head_dim > 128 ? 2 : 4; }

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The fewest keys a decode split is cut to: 64 (one tile of 4 warps), so a short context is
// spread over several CTAs that each load one tile at once instead of one CTA walking its tiles
// one DRAM round trip after another. HELEXA_ATTN_MIN_SPLIT_KEYS overrides it (A/B
// measurements; read once per process, so the workspace bound and every launch agree).
inline int64_t decode_min_split_keys() {
    static const auto keys = static_cast<int64_t>(env_positive("HELEXA_ATTN_MIN_SPLIT_KEYS", 64));
    return keys;
}

// Splits of the context for flash-decoding, given how many CTAs one split would already have
// (n_units = sequences * kv heads * row groups). Splits only while every CTA still fits in one
// wave of ~2 per SM of an H100/H200 (132 SMs), and never cuts a split below
// decode_min_split_keys(). Rounding the split count down matters: every CTA of a decode launch
// does about the same work, so a second, partial wave costs as long as the first (32 streams x 8
// KV heads = 256 units used to get 2 splits: 512 CTAs on 396 slots, the attention at 0.46 of copy
// bandwidth on an H200).
// (With the merge in a second kernel, splitting short contexts down to 64 keys was measured
// slower on an H200: at batch 1 and 128-256 keys the split kernel plus the merge took 8.1 + 4.8
// us per layer against 10.1 us unsplit. The merge now runs in the last split's CTA.)
// Non-increasing in n_units, so the workspace bound (computed with n_units = n_seqs) covers
// every launch with the same sizes.
// CTAs of a decode launch in one wave: two per SM of an H100/H200 (132 SMs).
constexpr int64_t kDecodeWaveCtas = 264;

inline int64_t decode_split_bound(int64_t n_units, int64_t max_context_len) {
    constexpr int64_t kMaxSplits = 128;
    int64_t want = kDecodeWaveCtas / (n_units < 1 ? 1 : n_units);
    int64_t cap = ceil_div(max_context_len < 1 ? 1 : max_context_len, decode_min_split_keys());
    cap = cap < kMaxSplits ? cap : kMaxSplits;
    want = want < cap ? want : cap;
    return want < 1 ? 1 : want;
}

// The most splits the balanced plan (uneven contexts: plan_splits) gives one sequence: up to 32,
// at most 2048 split partials over the batch (a workspace of 34 MB at 32 heads of 128), and not
// below decode_min_split_keys() a split. The workspace bound takes the larger of this and
// decode_split_bound, so either plan fits it.
inline int64_t decode_balanced_split_cap(int64_t n_seqs, int64_t max_context_len) {
    constexpr int64_t kMaxBalancedSplits = 32;
    constexpr int64_t kMaxPartialRows = 2048;
    int64_t cap = kMaxPartialRows / (n_seqs < 1 ? 1 : n_seqs);
    cap = cap < kMaxBalancedSplits ? cap : kMaxBalancedSplits;
    const int64_t by_keys =
        ceil_div(max_context_len < 1 ? 1 : max_context_len, decode_min_split_keys());
    cap = cap < by_keys ? cap : by_keys;
    return cap < 1 ? 1 : cap;
}

// Workspace layout of the split decode: [arrival counters][(max, sum) per partial][O per
// partial]. The counters come first and their region does not depend on the split count, so
// they stay where the zeroed allocation put them whatever plan a later launch picks. There is
// one counter per (sequence, KV head, row group), at most n_seqs * max_query_len * n_heads.
inline size_t counter_bytes(int64_t n_seqs, int64_t max_query_len, int64_t n_heads) {
    const auto n = static_cast<size_t>(n_seqs * max_query_len * n_heads);
    return (n * sizeof(int32_t) + 15) / 16 * 16;
}

inline size_t partial_bytes(int64_t n_seqs, int64_t max_query_len, int64_t n_heads,
                            int64_t n_splits, int64_t head_dim) {
    return counter_bytes(n_seqs, max_query_len, n_heads) +
           static_cast<size_t>(n_seqs * max_query_len * n_heads * n_splits) *
               static_cast<size_t>(head_dim + 2) * sizeof(float);
}

// Host-side pieces of launch_paged_attention that the decode chain's attention link
// (decode_chain.cu) shares (attention.cu):
// - common_params: the argument checks (attention.h, at least one query row) and the fields
//   every kernel reads; not the split plan, the workspace or the epilogue.
// - epilogue_fusable: whether a.epilogue can be done by a decode kernel (one query row per
//   sequence, groups of at most 16 heads, aligned q/k/v rows and norm weights, the epilogue's
//   pools the args' ones), whatever the grid.
// - fuse_epilogue: the epilogue's fields into p.
// - place_split_workspace: p.ws_* for n_splits partials per (row, head) in a.workspace; false
//   when it is too small or misaligned.
cudaError_t common_params(const PagedAttentionArgs& a, AttnParams& p);
bool epilogue_fusable(const PagedAttentionArgs& a);
void fuse_epilogue(const FusedQkvEpilogue& e, AttnParams& p);
bool place_split_workspace(const PagedAttentionArgs& a, int64_t n_splits, AttnParams& p);

cudaError_t launch_attention_prefill(const AttnParams& p, int head_dim, bool bf16,
                                     cudaStream_t stream);
cudaError_t launch_attention_decode(const AttnParams& p, int head_dim, bool bf16,
                                    cudaStream_t stream);

// ---- device helpers ----

// Two floats -> one 32-bit register of two T (lo in the low half, as the fragments expect).
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
        __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
        return *reinterpret_cast<uint32_t*>(&v);
    } else {
        __half2 v = __floats2half2_rn(lo, hi);
        return *reinterpret_cast<uint32_t*>(&v);
    }
}

template <typename T>
__device__ __forceinline__ T from_f32(float x) {
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
        return __float2bfloat16_rn(x);
    } else {
        return __float2half_rn(x);
    }
}

// 2^x; exact 0 for -inf (masked scores), which the online softmax relies on.
__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

// The KV block size load_kv_tile's whole-tile path is compiled for: the engine's (16 keys,
// EngineConfig::block_size). Other block sizes take the per-row path.
constexpr int kWholeTileBlockKeys = 16;

// load_kv_tile's rows of a whole tile of live keys that starts on a block boundary: the tile's
// blocks are the same for every thread (its pass j's rows lie in block j * kRowsPerPass / 16, at
// row r0 + (j * kRowsPerPass) % 16), so each block costs one lookup and its passes copy from
// constant offsets of one base, with nothing tested per row. dk/dv/k_src/v_src are the thread's
// row r0 and chunk column.
template <typename T, int HD, int kRows, int kRowsPerPass>
__device__ __forceinline__ void copy_whole_tile(T* dk, T* dv, const T* k_src, const T* v_src,
                                                const int32_t* tile_blocks, int32_t block_elems,
                                                const AttnParams& p) {
    constexpr int kStride = HD + 8;
    constexpr int kBlocks = kRows / kWholeTileBlockKeys;
    constexpr int kPassesPerBlock = kWholeTileBlockKeys / kRowsPerPass;
    int32_t blk[kBlocks];
#pragma unroll
    for (int b = 0; b < kBlocks; ++b) {
        blk[b] = __ldg(tile_blocks + b);
    }
#pragma unroll
    for (int b = 0; b < kBlocks; ++b) {
        // Block ids outside the pool (bad metadata) read nothing.
        const bool valid = blk[b] >= 0 && blk[b] < p.n_blocks;
        const int64_t off = valid ? static_cast<int64_t>(blk[b]) * block_elems : 0;
#pragma unroll
        for (int i = 0; i < kPassesPerBlock; ++i) {
            const int j = b * kPassesPerBlock + i;
            cp_async16(dk + j * kRowsPerPass * kStride, k_src + off + i * kRowsPerPass * HD, valid);
            cp_async16(dv + j * kRowsPerPass * kStride, v_src + off + i * kRowsPerPass * HD, valid);
        }
    }
}

// Gathers keys [k0, k0 + kRows) of one kv head through the block table into two padded
// shared tiles sk, sv ([kRows][HD + 8] elements); keys >= k_end (or in a block id outside the
// pool) are zero-filled, so masked rows can never inject NaN through P.V. Only the rows whose
// key lies in [key_lo, key_hi) are touched, so a tile can be gathered in two calls (each row
// written once); the row of skip_key is left to the caller (a key computed in the kernel).
//
// Each thread copies one fixed 16-byte chunk column of every kRowsPerPass-th row, so its
// per-row work is a shift, the block lookup and one 32 x 32 -> 64-bit multiply-add: the address
// arithmetic (a runtime division by block_size and 64-bit products per copy) was the decode
// kernel's largest instruction class under Nsight Compute (IMAD 23% of instructions, IABS from
// the division), ahead of its tensor-core work (HMMA 3%), in a kernel bound by issue latency.
//
// kWholeTiles adds the whole-tile path (copy_whole_tile) for the call sites that run once a tile
// of a long split: the decode kernel's key loop. Only there: with it at the decode kernel's
// once-a-CTA loads too, the kernel alone ran up to 1 us faster, but the model's 32-stream step
// ran its attention 2-3 us a layer slower, even with the path switched off at run time (more
// code to fetch into an instruction cache gone cold under the GEMMs; docs/perf/cuda-engine.md,
// run 24).
template <typename T, int HD, int kRows, int kThreads, bool kWholeTiles = false>
__device__ __forceinline__ void load_kv_tile(T* sk, T* sv, const T* k_pool, const T* v_pool,
                                             const int32_t* table, const AttnParams& p,
                                             int kvh, int k0, int k_end, int tid,
                                             int key_lo = INT_MIN, int key_hi = INT_MAX,
                                             int skip_key = -1) {
    constexpr int kChunks = HD / 8;  // 16-byte chunks per row
    constexpr int kStride = HD + 8;
    static_assert(kThreads % kChunks == 0, "a thread keeps one chunk column");
    constexpr int kRowsPerPass = kThreads / kChunks;
    constexpr int kPasses = (kRows + kRowsPerPass - 1) / kRowsPerPass;
    const int c = tid % kChunks;
    const int r0 = tid / kChunks;
    const int bs = p.block_size;
    // Element offsets inside one block (< 2^31: block_size * n_kv_heads * HD is bounded by the
    // launcher's int32 checks); only the block's base needs 64 bits.
    const int32_t block_elems = p.n_kv_heads * bs * HD;
    const int32_t head_off = kvh * bs * HD + c * 8;
    T* dk = sk + r0 * kStride + c * 8;
    T* dv = sv + r0 * kStride + c * 8;
    // A whole tile of live keys in 16-key blocks (the steady state of a long split):
    // copy_whole_tile. The per-row path below cost ~550 instructions a warp a tile under Nsight
    // Compute (one stream at 131k keys: 67% of the decode kernel's instructions, its tensor-core
    // work 4%, at two warps a scheduler bound by issue latency); the whole tile ~145.
    if constexpr (kWholeTiles && kRows % kWholeTileBlockKeys == 0 &&
                  kWholeTileBlockKeys % kRowsPerPass == 0) {
        if (bs == kWholeTileBlockKeys && k0 % kWholeTileBlockKeys == 0 && k0 + kRows <= k_end &&
            key_lo <= k0 && k0 + kRows <= key_hi && (skip_key < k0 || skip_key >= k0 + kRows)) {
            copy_whole_tile<T, HD, kRows, kRowsPerPass>(
                dk, dv, k_pool + head_off + r0 * HD, v_pool + head_off + r0 * HD,
                table + k0 / kWholeTileBlockKeys, block_elems, p);
            return;
        }
    }
    // Every pass's block id first, then the copies: the lookups' round trips overlap instead of
    // each copy waiting on its own (H200: 64 sequences x 4096 keys 288 -> 269 us, 1 x 131072
    // keys 158 -> 149 us; short contexts unchanged).
    int32_t blk[kPasses];
    int in_block[kPasses];
#pragma unroll
    for (int j = 0; j < kPasses; ++j) {
        const int key = k0 + r0 + j * kRowsPerPass;
        const bool live = (kRows % kRowsPerPass == 0 || r0 + j * kRowsPerPass < kRows) &&
                          key < k_end && key >= key_lo && key < key_hi;
        int b = 0;
        in_block[j] = 0;
        if (live) {
            if (p.block_shift >= 0) {
                b = key >> p.block_shift;
                in_block[j] = key & (bs - 1);
            } else {
                b = key / bs;
                in_block[j] = key - b * bs;
            }
        }
        blk[j] = live ? __ldg(table + b) : -1;
    }
#pragma unroll
    for (int j = 0; j < kPasses; ++j) {
        const int r = r0 + j * kRowsPerPass;
        if (kRows % kRowsPerPass != 0 && r >= kRows) {
            break;
        }
        const int key = k0 + r;
        if (key < key_lo || key >= key_hi || key == skip_key) {
            continue;
        }
        // Keys past k_end and block ids outside the pool (bad metadata) read nothing.
        const bool valid = blk[j] >= 0 && blk[j] < p.n_blocks;
        const int64_t off =
            valid ? static_cast<int64_t>(blk[j]) * block_elems + (in_block[j] * HD + head_off) : 0;
        cp_async16(dk + j * kRowsPerPass * kStride, k_pool + off, valid);
        cp_async16(dv + j * kRowsPerPass * kStride, v_pool + off, valid);
    }
}

}  // namespace helexa::kernels::attn
