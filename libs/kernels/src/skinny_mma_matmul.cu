// Small-batch linear on tensor cores: out[T, N] = x[T, K] * w[N, K]^T (+ bias) for T <= 64, with
// the residual add or SwiGLU fused in (skinny_mma_matmul.h).
//
// Design (why it is shaped this way):
// - Bound by reading w once: the whole card must stream w at copy bandwidth from the first
//   microsecond to the last. So the work is divided in equal bytes, not in output tiles
//   ("stream-K"): w is cut into tiles of 128 rows x 64 K (16 KiB, a "unit"), the units are
//   numbered tile-major, and each of one-CTA-per-SM CTAs takes one contiguous range of them.
//   Every CTA streams the same number of bytes (no partial wave: cuBLASLt's qkv / o_proj at
//   0.6-0.76 of copy, and this kernel's earlier cluster-split version, lost there).
// - A CTA's range runs through a few tiles. A tile it covers whole (all K) it finishes from its
//   registers. A tile shared with its neighbours (at the ends of its range) has one finisher,
//   the CTA whose range holds its first unit (its part ends that range): the others leave their
//   parts as f32 partial sums in the workspace, counted in by their reporter warp as soon as
//   stored (a share is always a range's first segment); the finisher's reporter waits for them
//   while its consumers stream and copies the first into shared memory, and at their range end
//   the consumers add them in CTA order, so the result is the same on every run
//   (fetch_first_part). Finishers wait for the others' counts, so every CTA must be resident at
//   once: the grid is one CTA per SM.
// - One producer warp feeds a ring of units through the TMA (tma.cuh): one instruction per unit
//   for w and one for its x slice, rows swizzled so the ldmatrix reads are conflict-free, rows
//   past N or T zero-filled, completion counted in bytes on the slot's mbarrier. The 8 consumer
//   warps release a slot by arriving on its "empty" barrier; the producer refills it. (A first
//   version copied with cp.async from every thread and a CTA barrier per unit: 0.5-0.75 of copy
//   bandwidth whatever the ring's depth.) The ring runs across tile boundaries.
// - Each consumer warp owns 16 rows of the tile. On sm_90a the two consumer warpgroups each
//   issue one wgmma m64nTk16 per k16 step (wgmma.cuh): their 64 rows of the w unit as A and the
//   x slice as B, both read by the tensor cores straight from the swizzled ring through
//   descriptors, so the issue work per weight byte no longer grows with the rows (run 13: the
//   mma.sync consumer, T / 8 mma plus ldmatrix loads per warp and k16, fell behind cuBLASLt as
//   rows grew). Elsewhere w is mma.sync m16n8k16's A operand (16 rows x k16, one ldmatrix.x4)
//   and x^T the B operand (8 rows of x per n-tile, ldmatrix.x4 for two). Both leave the same
//   accumulator layout (mma.sync's C fragments, warp w holding rows 16w..16w+15).
//   SwiGLU tiles interleave 8 gate rows with their 8 up rows (a 4D tensor map over w's two
//   halves), so the lane holding an output's gate sum (row g of its warp) holds its up sum too
//   (row g + 8).
// - Weights are asked for before grid_dependency_wait() (launch.cuh): under programmatic
//   dependent launch the ring's first units of w stream while the previous kernel drains; their
//   x slices follow the wait.
// - Chained (launch_skinny_mma_mlp): the decoder's gate_up (+ SwiGLU) and down (+ residual) in
//   one launch, their units back to back in one ring, so that down's weights stream while
//   gate_up's last tiles are reduced instead of after a kernel boundary (the plan:
//   docs/design/persistent-decode-layer.md, step 1). Down's unit at K chunk c reads 64 columns
//   of h that gate_up's tile c wrote; the producer waits for that tile's ready flag (a
//   generation number kept in the workspace, so graphs replay it unchanged) before its x slice.
//   Each stage's ranges and summation order are those of its own launch: the chained result
//   equals the two launches' bit for bit.
// - Accumulation in f32; bias, the residual and SwiGLU in f32; each output rounded once (SwiGLU
//   rounds g, u and silu(g) first, as the separate kernels store them), as skinny_matmul.cu does.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "async_copy.cuh"
#include "device_clock.cuh"
#include "elem_access.cuh"
#include "grid_sync.cuh"
#include "helexa/kernels/skinny_mma_matmul.h"
#include "launch.cuh"
#include "mma.cuh"
#include "tma.cuh"
#include "wgmma.cuh"

