// Greedy sampling on the device: per-row argmax of f32 logits.
//
// Each row is read by a thread-block cluster of C = 8 CTAs of 1024 threads, each CTA a
// contiguous eighth of the row: one CTA per row used to walk a 152k vocab in ten dependent
// rounds of loads (18 us on an H200's decode critical path at batch 1). Devices without clusters
// (compute capability below 9.0) run the same kernel with C = 1, one CTA a row (clusters.cuh).
// Each thread scans a strided share of its CTA's slice (16-byte loads, kUnroll in flight) keeping
// its best (value, index); warp shuffles and shared memory pick the CTA's winner, and CTA 0 of the
// cluster merges the C winners through distributed shared memory (no global workspace, so the
// launcher stays a pure function of its arguments). Index order is preserved at every step (a thread
// visits its indices in increasing order and keeps the first of equal values; merges prefer the
// lower index), so ties resolve to the lowest index like the CPU sampler.
#include <cuda_runtime.h>

#include <cstdint>

#include "clusters.cuh"
#include "helexa/kernels/sampling.h"
#include "launch.cuh"
#include "row_best.cuh"

namespace helexa::kernels {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarp = 32;
constexpr int kUnroll = 4;
constexpr int kCluster = 8;  // CTAs per row where clusters exist (the portable cluster size)

using Best = RowBest;

__device__ __forceinline__ void consider(Best& b, float v, int32_t i) {
    if (isfinite(v)) {
        if (v > b.key || b.id < 0) {
            b.key = v;
            b.id = i;
        }
    } else if (v > 0.0f) {  // +inf; NaN compares false and -inf is below 0
        b.pos_inf = 1;
    }
}

// The best of columns [begin, end) of one row (end - begin a multiple of 4 and begin 16-byte
// aligned in floats when VEC4), reduced over the CTA; valid in every thread of warp 0 (lane 0
// holds it; the rest hold copies after the shuffle merge).
template <bool VEC4>
__device__ __forceinline__ Best cta_best(const float* row, int64_t begin, int64_t end,
                                         Best (&warp_slots)[kThreads / kWarp]) {
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
    Best b = no_row_best();
    if constexpr (VEC4) {
        const auto* row4 = reinterpret_cast<const float4*>(row);
        const int64_t e4 = end / 4;
        int64_t c = begin / 4 + threadIdx.x;
        // Full rounds of kUnroll packs per thread: loads issued before any is used.
        for (; c + (kUnroll - 1) * kThreads < e4; c += kUnroll * kThreads) {
            float4 v[kUnroll];
#pragma unroll
            for (int u = 0; u < kUnroll; ++u) {
                v[u] = __ldg(row4 + c + u * kThreads);
            }
#pragma unroll
            for (int u = 0; u < kUnroll; ++u) {
                const auto base = static_cast<int32_t>((c + u * kThreads) * 4);
                consider(b, v[u].x, base);
                consider(b, v[u].y, base + 1);
                consider(b, v[u].z, base + 2);
                consider(b, v[u].w, base + 3);
            }
        }
        for (; c < e4; c += kThreads) {
            const float4 v = __ldg(row4 + c);
            const auto base = static_cast<int32_t>(c * 4);
            consider(b, v.x, base);
            consider(b, v.y, base + 1);
            consider(b, v.z, base + 2);
            consider(b, v.w, base + 3);
        }
    } else {
        for (int64_t c = begin + threadIdx.x; c < end; c += kThreads) {
            consider(b, __ldg(row + c), static_cast<int32_t>(c));
        }
    }
    b = warp_row_best(b);
    if (lane == 0) {
        warp_slots[warp] = b;
    }
    __syncthreads();
    if (warp == 0) {
        b = warp_row_best(warp_slots[lane]);  // kThreads / kWarp == kWarp entries
    }
    return b;
}

// logits: [rows, vocab] contiguous f32; out_ids: int32 [rows]. VEC4: the row is read as float4
// (vocab % 4 == 0 and a 16-byte aligned base). Grid (C, row slots) in clusters of C along x;
// every thread reaches both cluster barriers of every row (no early return).
// Two CTAs an SM (<= 32 registers): at 37 registers one 1024-thread CTA filled an SM's register
// file, so 32 rows' 256 CTAs (clusters of 8) ran in two waves. Run 27: 19.0 -> 16.3 us a
// 32-stream step, 31.2 -> 24.2 at 64 (the 12 bytes it spills cost less than the second wave).
template <int C, bool VEC4>
__global__ void __launch_bounds__(kThreads, 2)
    argmax_rows_kernel(const float* logits, int64_t rows, int64_t vocab, int32_t* out_ids) {
    // Nothing before this reads or writes what other kernels touch (launch.cuh).
    grid_dependency_wait();
    allow_dependent_launch();
    __shared__ Best warp_slots[kThreads / kWarp];
    __shared__ Best slice_best;
    const int rank = group_rank<C>();
    // Slices of whole float4 packs, so every slice start stays 16-byte aligned.
    const int64_t slice = (vocab + 4 * C - 1) / (4 * C) * 4;
    const int64_t begin = rank * slice < vocab ? rank * slice : vocab;
    const int64_t end = begin + slice < vocab ? begin + slice : vocab;
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
        const Best b = cta_best<VEC4>(logits + r * vocab, begin, end, warp_slots);
        if (threadIdx.x == 0) {
            slice_best = b;
        }
        group_sync<C>();  // every slice's winner is published
        if (rank == 0 && threadIdx.x < kWarp) {
            Best o = no_row_best();
            if (static_cast<int>(threadIdx.x) < C) {
                o = *group_peer<C>(&slice_best, static_cast<int>(threadIdx.x));
            }
            o = warp_row_best(o);
            if (threadIdx.x == 0) {
                out_ids[r] = o.pos_inf != 0 ? -1 : o.id;
            }
        }
        group_sync<C>();  // slice_best and warp_slots are reused by the next row
    }
}

