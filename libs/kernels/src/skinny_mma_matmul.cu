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
//   registers. A tile shared with its neighbours (at the ends of its range) it leaves as f32
//   partial sums in the workspace; the last of the tile's CTAs to arrive (a counter per tile)
//   sums the partials in CTA order, so the result is the same on every run, finishes the tile
//   and zeroes the counter for the next launch. No CTA waits for another.
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
// - Accumulation in f32; bias, the residual and SwiGLU in f32; each output rounded once (SwiGLU
//   rounds g, u and silu(g) first, as the separate kernels store them), as skinny_matmul.cu does.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "async_copy.cuh"
#include "elem_access.cuh"
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
constexpr int kBlock = kThreads + kWarp;      // + the producer warp
constexpr int kTileRows = 16;                 // rows of w per warp: the mma's M
constexpr int kCtaRows = kWarps * kTileRows;  // rows of w per tile
constexpr int kChunkK = 64;                   // K per unit
constexpr int kRowBytes = kChunkK * 2;        // one row of a unit: one 128-byte swizzle row
constexpr int kWUnitBytes = kCtaRows * kRowBytes;  // 16 KiB
constexpr int kMaxNt = static_cast<int>(kSkinnyMmaMaxRows / 8);
constexpr int kMaxTiles = static_cast<int>(kSkinnyMmaMaxN / kCtaRows);
// [[maybe_unused]] here and below: used only by the sm_90 code, compiled out for older targets.
[[maybe_unused]] constexpr int kConsumerBarrier = 1;  // named barrier of the consumer warps

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
template <int NT>
constexpr int ring_smem_bytes() {
    return ring_stages<NT>() * slot_bytes<NT>() + 1024;  // + the swizzle's alignment
}

using Output = SkinnyFusion::Output;

template <typename W>
struct MmaParams {
    void* out;  // [T, N] (SwiGLU: [T, N/2]), row stride out_stride
    int64_t out_stride;
    const W* x;  // [T, K], row stride x_stride (multiple of 8), 16-byte aligned
    int64_t x_stride;
    const W* w;     // [N, K] contiguous, 16-byte aligned
    const W* bias;  // [N] or null
    int64_t n;
    int64_t k;
    int t;
    int k_units;  // units per tile: K / kChunkK
    int units;    // tiles * k_units
    int ctas;     // the grid: min(SMs, units)
    int* counters;   // [kMaxTiles], zero between launches
    float4* partials;  // [ctas][2][kMaxNt][kThreads]
};

// The first unit of CTA c's range, and the CTA whose range holds unit u (the inverse).
[[maybe_unused]] __device__ __forceinline__ int range_begin(int c, int units, int ctas) {
    return static_cast<int>(static_cast<int64_t>(c) * units / ctas);
}
[[maybe_unused]] __device__ __forceinline__ int range_owner(int u, int units, int ctas) {
    return static_cast<int>((static_cast<int64_t>(u + 1) * ctas - 1) / units);
}

// One unit's four k16 steps for this warp's 16 rows against all NT n-tiles of x: on sm_90a as
// wgmma by the warp's warpgroup (64 rows), waited for before the slot is released.
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
    wgmma_wait<0>();
    wgmma_hold(acc);
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
__device__ __forceinline__ float bias_at(const MmaParams<W>& p, int64_t row) {
    return p.bias != nullptr ? to_f32(p.bias[row]) : 0.0f;
}