namespace helexa::kernels {
namespace {

constexpr int kWarp = 32;
constexpr int kWarps = 8;                     // consumer warps
constexpr int kThreads = kWarps * kWarp;      // consumer threads
constexpr int kBlock = kThreads + 2 * kWarp;  // + the producer warp + the reporter warp
constexpr int kTileRows = 16;                 // rows of w per warp: the mma's M
constexpr int kCtaRows = kWarps * kTileRows;  // rows of w per tile
constexpr int kChunkK = 64;                   // K per unit
constexpr int kRowBytes = kChunkK * 2;        // one row of a unit: one 128-byte swizzle row
constexpr int kWUnitBytes = kCtaRows * kRowBytes;  // 16 KiB
constexpr int kMaxNt = static_cast<int>(kSkinnyMmaMaxRows / 8);
constexpr int kMaxTiles = static_cast<int>(kSkinnyMmaMaxN / kCtaRows);
// [[maybe_unused]] here and below: used only by the sm_90 code, compiled out for older targets.
[[maybe_unused]] constexpr int kConsumerBarrier = 1;  // named barrier of the consumer warps
// Named barriers between the consumers and the reporter warp: 2 / 3, stage 0's / 1's share
// stored; 4, a chained launch's consumers done with stage 0's first other part in shared memory
// (stage 1's may overwrite it).
[[maybe_unused]] constexpr int kShareBarrier = 2;
[[maybe_unused]] constexpr int kPartFreeBarrier = 4;
constexpr int kCounterStride = 32;  // ints: one shared-tile counter per 128-byte line

// Bytes of one ring slot (w then x rows) and the ring's depth: about 200 KiB, cuBLASLt's depth.
// (A 100 KiB ring, which would leave room for the next kernel's CTAs under PDL, streamed
// 0.1-0.2 of copy bandwidth slower on the small projections: docs/perf/cuda-engine.md, run 10.)
template <int NT>
constexpr int slot_bytes() {
    return kWUnitBytes + NT * 8 * kRowBytes;
}
template <int NT>
constexpr int ring_stages() {
    return NT == 1 || NT == 2 ? 11 : NT == 4 ? 10 : 8;
}
// The ring, then the first other part of the tile a range finishes (one float4 a consumer
// thread and n-tile: NT * 4 KiB, which fits beside the ring at every NT).
template <int NT>
constexpr int ring_smem_bytes() {
    return ring_stages<NT>() * slot_bytes<NT>() + 1024;  // + the swizzle's alignment
}
template <int NT>
constexpr int smem_bytes() {
    return ring_smem_bytes<NT>() + NT * kThreads * static_cast<int>(sizeof(float4));
}
static_assert(smem_bytes<8>() <= 227 * 1024, "ring and part fit in shared memory");

using Output = SkinnyFusion::Output;

// One matrix of a launch: its output, bias, shape and stream-K bookkeeping (the tensor maps
// of its w and x travel as their own kernel parameters).
template <typename W>
struct Stage {
    void* out;  // [T, N] (SwiGLU: [T, N/2]), row stride out_stride
    int64_t out_stride;
    const W* bias;  // [N] or null
    int64_t n;
    int64_t k;
    int k_units;  // units per tile: K / kChunkK
    int units;    // tiles * k_units
    int ctas;     // CTAs that take a range of this stage's units: min(grid, units)
    int* counters;     // [kMaxTiles * kCounterStride], zero between launches
    float4* partials;  // [ctas][kMaxNt][kThreads]: each CTA's share (its range's first segment)
};

// What a chained launch's CTAs share across launches: which of stage 0's tiles are stored in
// this launch (ready[tile] == generation + 1), the generation, and how many CTAs have finished
// (the last one starts the next generation). Zero before the first launch.
struct ChainSync {
    unsigned generation;
    unsigned exited;
    unsigned pad[2];
    unsigned ready[kMaxTiles];
};

template <typename W>
struct MmaParams {
    Stage<W> stage[2];  // stage[1] only in a chained launch
    int t;
    int ctas;           // the grid: min(SMs, the largest stage's units)
    ChainSync* sync;    // chained launches only
    // Debugging (skinny_mma_set_trace): per CTA {SM id, consumer start, first unit landed,
    // last unit done, end} in globaltimer nanoseconds, or null.
    unsigned long long* trace;
};

// The first unit of CTA c's range, and the CTA whose range holds unit u (the inverse).
[[maybe_unused]] __device__ __forceinline__ int range_begin(int c, int units, int ctas) {
    return static_cast<int>(static_cast<int64_t>(c) * units / ctas);
}
[[maybe_unused]] __device__ __forceinline__ int range_owner(int u, int units, int ctas) {
    return static_cast<int>((static_cast<int64_t>(u + 1) * ctas - 1) / units);
}

// One unit's four k16 steps for this warp's 16 rows against all NT n-tiles of x: on sm_90a as
// wgmma by the warp's warpgroup (64 rows), committed as one group and not waited for (the
// caller waits one unit later, so that the tensor cores run the next unit's group while this
// one finishes; consume_stage); elsewhere mma.sync, done on return.
template <typename W, int NT>
__device__ __forceinline__ void unit_mma(const char* slot, int warp, int lane,
                                         float (&acc)[NT][4]) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    (void)lane;
    const uint64_t a = wgmma_desc_sw128(slot + (warp / 4) * 64 * kRowBytes);
    const uint64_t b = wgmma_desc_sw128(slot + kWUnitBytes);
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < kChunkK / 16; ++ks) {
        Wgmma<NT>::template mma<W>(acc, a + 2 * ks, b + 2 * ks);  // + 32 bytes a step
    }
    wgmma_commit();
#else
    const int l7 = lane % 8;
    const int pair = (lane / 8) % 2;  // which of the two k8 halves (B) / row halves (A)
    const char* a_row = slot + (warp * kTileRows + pair * 8 + l7) * kRowBytes;
    const char* xs = slot + kWUnitBytes;
#pragma unroll
    for (int ks = 0; ks < kChunkK / 16; ++ks) {
        uint32_t a[4];
        ldsm_x4(a, a_row + (((2 * ks + lane / 16) ^ l7) << 4));
        if constexpr (NT == 1) {
            uint32_t b[2];
            ldsm_x2(b, xs + l7 * kRowBytes + (((2 * ks + pair) ^ l7) << 4));
            mma_16816<W>(acc[0], a, b[0], b[1]);
        } else {
#pragma unroll
            for (int jp = 0; jp < NT / 2; ++jp) {
                uint32_t b[4];
                const int row = 16 * jp + (lane / 16) * 8 + l7;
                ldsm_x4(b, xs + row * kRowBytes + (((2 * ks + pair) ^ l7) << 4));
                mma_16816<W>(acc[2 * jp], a, b[0], b[1]);
                mma_16816<W>(acc[2 * jp + 1], a, b[2], b[3]);
            }
        }
    }
#endif
}

template <typename W>
__device__ __forceinline__ float bias_at(const Stage<W>& p, int64_t row) {
    return p.bias != nullptr ? to_f32(p.bias[row]) : 0.0f;
}