static_assert(kThreads / kWarp == kWarp, "the final merge is one warp over all warp results");

}  // namespace

cudaError_t launch_argmax_rows(const float* logits, int64_t rows, int64_t vocab, int32_t* out_ids,
                               cudaStream_t stream) {
    if (rows < 0 || vocab <= 0 || vocab > INT32_MAX) {
        return cudaErrorInvalidValue;
    }
    if (rows == 0) {
        return cudaSuccess;
    }
    if (logits == nullptr || out_ids == nullptr) {
        return cudaErrorInvalidValue;
    }
    const bool vec4 = vocab % 4 == 0 && reinterpret_cast<uintptr_t>(logits) % 16 == 0;
    const unsigned slots = static_cast<unsigned>(rows < 65535 ? rows : 65535);
    cudaError_t launched = cudaSuccess;
    if (clusters_supported()) {
        const dim3 grid(kCluster, slots);
        launched = vec4 ? launch_kernel_in_clusters(argmax_rows_kernel<kCluster, true>, grid,
                                                    kThreads, 0, stream, kCluster, logits, rows,
                                                    vocab, out_ids)
                        : launch_kernel_in_clusters(argmax_rows_kernel<kCluster, false>, grid,
                                                    kThreads, 0, stream, kCluster, logits, rows,
                                                    vocab, out_ids);
    } else {
        const dim3 grid(1, slots);
        launched = vec4 ? launch_kernel(argmax_rows_kernel<1, true>, grid, kThreads, 0, stream,
                                        logits, rows, vocab, out_ids)
                        : launch_kernel(argmax_rows_kernel<1, false>, grid, kThreads, 0, stream,
                                        logits, rows, vocab, out_ids);
    }
    if (launched != cudaSuccess) {
        return launched;
    }
    return cudaGetLastError();
}

}  // namespace helexa::kernels