// Stores a finished tile from the C fragments: acc[j][0..1] are rows g, acc[j][2..3] rows g + 8
// of this warp's 16, columns (x rows) 8j + 2tq + {0, 1}.
template <typename W, typename O, int NT, Output OUT>
__device__ __forceinline__ void store_tile(const MmaParams<W>& p, int tile, int warp, int lane,
                                           const float (&acc)[NT][4]) {
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
                if (tok < p.t) {
                    const float gate = round_to<W>(acc[j][e] + gb);
                    const float up = round_to<W>(acc[j][2 + e] + ub);
                    const float sg = round_to<W>(gate / (1.0f + expf(-gate)));
                    out[tok * p.out_stride + f] = from_f32<O>(sg * up);
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
                        const int tok = min(8 * j + 2 * tq + e, p.t - 1);
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
                    if (tok < p.t) {
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

// This CTA's partial sums of a tile it shares, in the workspace slot (cta, which): which is 0 for
// the first tile of the CTA's range, 1 for its last (a range shares at most those two).
[[maybe_unused]] __device__ __forceinline__ float4* partial_slot(float4* partials, int cta,
                                                                int which) {
    return partials + static_cast<int64_t>(cta * 2 + which) * kMaxNt * kThreads;
}

// Leaves this CTA's share of `tile` and, if it is the tile's last CTA to arrive, sums every
// share in CTA order into acc and returns true (the caller then stores the tile). Called by the
// consumer warps only (their named barrier).
template <typename W, int NT>
__device__ bool share_tile(const MmaParams<W>& p, int tile, int cta, int first_unit,
                           float (&acc)[NT][4]) {
    __shared__ int last_arrival;
    const int tid = static_cast<int>(threadIdx.x);
    const int which = tile == first_unit / p.k_units ? 0 : 1;
    float4* mine = partial_slot(p.partials, cta, which);
#pragma unroll
    for (int j = 0; j < NT; ++j) {
        __stcg(mine + j * kThreads + tid, make_float4(acc[j][0], acc[j][1], acc[j][2], acc[j][3]));
    }
    const int c_first = range_owner(tile * p.k_units, p.units, p.ctas);
    const int c_last = range_owner((tile + 1) * p.k_units - 1, p.units, p.ctas);
    __threadfence();  // the shares are visible before the counter says so
    named_barrier_sync(kConsumerBarrier, kThreads);
    if (tid == 0) {
        const int arrived = atomicAdd(&p.counters[tile], 1);
        last_arrival = arrived == c_last - c_first;
        if (last_arrival) {
            p.counters[tile] = 0;  // every share has arrived: ready for the next launch
        }
    }
    named_barrier_sync(kConsumerBarrier, kThreads);
    if (!last_arrival) {
        return false;
    }
    __threadfence();
#pragma unroll
    for (int j = 0; j < NT; ++j) {
        acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
    }
    // Unrolled so several shares' loads are in flight at once (the adds keep CTA order).
#pragma unroll 4
    for (int c = c_first; c <= c_last; ++c) {
        const int w = tile == range_begin(c, p.units, p.ctas) / p.k_units ? 0 : 1;
        const float4* share = partial_slot(p.partials, c, w);
#pragma unroll
        for (int j = 0; j < NT; ++j) {
            const float4 s = __ldcg(share + j * kThreads + tid);
            acc[j][0] += s.x;
            acc[j][1] += s.y;
            acc[j][2] += s.z;
            acc[j][3] += s.w;
        }
    }
    return true;
}

// Grid: p.ctas CTAs, one contiguous range of units each; block: the consumer warps, then the
// producer warp.
template <typename W, typename O, int NT, Output OUT>
__global__ void __launch_bounds__(kBlock, 1)
    skinny_mma_kernel(const __grid_constant__ CUtensorMap w_map,
                      const __grid_constant__ CUtensorMap x_map, const MmaParams<W> p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    constexpr int kStages = ring_stages<NT>();
    constexpr int kSlot = slot_bytes<NT>();
    constexpr uint32_t kUnitBytes = static_cast<uint32_t>(kSlot);  // w rows + x rows
    extern __shared__ char smem[];
    // The 128-byte swizzle repeats every 1024 bytes: slots start on such a boundary.
    char* ring = smem + ((1024 - smem_u32(smem) % 1024) % 1024);
    __shared__ uint64_t full[kStages];   // slot's unit has landed (1 arrival + its bytes)
    __shared__ uint64_t empty[kStages];  // slot's unit consumed (one arrival per consumer warp)
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
    const int cta = static_cast<int>(blockIdx.x);
    const int u_begin = range_begin(cta, p.units, p.ctas);
    const int n_units = range_begin(cta + 1, p.units, p.ctas) - u_begin;
    if (threadIdx.x == 0) {
        for (int s = 0; s < kStages; ++s) {
            mbarrier_init(&full[s], 1);
            mbarrier_init(&empty[s], kWarps);
        }
        mbarrier_init_fence();
    }
    __syncthreads();

    if (warp == kWarps) {  // the producer
        if (lane == 0) {
            auto load_w = [&](int i) {
                const int u = u_begin + i;
                const int tile = u / p.k_units;
                const int k0 = (u % p.k_units) * kChunkK;
                char* slot = ring + (i % kStages) * kSlot;
                if constexpr (OUT == Output::kSwiGlu) {
                    tma_load_4d(slot, &w_map, &full[i % kStages], k0, 0, 0, tile * kWarps);
                } else {
                    tma_load_2d(slot, &w_map, &full[i % kStages], k0, tile * kCtaRows);
                }
            };
            auto load_x = [&](int i) {
                const int k0 = ((u_begin + i) % p.k_units) * kChunkK;
                tma_load_2d(ring + (i % kStages) * kSlot + kWUnitBytes, &x_map,
                            &full[i % kStages], k0, 0);
            };
            // The first slots' weights (nothing another kernel writes), then the wait, then
            // their x slices; each slot's barrier expects both.
            const int first = n_units < kStages ? n_units : kStages;
            for (int i = 0; i < first; ++i) {
                mbarrier_arrive_expect_tx(&full[i], kUnitBytes);
                load_w(i);
            }
            grid_dependency_wait();
            allow_dependent_launch();
            for (int i = 0; i < first; ++i) {
                load_x(i);
            }
            for (int i = first; i < n_units; ++i) {
                const int s = i % kStages;
                mbarrier_wait(&empty[s], ((i / kStages) - 1) & 1);
                mbarrier_arrive_expect_tx(&full[s], kUnitBytes);
                load_w(i);
                load_x(i);
            }
        } else {
            grid_dependency_wait();
            allow_dependent_launch();
        }
        return;
    }

    grid_dependency_wait();
    allow_dependent_launch();
    float acc[NT][4];
#pragma unroll
    for (int j = 0; j < NT; ++j) {
        acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
    }
    int tile = u_begin / p.k_units;
    int kpos = u_begin % p.k_units;
    bool whole = kpos == 0;  // this CTA's segment of `tile` started at the tile's first unit
    for (int i = 0; i < n_units; ++i) {
        const int s = i % kStages;
        mbarrier_wait(&full[s], (i / kStages) & 1);
        unit_mma<W, NT>(ring + s * kSlot, warp, lane, acc);
        __syncwarp();
        if (lane == 0) {
            mbarrier_arrive(&empty[s]);  // this warp is done with the slot
        }

        const bool tile_done = kpos == p.k_units - 1;
        if (tile_done || i == n_units - 1) {
            if ((tile_done && whole) || share_tile<W, NT>(p, tile, cta, u_begin, acc)) {
                store_tile<W, O, NT, OUT>(p, tile, warp, lane, acc);
            }
#pragma unroll
            for (int j = 0; j < NT; ++j) {
                acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
            }
            ++tile;
            kpos = 0;
            whole = true;
        } else {
            ++kpos;
        }
    }
#endif
}

template <typename W, typename O, int NT, Output OUT>
cudaError_t launch_nt(MmaParams<W> p, cudaStream_t stream) {
    const int64_t outputs = OUT == Output::kSwiGlu ? p.n / 2 : p.n;
    const int64_t per_tile = OUT == Output::kSwiGlu ? kCtaRows / 2 : kCtaRows;
    const int64_t tiles = (outputs + per_tile - 1) / per_tile;
    if (tiles > kMaxTiles) {
        return cudaErrorInvalidValue;
    }
    p.k_units = static_cast<int>(p.k / kChunkK);
    p.units = static_cast<int>(tiles) * p.k_units;
    p.ctas = std::min(device_sm_count(), p.units);
    // w as [N, K] in tiles of 128 rows, or (SwiGLU) its two halves as [N/2 / 8 groups][2
    // halves][8 rows][K], whose tiles of 8 groups put 8 gate rows before their 8 up rows, 64
    // of each; x as [T, K] in slices of NT * 8 rows.
    CUtensorMap w_map;
    CUtensorMap x_map;
    const uint64_t row_bytes = static_cast<uint64_t>(p.k) * 2;
    bool ok = false;
    if constexpr (OUT == Output::kSwiGlu) {
        const uint64_t half = static_cast<uint64_t>(p.n / 2);
        const uint64_t dims[4] = {static_cast<uint64_t>(p.k), 8, 2, half / 8};
        const uint64_t strides[3] = {row_bytes, half * row_bytes, 8 * row_bytes};
        const uint32_t box[4] = {kChunkK, 8, 2, kWarps};
        ok = encode_tensor_map(&w_map, p.w, 4, dims, strides, box);
    } else {
        const uint64_t dims[2] = {static_cast<uint64_t>(p.k), static_cast<uint64_t>(p.n)};
        const uint64_t strides[1] = {row_bytes};
        const uint32_t box[2] = {kChunkK, kCtaRows};
        ok = encode_tensor_map(&w_map, p.w, 2, dims, strides, box);
    }
    const uint64_t x_dims[2] = {static_cast<uint64_t>(p.k), static_cast<uint64_t>(p.t)};
    const uint64_t x_strides[1] = {static_cast<uint64_t>(p.x_stride) * 2};
    const uint32_t x_box[2] = {kChunkK, NT * 8};
    if (!ok || !encode_tensor_map(&x_map, p.x, 2, x_dims, x_strides, x_box)) {
        return cudaErrorInvalidValue;
    }
    constexpr int kSmem = ring_smem_bytes<NT>();
    static std::atomic<uint64_t> smem_raised{0};
    if (const cudaError_t err =
            ensure_dynamic_smem(skinny_mma_kernel<W, O, NT, OUT>, kSmem, smem_raised);
        err != cudaSuccess) {
        return err;
    }
    return launch_kernel(skinny_mma_kernel<W, O, NT, OUT>, dim3(static_cast<unsigned>(p.ctas)),
                         dim3(kBlock), kSmem, stream, w_map, x_map, p);
}

template <typename W, int NT>
cudaError_t launch_output(const MmaParams<W>& p, ElemType out_type, Output output,
                          cudaStream_t stream) {
    switch (output) {
        case Output::kStore:
            if (out_type == ElemType::kF32) {
                return launch_nt<W, float, NT, Output::kStore>(p, stream);
            }
            return launch_nt<W, W, NT, Output::kStore>(p, stream);
        case Output::kAccumulate:
            return launch_nt<W, W, NT, Output::kAccumulate>(p, stream);
        case Output::kSwiGlu:
            return launch_nt<W, W, NT, Output::kSwiGlu>(p, stream);
    }
    return cudaErrorInvalidValue;
}

template <typename W>
cudaError_t launch_w(void* out, int64_t out_stride, ElemType out_type, const void* x,
                     int64_t x_stride, const void* w, const void* bias, int64_t t, int64_t n,
                     int64_t k, Output output, void* workspace, cudaStream_t stream) {
    MmaParams<W> p{};
    p.out = out;
    p.out_stride = out_stride;
    p.x = static_cast<const W*>(x);
    p.x_stride = x_stride;
    p.w = static_cast<const W*>(w);
    p.bias = static_cast<const W*>(bias);
    p.n = n;
    p.k = k;
    p.t = static_cast<int>(t);
    p.counters = static_cast<int*>(workspace);
    p.partials = reinterpret_cast<float4*>(static_cast<char*>(workspace) + kMaxTiles * 4);
    if (t <= 8) {
        return launch_output<W, 1>(p, out_type, output, stream);
    }
    if (t <= 16) {
        return launch_output<W, 2>(p, out_type, output, stream);
    }
    if (t <= 32) {
        return launch_output<W, 4>(p, out_type, output, stream);
    }
    return launch_output<W, 8>(p, out_type, output, stream);
}

}  // namespace

bool skinny_mma_supported() { return tma_supported(); }

size_t skinny_mma_workspace_bytes() {
    // The counters, then two shares of the largest tile per CTA of the largest grid.
    return static_cast<size_t>(kMaxTiles) * 4 +
           static_cast<size_t>(device_sm_count()) * 2 * kMaxNt * kThreads * sizeof(float4);
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

}  // namespace helexa::kernels