// Stores a finished tile from the C fragments: acc[j][0..1] are rows g, acc[j][2..3] rows g + 8
// of this warp's 16, columns (x rows) 8j + 2tq + {0, 1}.
template <typename W, typename O, int NT, Output OUT>
__device__ __forceinline__ void store_tile(const Stage<W>& p, int rows, int tile, int warp,
                                           int lane, const float (&acc)[NT][4]) {
    const int g = lane / 4;
    const int tq = lane % 4;
    const int64_t wt = static_cast<int64_t>(tile) * kWarps + warp;
    O* out = static_cast<O*>(p.out);
    if constexpr (OUT == Output::kSwiGlu) {
        const int64_t f = wt * 8 + g;
        if (f >= p.n / 2) {
            return;
        }
        const float gb = bias_at(p, f);
        const float ub = bias_at(p, p.n / 2 + f);
#pragma unroll
        for (int j = 0; j < NT; ++j) {
#pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int tok = 8 * j + 2 * tq + e;
                if (tok < rows) {
                    const float gate = round_to<W>(acc[j][e] + gb);
                    const float up = round_to<W>(acc[j][2 + e] + ub);
                    out[tok * p.out_stride + f] = from_f32<O>(silu_mul_of<W>(gate, up));
                }
            }
        }
    } else {
        // The residual is read whole before anything is stored, by unpredicated loads of clamped
        // (always valid) addresses into registers of their own: predicated loads sharing one
        // register made the compiler wait for each before the next (run 14, Nsight Compute: 32
        // dependent L2 round trips a thread at 64 rows, on the tile's critical path).
        O resid[2][NT][2];
        if constexpr (OUT == Output::kAccumulate) {
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int64_t row = min(wt * kTileRows + g + 8 * h, p.n - 1);
#pragma unroll
                for (int j = 0; j < NT; ++j) {
#pragma unroll
                    for (int e = 0; e < 2; ++e) {
                        const int tok = min(8 * j + 2 * tq + e, rows - 1);
                        resid[h][j][e] = out[tok * p.out_stride + row];
                    }
                }
            }
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int64_t row = wt * kTileRows + g + 8 * h;
            if (row >= p.n) {
                continue;
            }
            const float b = bias_at(p, row);
#pragma unroll
            for (int j = 0; j < NT; ++j) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int tok = 8 * j + 2 * tq + e;
                    if (tok < rows) {
                        float v = acc[j][2 * h + e] + b;
                        if constexpr (OUT == Output::kAccumulate) {
                            v += to_f32(resid[h][j][e]);
                        }
                        out[tok * p.out_stride + row] = from_f32<O>(v);
                    }
                }
            }
        }
    }
}

// CTA cta's partial sums of the tile it shares (its range's first segment: report_share).
[[maybe_unused]] __device__ __forceinline__ float4* partial_slot(float4* partials, int cta) {
    return partials + static_cast<int64_t>(cta) * kMaxNt * kThreads;
}

// Memory-model use (grid_sync.cuh). Shared tiles: the finisher's reporter polls the tile's
// counter relaxed and fences (acquire) once it is complete, then arrives on the mbarrier its
// consumers wait on (release / acquire within the CTA). Chained launch: a stage-0 tile's finisher
// publishes the tile (release, after its stores); a producer polls the flags relaxed and, once it
// has seen every one it needs, fences (acquire) before its TMA reads the tiles' outputs; the
// proxy fences order the generic-proxy stores and loads with the TMA's async-proxy reads on
// either side.
[[maybe_unused]] __device__ __forceinline__ void fence_proxy_async_global() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("fence.proxy.async.global;" ::: "memory");
#endif
}

// A tile shared by several CTAs (range ends fall inside it) has one finisher: the CTA whose range
// holds the tile's first unit (its part of the tile ends its range). Every other CTA leaves its
// part as f32 partial sums in the workspace as soon as it has them (leave_share: plain stores,
// nothing to wait for); its reporter warp counts the part in as soon as it is stored
// (report_share). The finisher's reporter waits for every other part, zeroes the counter for the
// next launch and copies the first part into shared memory (fetch_first_part); its consumers add
// the parts in CTA order at their range end (the same bits on every run). Only finishers wait,
// and only for counts that other CTAs give without waiting, so every CTA must be resident at
// once: the grid is one CTA per SM. Counters sit one per 128-byte line (kCounterStride) so the
// finishers' polling and the others' atomics on different tiles do not queue at one L2 slice.
template <int NT>
__device__ __forceinline__ void leave_share(float4* partials, int cta,
                                            const float (&acc)[NT][4]) {
    float4* mine = partial_slot(partials, cta);
    const int tid = static_cast<int>(threadIdx.x);
#pragma unroll
    for (int j = 0; j < NT; ++j) {
        __stcg(mine + j * kThreads + tid, make_float4(acc[j][0], acc[j][1], acc[j][2], acc[j][3]));
    }
}

// The finisher's reporter, while its consumers still stream: waits until every other part of
// the tile is counted in, then copies the first of them (CTA c_first + 1's: the only one, unless
// the tile spans more than two ranges) into shared memory with one bulk copy completing on
// `landed`. (Done by the consumers after their stream, the poll, two fences and the shares'
// round trip to L2 put 3.5-6 us on the kernel's end: run 29's trace. Summing every part here
// instead, one warp's loads took longer than the stream where a tile has several parts: 29c.)
// The consumers then add it and any further parts in CTA order: the same bits as before.
template <typename W, int NT>
__device__ __forceinline__ void fetch_first_part(const Stage<W>& p, int tile, int c_first,
                                                 float4* part, uint64_t* landed) {
    const int c_last = range_owner((tile + 1) * p.k_units - 1, p.units, p.ctas);
    unsigned* counter = reinterpret_cast<unsigned*>(&p.counters[tile * kCounterStride]);
    const auto expected = static_cast<unsigned>(c_last - c_first);
    while (load_relaxed(counter) != expected) {
        __nanosleep(256);  // polled all along the stream: not every 128 ns from every SM
    }
    fence_acq_rel_gpu();
    *counter = 0;  // every other part is in: ready for the next launch
    fence_proxy_async_global();  // the parts' generic stores before the bulk copy's reads
    constexpr auto kBytes = static_cast<uint32_t>(NT * kThreads * sizeof(float4));
    mbarrier_arrive_expect_tx(landed, kBytes);
    bulk_load(part, partial_slot(p.partials, c_first + 1), kBytes, landed,
              l2_evict_first_policy());
}

// The reporter warp's side of one stage: if this CTA's range starts inside a tile (so its first
// segment is a share another CTA finishes), wait until the consumers have stored that share,
// then count it in. Counting in from a consumer thread mid-range stalled the CTA's stream 4-8 us
// (the fence waits under the saturated memory system: run 15), so it was done at the range end,
// where a finisher then waited on its neighbour's whole range (run 29's trace: ~2.5 us on the
// kernel's end); this warp does it as soon as the share is stored, off the consumers' path.
template <typename W>
__device__ __forceinline__ void report_share(const Stage<W>& p, int stage_index, int u_begin,
                                             int n_units, int lane) {
    if (n_units == 0 || u_begin % p.k_units == 0) {
        return;
    }
    named_barrier_sync(kShareBarrier + stage_index, kThreads + kWarp);
    if (lane == 0) {
        __threadfence();  // the share is visible before the counter says so
        atomicAdd(&p.counters[(u_begin / p.k_units) * kCounterStride], 1);
    }
    __syncwarp();
}

// The tile this CTA's range finishes in a stage (its last segment starts at the tile's first
// unit and ends inside it, so other CTAs hold the rest), or -1.
template <typename W>
__device__ __forceinline__ int finished_tile(const Stage<W>& p, int u_begin, int n_units) {
    const int u_end = u_begin + n_units;
    if (n_units == 0 || u_end % p.k_units == 0) {
        return -1;
    }
    const int tile = (u_end - 1) / p.k_units;
    return tile * p.k_units >= u_begin ? tile : -1;
}

// The consumer warps' side of one stage: its units are ring entries [first, first + n_units)
// (a chained launch's stage 1 follows stage 0 in the same ring), unit u_begin onwards of the
// stage's numbering. With `publish` (stage 0 of a chained launch) each stored tile is marked
// ready for generation `generation`.
template <typename W, typename O, int NT, Output OUT>
__device__ __forceinline__ void consume_stage(const Stage<W>& p, int stage_index, int rows,
                                              char* ring, const float4* part,
                                              uint64_t* part_landed, bool part_reused,
                                              uint64_t* full, uint64_t* empty, int first,
                                              int u_begin, int n_units, int warp, int lane,
                                              unsigned* ready, unsigned generation,
                                              unsigned long long* trace) {
    constexpr int kStages = ring_stages<NT>();
    constexpr int kSlot = slot_bytes<NT>();
    const int cta = static_cast<int>(blockIdx.x);
    float acc[NT][4];
#pragma unroll
    for (int j = 0; j < NT; ++j) {
        acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
    }
    int tile = u_begin / p.k_units;
    int kpos = u_begin % p.k_units;
    bool whole = kpos == 0;  // this CTA's segment of `tile` started at the tile's first unit
    // Tiles it stores: the whole ones inside the range, then the one it finishes, so always
    // consecutive, [stored_lo, stored_hi] (chained: marked ready at the end).
    int stored_lo = -1;
    int stored_hi = -2;
    int finishes = -1;         // the shared tile whose part ends the range, if it finishes it
    // Each pass covers this CTA's segment of one tile. On sm_90a a unit's slot is released once
    // the next unit's wgmma group is issued and the unit's own group is done, so the tensor
    // cores always have the next group queued instead of the consumer waiting out each group's
    // latency (waiting for each group first cost 0.4-0.6 us a launch at 8-32 rows: run 27). The
    // accumulators are read only after the segment's last group is waited for, outside the unit
    // loop (a read inside a branch there makes ptxas serialize the wgmmas, C7518).
    // This warp is done with the slot (slot < 0: none); a predicated arrival, no branch.
    const auto release = [&](int slot) {
        __syncwarp();
        mbarrier_arrive_if(&empty[slot < 0 ? 0 : slot], lane == 0 && slot >= 0);
    };
    for (int i = 0; i < n_units;) {
        const int seg = std::min(p.k_units - kpos, n_units - i);
        [[maybe_unused]] int held = -1;  // sm_90a: the slot of the unit still in flight
        for (int e = i + seg; i < e; ++i) {
            const int r = first + i;
            const int s = r % kStages;
            mbarrier_wait(&full[s], (r / kStages) & 1);
            unit_mma<W, NT>(ring + s * kSlot, warp, lane, acc);
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
            wgmma_wait<1>();  // the previous unit's group is done
            release(held);
            held = s;
#else
            release(s);
#endif
        }
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
        wgmma_wait<0>();  // the segment's last group: the accumulators are read below
        wgmma_hold(acc);
        release(held);
#endif
        const bool tile_done = kpos + seg == p.k_units;
        const int c_first = range_owner(tile * p.k_units, p.units, p.ctas);
        if (tile_done && whole) {
            store_tile<W, O, NT, OUT>(p, rows, tile, warp, lane, acc);
            stored_lo = stored_lo < 0 ? tile : stored_lo;
            stored_hi = tile;
        } else if (cta != c_first) {
            // Only a range's first segment can lie in a tile another CTA finishes (every later
            // segment starts at its tile's first unit, so this CTA finishes it): at most one
            // share a stage (report_share). The reporter warp counts it in while the consumers
            // stream on.
            leave_share<NT>(p.partials, cta, acc);
            named_barrier_arrive(kShareBarrier + stage_index, kThreads + kWarp);
        } else {
            finishes = tile;  // its part ends the range (last): kept in acc
        }
        if (finishes < 0) {
#pragma unroll
            for (int j = 0; j < NT; ++j) {
                acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
            }
        }
        ++tile;
        kpos = 0;
        whole = true;
    }
    if (n_units == 0) {
        return;
    }
    if (trace != nullptr && threadIdx.x == 0) {
        trace[3] = global_ns();  // the last unit's group is done: the range's end starts
    }
    // The range's end: finish the last tile if this CTA is its finisher, then (chained, stage 0)
    // mark every tile it stored ready.
    if (finishes >= 0) {
        // The first other part from shared memory (fetch_first_part: its landing also says that
        // every part is counted in), the rest from L2, added in CTA order.
        mbarrier_wait(part_landed, 0);
        const int tid = static_cast<int>(threadIdx.x);
#pragma unroll
        for (int j = 0; j < NT; ++j) {
            const float4 v = part[j * kThreads + tid];
            acc[j][0] += v.x;
            acc[j][1] += v.y;
            acc[j][2] += v.z;
            acc[j][3] += v.w;
        }
        if (part_reused) {
            named_barrier_arrive(kPartFreeBarrier, kThreads + kWarp);
        }
        const int c_last = range_owner((finishes + 1) * p.k_units - 1, p.units, p.ctas);
        // Unrolled so several parts' loads are in flight at once (the adds keep CTA order).
#pragma unroll 4
        for (int c = cta + 2; c <= c_last; ++c) {
            const float4* share = partial_slot(p.partials, c);
#pragma unroll
            for (int j = 0; j < NT; ++j) {
                const float4 v = __ldcg(share + j * kThreads + tid);
                acc[j][0] += v.x;
                acc[j][1] += v.y;
                acc[j][2] += v.z;
                acc[j][3] += v.w;
            }
        }
        store_tile<W, O, NT, OUT>(p, rows, finishes, warp, lane, acc);
        stored_lo = stored_lo < 0 ? finishes : stored_lo;
        stored_hi = finishes;
    }
    if (ready != nullptr && stored_lo >= 0) {
        __threadfence();
        fence_proxy_async_global();
        named_barrier_sync(kConsumerBarrier, kThreads);
        if (threadIdx.x == 0) {
            for (int t = stored_lo; t <= stored_hi; ++t) {
                store_release(&ready[t], generation + 1);
            }
        }
    }
}

// Grid: p.ctas CTAs, one contiguous range of units of each stage each; block: the consumer warps,
// the producer warp, then the reporter warp (report_share, fetch_first_part). A chained launch
// (kChain) runs two stages: stage 0 (gate_up with SwiGLU into h) then stage 1 (down with the
// residual add, x = h). Stage 1's weight units need nothing and enter the ring as soon as slots
// free up; the x slice of its unit at K chunk c is stage 0's tile c (64 SwiGLU outputs = 64
// columns of h), which the producer waits for (ready flag of this generation) before it issues
// that slice. Stage 0 never waits on stage 1, and a
// producer issues a unit's x slice only after every earlier unit's, so a slot it waits on is
// always released in time: no deadlock, as long as every CTA is resident (one per SM).
template <typename W, typename O, int NT, Output OUT, bool kChain>
__global__ void __launch_bounds__(kBlock, 1)
    skinny_mma_kernel(const __grid_constant__ CUtensorMap w_map,
                      const __grid_constant__ CUtensorMap x_map,
                      const __grid_constant__ CUtensorMap w_map1,
                      const __grid_constant__ CUtensorMap x_map1, const MmaParams<W> p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    constexpr int kStages = ring_stages<NT>();
    constexpr int kSlot = slot_bytes<NT>();
    constexpr uint32_t kUnitBytes = static_cast<uint32_t>(kSlot);  // w rows + x rows
    extern __shared__ char smem[];
    // The 128-byte swizzle repeats every 1024 bytes: slots start on such a boundary.
    char* ring = smem + ((1024 - smem_u32(smem) % 1024) % 1024);
    float4* part = reinterpret_cast<float4*>(ring + kStages * kSlot);
    __shared__ uint64_t full[kStages];   // slot's unit has landed (1 arrival + its bytes)
    __shared__ uint64_t empty[kStages];  // slot's unit consumed (one arrival per consumer warp)
    __shared__ uint64_t part_landed[2];  // stage s's first other part is in `part`
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
    const int cta = static_cast<int>(blockIdx.x);
    const Stage<W>& s0 = p.stage[0];
    const Stage<W>& s1 = p.stage[1];
    // Each stage's ranges are those of its own launch (its own CTA count), so its sums are too.
    const int u0 = range_begin(cta, s0.units, s0.ctas);
    const int n0 = cta < s0.ctas ? range_begin(cta + 1, s0.units, s0.ctas) - u0 : 0;
    const int u1 = kChain ? range_begin(cta, s1.units, s1.ctas) : 0;
    const int n1 = kChain && cta < s1.ctas ? range_begin(cta + 1, s1.units, s1.ctas) - u1 : 0;
    const int total = n0 + n1;
    // The tile each stage's range finishes with the reporter's copy (the reporter copies it, the
    // consumers add it). Chained, both copies go through the one `part`: stage 1's waits until
    // the consumers have added stage 0's (part_reused).
    const int f0 = finished_tile(s0, u0, n0);
    const int f1 = kChain ? finished_tile(s1, u1, n1) : -1;
    const bool part_reused = kChain && f0 >= 0 && f1 >= 0;
    if (threadIdx.x == 0) {
        for (int s = 0; s < kStages; ++s) {
            mbarrier_init(&full[s], 1);
            mbarrier_init(&empty[s], kWarps);
        }
        mbarrier_init(&part_landed[0], 1);
        mbarrier_init(&part_landed[1], 1);
        mbarrier_init_fence();
    }
    __syncthreads();

    if (warp == kWarps) {  // the producer
        if (lane == 0) {
            // Ring entry i: unit u0 + i of stage 0, then unit u1 + (i - n0) of stage 1.
            auto load_w = [&](int i) {
                char* slot = ring + (i % kStages) * kSlot;
                uint64_t* bar = &full[i % kStages];
                if (i < n0) {
                    const int u = u0 + i;
                    const int tile = u / s0.k_units;
                    const int k0 = (u % s0.k_units) * kChunkK;
                    if constexpr (OUT == Output::kSwiGlu) {
                        tma_load_4d(slot, &w_map, bar, k0, 0, 0, tile * kWarps);
                    } else {
                        tma_load_2d(slot, &w_map, bar, k0, tile * kCtaRows);
                    }
                } else {
                    const int u = u1 + i - n0;
                    tma_load_2d(slot, &w_map1, bar, (u % s1.k_units) * kChunkK,
                                (u / s1.k_units) * kCtaRows);
                }
            };
            auto load_x = [&](int i) {
                char* slot = ring + (i % kStages) * kSlot + kWUnitBytes;
                if (i < n0) {
                    tma_load_2d(slot, &x_map, &full[i % kStages],
                                ((u0 + i) % s0.k_units) * kChunkK, 0);
                } else {
                    tma_load_2d(slot, &x_map1, &full[i % kStages],
                                ((u1 + i - n0) % s1.k_units) * kChunkK, 0);
                }
            };
            // The first slots' weights (nothing another kernel writes), then the wait, then
            // their x slices; each slot's barrier expects both.
            const int first = total < kStages ? total : kStages;
            for (int i = 0; i < first; ++i) {
                mbarrier_arrive_expect_tx(&full[i], kUnitBytes);
                load_w(i);
            }
            grid_dependency_wait();
            allow_dependent_launch();
            unsigned generation = 0;
            if constexpr (kChain) {
                generation = *reinterpret_cast<const volatile unsigned*>(&p.sync->generation);
            }
            // Stage 1's x slices wait until every stage-0 tile this CTA's range reads is stored
            // (its K chunks, in range order): polled eight flags a round trip, then one acquire
            // fence for all of them. (A flag acquired per slice put a dependent L2 round trip
            // before every x slice: the chained MLP ran 17 us slower than the two launches.)
            const int needed = kChain ? min(n1, s1.k_units) : 0;
            int seen = 0;  // of those, how many have been seen stored
            bool chunks_ready = !kChain;
            auto poll_chunks = [&]() {
                while (seen < needed) {
                    unsigned f[8];
#pragma unroll
                    for (int j = 0; j < 8; ++j) {
                        const int q = min(seen + j, needed - 1);
                        f[j] = load_relaxed(&p.sync->ready[(u1 + q) % s1.k_units]);
                    }
                    int stored = 0;
                    while (stored < 8 && seen + stored < needed && f[stored] == generation + 1) {
                        ++stored;
                    }
                    seen += stored;
                    if (stored < 8 && seen < needed) {
                        return false;
                    }
                }
                fence_acq_rel_gpu();
                fence_proxy_async_global();
                return true;
            };
            int next_w = first;  // ring entries whose weights have been asked for
            int next_x = 0;      // ... whose x slices have
            while (next_x < total) {
                bool x_ready = next_x < next_w;
                if (x_ready && next_x >= n0 && !chunks_ready) {
                    chunks_ready = poll_chunks();
                    x_ready = chunks_ready;
                }
                if (x_ready) {
                    load_x(next_x++);
                } else if (next_w < total && next_w < next_x + kStages) {
                    // Its slot's previous entry (next_w - kStages) has its x slice: the
                    // consumers will release it.
                    const int s = next_w % kStages;
                    mbarrier_wait(&empty[s], ((next_w / kStages) - 1) & 1);
                    mbarrier_arrive_expect_tx(&full[s], kUnitBytes);
                    load_w(next_w++);
                } else {
                    __nanosleep(64);  // stage 0's tile for the next x slice is not stored yet
                }
            }
        } else {
            grid_dependency_wait();
            allow_dependent_launch();
        }
        return;
    }
    if (warp == kWarps + 1) {  // the reporter
        grid_dependency_wait();
        allow_dependent_launch();
        report_share(s0, 0, u0, n0, lane);
        if (f0 >= 0 && lane == 0) {
            fetch_first_part<W, NT>(s0, f0, cta, part, &part_landed[0]);
        }
        __syncwarp();  // the warp whole again before its next named barrier (bar.sync is aligned)
        if constexpr (kChain) {
            report_share(s1, 1, u1, n1, lane);
            if (f1 >= 0) {
                if (part_reused) {
                    named_barrier_sync(kPartFreeBarrier, kThreads + kWarp);
                }
                if (lane == 0) {
                    fetch_first_part<W, NT>(s1, f1, cta, part, &part_landed[1]);
                }
            }
        }
        return;
    }

    grid_dependency_wait();
    allow_dependent_launch();
    unsigned generation = 0;
    if constexpr (kChain) {
        generation = *reinterpret_cast<const volatile unsigned*>(&p.sync->generation);
    }
    unsigned long long* trace =
        p.trace != nullptr ? p.trace + kSkinnyMmaTraceWords * cta : nullptr;
    if (trace != nullptr && threadIdx.x == 0) {
        trace[0] = sm_id();
        trace[1] = global_ns();
        mbarrier_wait(&full[0], 0);
        trace[2] = global_ns();
    }
    consume_stage<W, O, NT, OUT>(s0, 0, p.t, ring, part, &part_landed[0], part_reused, full,
                                 empty, 0, u0, n0, warp, lane,
                                 kChain ? p.sync->ready : nullptr, generation,
                                 kChain ? nullptr : trace);
    if constexpr (kChain) {
        consume_stage<W, W, NT, Output::kAccumulate>(s1, 1, p.t, ring, part, &part_landed[1],
                                                     false, full, empty, n0, u1, n1, warp, lane,
                                                     nullptr, 0, trace);
    }
    if (trace != nullptr) {
        named_barrier_sync(kConsumerBarrier, kThreads);
        if (threadIdx.x == 0) {
            trace[4] = global_ns();
        }
    }
    if constexpr (kChain) {
        // Every CTA has read the generation before it gets here (its producer read it before
        // its last x slice, its consumers before their first unit): the last to finish starts
        // the next one.
        named_barrier_sync(kConsumerBarrier, kThreads);
        if (threadIdx.x == 0) {
            __threadfence();
            if (atomicAdd(&p.sync->exited, 1u) == static_cast<unsigned>(p.ctas) - 1) {
                p.sync->exited = 0;
                __threadfence();
                atomicAdd(&p.sync->generation, 1u);
            }
        }
    }
#endif
}

// The tensor maps of one stage: w as [N, K] in tiles of 128 rows, or (SwiGLU) its two halves
// as [N/2 / 8 groups][2 halves][8 rows][K], whose tiles of 8 groups put 8 gate rows before
// their 8 up rows, 64 of each; x as [T, K] in slices of NT * 8 rows.
template <int NT>
bool encode_stage_maps(CUtensorMap* w_map, CUtensorMap* x_map, const void* w, const void* x,
                       int64_t x_stride, int64_t t, int64_t n, int64_t k, Output output) {
    const uint64_t row_bytes = static_cast<uint64_t>(k) * 2;
    bool ok = false;
    if (output == Output::kSwiGlu) {
        const uint64_t half = static_cast<uint64_t>(n / 2);
        const uint64_t dims[4] = {static_cast<uint64_t>(k), 8, 2, half / 8};
        const uint64_t strides[3] = {row_bytes, half * row_bytes, 8 * row_bytes};
        const uint32_t box[4] = {kChunkK, 8, 2, kWarps};
        ok = encode_tensor_map(w_map, w, 4, dims, strides, box);
    } else {
        const uint64_t dims[2] = {static_cast<uint64_t>(k), static_cast<uint64_t>(n)};
        const uint64_t strides[1] = {row_bytes};
        const uint32_t box[2] = {kChunkK, kCtaRows};
        ok = encode_tensor_map(w_map, w, 2, dims, strides, box);
    }
    const uint64_t x_dims[2] = {static_cast<uint64_t>(k), static_cast<uint64_t>(t)};
    const uint64_t x_strides[1] = {static_cast<uint64_t>(x_stride) * 2};
    const uint32_t x_box[2] = {kChunkK, NT * 8};
    return ok && encode_tensor_map(x_map, x, 2, x_dims, x_strides, x_box);
}

// Fills a stage's tile bookkeeping; false when it has more tiles than the counters cover.
template <typename W>
bool plan_stage(Stage<W>& s, Output output) {
    const int64_t outputs = output == Output::kSwiGlu ? s.n / 2 : s.n;
    const int64_t per_tile = output == Output::kSwiGlu ? kCtaRows / 2 : kCtaRows;
    const int64_t tiles = (outputs + per_tile - 1) / per_tile;
    if (tiles > kMaxTiles) {
        return false;
    }
    s.k_units = static_cast<int>(s.k / kChunkK);
    s.units = static_cast<int>(tiles) * s.k_units;
    return true;
}

std::atomic<unsigned long long*> g_trace{nullptr};

// One matrix (x0, w0: stage 0) or, with kChain, gate_up then down (x1, w1: stage 1).
template <typename W, typename O, int NT, Output OUT, bool kChain>
cudaError_t launch_nt(MmaParams<W> p, const void* x0, int64_t x0_stride, const void* w0,
                      const void* x1, int64_t x1_stride, const void* w1, cudaStream_t stream) {
    if (!plan_stage(p.stage[0], OUT) || (kChain && !plan_stage(p.stage[1], Output::kAccumulate))) {
        return cudaErrorInvalidValue;
    }
    p.ctas = std::min(device_sm_count(),
                      kChain ? std::max(p.stage[0].units, p.stage[1].units) : p.stage[0].units);
    p.stage[0].ctas = std::min(p.ctas, p.stage[0].units);
    p.stage[1].ctas = kChain ? std::min(p.ctas, p.stage[1].units) : 0;
    p.trace = g_trace.load(std::memory_order_relaxed);
    CUtensorMap maps[4];
    if (!encode_stage_maps<NT>(&maps[0], &maps[1], w0, x0, x0_stride, p.t, p.stage[0].n,
                               p.stage[0].k, OUT)) {
        return cudaErrorInvalidValue;
    }
    if (kChain) {
        if (!encode_stage_maps<NT>(&maps[2], &maps[3], w1, x1, x1_stride, p.t, p.stage[1].n,
                                   p.stage[1].k, Output::kAccumulate)) {
            return cudaErrorInvalidValue;
        }
    } else {
        maps[2] = maps[0];
        maps[3] = maps[1];
    }
    constexpr int kSmem = smem_bytes<NT>();
    static std::atomic<uint64_t> smem_raised{0};
    if (const cudaError_t err =
            ensure_dynamic_smem(skinny_mma_kernel<W, O, NT, OUT, kChain>, kSmem, smem_raised);
        err != cudaSuccess) {
        return err;
    }
    return launch_kernel(skinny_mma_kernel<W, O, NT, OUT, kChain>,
                         dim3(static_cast<unsigned>(p.ctas)), dim3(kBlock), kSmem, stream,
                         maps[0], maps[1], maps[2], maps[3], p);
}

// The workspace: stage 0's counters, stage 1's, the chain's sync block, then each stage's
// partial sums (one share of the largest tile per CTA of the largest grid).
size_t partials_bytes() {
    return static_cast<size_t>(device_sm_count()) * kMaxNt * kThreads * sizeof(float4);
}
constexpr size_t kCountersBytes = static_cast<size_t>(kMaxTiles) * kCounterStride * 4;
constexpr size_t kSyncBytes = (sizeof(ChainSync) + 15) / 16 * 16;

template <typename W>
MmaParams<W> workspace_params(void* workspace, int64_t t) {
    MmaParams<W> p{};
    char* base = static_cast<char*>(workspace);
    p.stage[0].counters = reinterpret_cast<int*>(base);
    p.stage[1].counters = reinterpret_cast<int*>(base + kCountersBytes);
    p.sync = reinterpret_cast<ChainSync*>(base + 2 * kCountersBytes);
    char* partials = base + 2 * kCountersBytes + kSyncBytes;
    p.stage[0].partials = reinterpret_cast<float4*>(partials);
    p.stage[1].partials = reinterpret_cast<float4*>(partials + partials_bytes());
    p.t = static_cast<int>(t);
    return p;
}

template <typename W, int NT>
cudaError_t launch_output(const MmaParams<W>& p, ElemType out_type, Output output, const void* x,
                          int64_t x_stride, const void* w, cudaStream_t stream) {
    switch (output) {
        case Output::kStore:
            if (out_type == ElemType::kF32) {
                return launch_nt<W, float, NT, Output::kStore, false>(p, x, x_stride, w, nullptr,
                                                                      0, nullptr, stream);
            }
            return launch_nt<W, W, NT, Output::kStore, false>(p, x, x_stride, w, nullptr, 0,
                                                              nullptr, stream);
        case Output::kAccumulate:
            return launch_nt<W, W, NT, Output::kAccumulate, false>(p, x, x_stride, w, nullptr, 0,
                                                                   nullptr, stream);
        case Output::kSwiGlu:
            return launch_nt<W, W, NT, Output::kSwiGlu, false>(p, x, x_stride, w, nullptr, 0,
                                                               nullptr, stream);
    }
    return cudaErrorInvalidValue;
}

template <typename W>
cudaError_t launch_w(void* out, int64_t out_stride, ElemType out_type, const void* x,
                     int64_t x_stride, const void* w, const void* bias, int64_t t, int64_t n,
                     int64_t k, Output output, void* workspace, cudaStream_t stream) {
    MmaParams<W> p = workspace_params<W>(workspace, t);
    Stage<W>& s = p.stage[0];
    s.out = out;
    s.out_stride = out_stride;
    s.bias = static_cast<const W*>(bias);
    s.n = n;
    s.k = k;
    if (t <= 8) {
        return launch_output<W, 1>(p, out_type, output, x, x_stride, w, stream);
    }
    if (t <= 16) {
        return launch_output<W, 2>(p, out_type, output, x, x_stride, w, stream);
    }
    if (t <= 32) {
        return launch_output<W, 4>(p, out_type, output, x, x_stride, w, stream);
    }
    return launch_output<W, 8>(p, out_type, output, x, x_stride, w, stream);
}

template <typename W>
cudaError_t launch_mlp_w(void* residual, int64_t residual_stride, void* h, int64_t h_stride,
                         const void* x, int64_t x_stride, const void* w_gate_up,
                         const void* w_down, int64_t t, int64_t f, int64_t d, void* workspace,
                         cudaStream_t stream) {
    MmaParams<W> p = workspace_params<W>(workspace, t);
    p.stage[0].out = h;
    p.stage[0].out_stride = h_stride;
    p.stage[0].n = 2 * f;
    p.stage[0].k = d;
    p.stage[1].out = residual;
    p.stage[1].out_stride = residual_stride;
    p.stage[1].n = d;
    p.stage[1].k = f;
    constexpr Output kSwi = Output::kSwiGlu;
    if (t <= 8) {
        return launch_nt<W, W, 1, kSwi, true>(p, x, x_stride, w_gate_up, h, h_stride, w_down,
                                              stream);
    }
    if (t <= 16) {
        return launch_nt<W, W, 2, kSwi, true>(p, x, x_stride, w_gate_up, h, h_stride, w_down,
                                              stream);
    }
    if (t <= 32) {
        return launch_nt<W, W, 4, kSwi, true>(p, x, x_stride, w_gate_up, h, h_stride, w_down,
                                              stream);
    }
    return launch_nt<W, W, 8, kSwi, true>(p, x, x_stride, w_gate_up, h, h_stride, w_down,
                                          stream);
}

}  // namespace

bool skinny_mma_supported() { return tma_supported(); }

void skinny_mma_set_trace(unsigned long long* device_buffer) { g_trace.store(device_buffer); }

size_t skinny_mma_workspace_bytes() {
    return 2 * kCountersBytes + kSyncBytes + 2 * partials_bytes();
}

cudaError_t launch_skinny_mma_matmul(void* out, int64_t out_stride, ElemType out_type,
                                     const void* x, int64_t x_stride, const void* w,
                                     const void* bias, int64_t T, int64_t N, int64_t K,
                                     ElemType type, const SkinnyFusion& fusion, void* workspace,
                                     cudaStream_t stream) {
    if (!skinny_types_supported(type, out_type, fusion.output)) {
        return cudaErrorInvalidValue;
    }
    if (!tma_supported()) {
        return cudaErrorNotSupported;
    }
    if (T == 0 || N == 0) {
        return T < 0 || N < 0 ? cudaErrorInvalidValue : cudaSuccess;
    }
    const int64_t out_cols = fusion.output == Output::kSwiGlu ? N / 2 : N;
    if (!skinny_mma_fits(T, N, K, fusion.output) || x_stride % 8 != 0 || x_stride < K ||
        fusion.norm_weight != nullptr ||
        out == nullptr || x == nullptr || w == nullptr || workspace == nullptr ||
        !aligned16(x) || !aligned16(w) || !aligned16(workspace) ||
        (T > 1 && out_stride < out_cols)) {
        return cudaErrorInvalidValue;
    }
    if (type == ElemType::kBF16) {
        return launch_w<__nv_bfloat16>(out, out_stride, out_type, x, x_stride, w, bias, T, N, K,
                                       fusion.output, workspace, stream);
    }
    return launch_w<__half>(out, out_stride, out_type, x, x_stride, w, bias, T, N, K,
                            fusion.output, workspace, stream);
}

cudaError_t launch_skinny_mma_mlp(void* residual, int64_t residual_stride, void* h,
                                  int64_t h_stride, const void* x, int64_t x_stride,
                                  const void* w_gate_up, const void* w_down, int64_t T, int64_t F,
                                  int64_t D, ElemType type, void* workspace,
                                  cudaStream_t stream) {
    if (type != ElemType::kBF16 && type != ElemType::kF16) {
        return cudaErrorInvalidValue;
    }
    if (!tma_supported()) {
        return cudaErrorNotSupported;
    }
    if (T == 0) {
        return cudaSuccess;
    }
    if (!skinny_mma_mlp_fits(T, F, D) || x_stride % 8 != 0 || x_stride < D ||
        h_stride % 8 != 0 || h_stride < F || (T > 1 && residual_stride < D) ||
        residual == nullptr || h == nullptr || x == nullptr || w_gate_up == nullptr ||
        w_down == nullptr || workspace == nullptr || !aligned16(x) || !aligned16(h) ||
        !aligned16(w_gate_up) || !aligned16(w_down) || !aligned16(workspace)) {
        return cudaErrorInvalidValue;
    }
    if (type == ElemType::kBF16) {
        return launch_mlp_w<__nv_bfloat16>(residual, residual_stride, h, h_stride, x, x_stride,
                                           w_gate_up, w_down, T, F, D, workspace, stream);
    }
    return launch_mlp_w<__half>(residual, residual_stride, h, h_stride, x, x_stride, w_gate_up,
                                w_down, T, F, D, workspace, stream);
}

}  // namespace helexa::kernels
