// Small-batch linear on tensor cores: out[T, N] = x[T, K] * w[N, K]^T (+ bias) for T <= 64, with
// the residual add or SwiGLU fused in (skinny_mma_matmul.h).
//
// Design (why it is shaped this way):
// - Bound by reading w once, like the CUDA-core skinny matmul. Every byte of w moves by a 16-byte
//   cp.async (L2 only) into a per-lane ring of kStages K blocks in shared memory: a warp keeps
//   8 KiB streaming while it multiplies, without holding registers for it. (Version 1 held the
//   loads in registers: 4 KiB a warp, a DRAM round trip per round, 0.31-0.80 of copy bandwidth.)
// - mma.sync m16n8k16 from those packs, no ldmatrix: w is the A operand (a warp owns 16 rows),
//   x^T the B operand (8 rows of x per n-tile). A dot product does not care in which order K is
//   summed, so K is permuted inside each 32-wide block such that one 16-byte pack of a row (8
//   consecutive elements) is exactly what the lane's A fragments hold for two k16 steps: lane
//   (g, t) copies elements 8t..8t+7 of the block for rows g and g + 8; words .x/.y feed step 0
//   (logical k 2t.., 2t+8..), .z/.w step 1. Its x loads (16 bytes of x row 8j + g, same
//   elements) are then exactly its B fragments. Each lane reads back only what it copied.
// - A CTA is 8 warps on 8 consecutive row tiles (128 rows; SwiGLU: 64 outputs, each tile 8 gate
//   rows then their 8 up rows, so one lane ends up holding both halves of an output) over the
//   same K range: the x slice is read from L2 once per CTA and served to the other warps by L1.
// - N alone gives too few CTAs for the smaller projections (o_proj: 32), so K is split across a
//   thread-block cluster of up to 8 CTAs; each CTA leaves its partial sums in its own shared
//   memory (the ring, once drained) and the cluster reduces them through distributed shared
//   memory, each CTA finishing a share of the outputs, the peers' reads issued together (no
//   global workspace, no atomics, nothing to reset between graph replays).
// - Weights are asked of L2 before grid_dependency_wait() (launch.cuh): under programmatic
//   dependent launch the weight stream starts while the previous kernel drains.
// - Accumulation in f32; bias, the residual and SwiGLU in f32; each output rounded once (SwiGLU
//   rounds g, u and silu(g) first, as the separate kernels store them), as skinny_matmul.cu does.
#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>

#include "async_copy.cuh"
#include "elem_access.cuh"
#include "helexa/kernels/skinny_mma_matmul.h"
#include "launch.cuh"
#include "mma.cuh"

namespace helexa::kernels {
namespace {

namespace cg = cooperative_groups;

constexpr int kWarp = 32;
constexpr int kWarps = 8;
constexpr int kThreads = kWarps * kWarp;
constexpr int kTileRows = 16;                 // rows of w per warp: the mma's M
constexpr int kCtaRows = kWarps * kTileRows;  // rows of w per CTA
constexpr int kBlockK = 32;                   // K per 16-byte load of a row: two k16 steps
constexpr int kPacksPerBlock = kBlockK / 8;   // 16-byte packs per row and block
// K blocks each lane keeps in flight through its shared-memory ring (8 KiB a warp).
constexpr int kStages = 8;
constexpr int kRingBytes = kStages * 2 * kThreads * 16;
constexpr int kMaxCluster = 8;  // the portable cluster size

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
    int cluster;             // CTAs splitting K (the cluster size)
    int64_t blocks_per_cta;  // K blocks of each CTA's slice
};

// The row of w that row r (0..15) of warp tile `tile` reads, and whether its output exists (rows
// past the end read row 0; their sums are never stored). SwiGLU: rows 0..7 are the gate rows of
// outputs tile * 8 + r, rows 8..15 the matching up rows.
template <Output OUT>
__device__ __forceinline__ int64_t tile_row(int64_t tile, int r, int64_t n) {
    if constexpr (OUT == Output::kSwiGlu) {
        const int64_t f = tile * 8 + (r & 7);
        return f < n / 2 ? (r < 8 ? f : n / 2 + f) : 0;
    } else {
        const int64_t row = tile * kTileRows + r;
        return row < n ? row : 0;
    }
}

// One 32-wide K block: two k16 mma steps per n-tile. w_lo / w_hi: this lane's 16-byte packs of rows
// g and g + 8; x: this lane's pack of x row 8j + g for n-tile j.
template <typename W, int NT>
__device__ __forceinline__ void block_mma(const uint4& w_lo, const uint4& w_hi,
                                          const uint4* const (&x)[NT], int64_t pack,
                                          float (&acc)[NT][4]) {
    const uint32_t a0[4] = {w_lo.x, w_hi.x, w_lo.y, w_hi.y};
    const uint32_t a1[4] = {w_lo.z, w_hi.z, w_lo.w, w_hi.w};
#pragma unroll
    for (int j = 0; j < NT; ++j) {
        const uint4 xv = __ldg(x[j] + pack);
        mma_16816<W>(acc[j], a0, xv.x, xv.y);
        mma_16816<W>(acc[j], a1, xv.z, xv.w);
    }
}

template <typename W>
__device__ __forceinline__ float bias_at(const MmaParams<W>& p, int64_t row) {
    return p.bias != nullptr ? to_f32(p.bias[row]) : 0.0f;
}

// Grid: (output groups x cluster) CTAs, cluster CTAs per group splitting K. Every thread reaches
// both cluster barriers (no early return).
template <typename W, typename O, int NT, Output OUT>
__global__ void __launch_bounds__(kThreads, 2) skinny_mma_kernel(const MmaParams<W> p) {
    constexpr int kCols = NT * 8;
    // Rows padded by 4 floats: 16-byte aligned for the reduction's float4 reads, and the fragment
    // stores below spread over twice the banks.
    constexpr int kStride = kCols + 4;
    static_assert(kCtaRows * kStride * 4 <= kRingBytes, "the partial sums reuse the ring");
    extern __shared__ uint4 ring[];  // [kStages][2][kThreads] weight packs, then partial sums
    float* partial = reinterpret_cast<float*>(ring);

    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
    const int g = lane / 4;
    const int tq = lane % 4;
    const int rank = static_cast<int>(blockIdx.x) % p.cluster;
    const int64_t group = blockIdx.x / p.cluster;
    const int64_t tile = group * kWarps + warp;

    const int64_t k_packs = p.k / 8;
    const int64_t k_blocks = p.k / kBlockK;
    const int64_t kb_begin = min(rank * p.blocks_per_cta, k_blocks);
    const int64_t kb_end = min(kb_begin + p.blocks_per_cta, k_blocks);
    const auto* wv = reinterpret_cast<const uint4*>(p.w);
    const uint4* w_lo = wv + tile_row<OUT>(tile, g, p.n) * k_packs + tq;
    const uint4* w_hi = wv + tile_row<OUT>(tile, g + 8, p.n) * k_packs + tq;

    // The weight stream: a per-lane ring of kStages K blocks in shared memory, filled by cp.async
    // (nothing held in registers while in flight: 8 KiB per warp keeps streaming while the warp
    // multiplies). Each lane reads back only the 32 bytes it copied, so no barrier is needed; one
    // commit group per block keeps the wait count fixed.
    auto slot = [&](int stage, int half) {
        return ring + (stage * 2 + half) * kThreads + static_cast<int>(threadIdx.x);
    };
    const int64_t n_blocks = kb_end - kb_begin;
    auto issue = [&](int64_t i, int stage) {
        const int64_t pack = (kb_begin + i) * kPacksPerBlock;
        cp_async16(slot(stage, 0), w_lo + pack, true);
        cp_async16(slot(stage, 1), w_hi + pack, true);
    };
#pragma unroll
    for (int s = 0; s < kStages; ++s) {
        if (s < n_blocks) {
            issue(s, s);
        }
        cp_async_commit();
    }
    // Everything below reads what the previous kernel wrote (x) or writes (out); the ring's first
    // kStages blocks (weights only) are already on their way.
    grid_dependency_wait();
    allow_dependent_launch();

    const uint4* xrow[NT];
#pragma unroll
    for (int j = 0; j < NT; ++j) {
        const int tok = min(j * 8 + g, p.t - 1);  // rows past T re-read the last; never stored
        xrow[j] = reinterpret_cast<const uint4*>(p.x + static_cast<int64_t>(tok) * p.x_stride) + tq;
    }
    float acc[NT][4];
#pragma unroll
    for (int j = 0; j < NT; ++j) {
        acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
    }
    for (int64_t i = 0; i < n_blocks; ++i) {
        cp_async_wait<kStages - 1>();  // block i has landed
        const int stage = static_cast<int>(i % kStages);
        const uint4 lo = *slot(stage, 0);
        const uint4 hi = *slot(stage, 1);
        block_mma<W, NT>(lo, hi, xrow, (kb_begin + i) * kPacksPerBlock, acc);
        // The slot is free once its words fed the mma above: refill it kStages blocks ahead.
        if (i + kStages < n_blocks) {
            issue(i + kStages, stage);
        }
        cp_async_commit();
    }
    cp_async_wait<0>();
    __syncthreads();  // the ring becomes the partial sums below

    // C fragments: acc[j][0..1] are rows g, acc[j][2..3] rows g + 8, columns (x rows) 8j + 2tq +
    // {0, 1}: one 8-byte store each.
#pragma unroll
    for (int j = 0; j < NT; ++j) {
        const int col = 8 * j + 2 * tq;
        const int row = warp * kTileRows + g;
        *reinterpret_cast<float2*>(&partial[row * kStride + col]) =
            make_float2(acc[j][0], acc[j][1]);
        *reinterpret_cast<float2*>(&partial[(row + 8) * kStride + col]) =
            make_float2(acc[j][2], acc[j][3]);
    }
    cg::cluster_group cluster = cg::this_cluster();
    if (p.cluster > 1) {
        cluster.sync();
    } else {
        __syncthreads();
    }
    // Columns c..c + 3 of CTA-local row r summed over the cluster's K slices. The peers' loads are
    // independent (one distributed-shared-memory round trip per item, not one per peer).
    auto total4 = [&](int r, int c) {
        const int off = r * kStride + c;
        if (p.cluster == 1) {
            return *reinterpret_cast<const float4*>(&partial[off]);
        }
        float4 part[kMaxCluster];
#pragma unroll
        for (int q = 0; q < kMaxCluster; ++q) {
            if (q < p.cluster) {
                part[q] =
                    *reinterpret_cast<const float4*>(cluster.map_shared_rank(partial, q) + off);
            }
        }
        float4 s = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
        for (int q = 0; q < kMaxCluster; ++q) {
            if (q < p.cluster) {
                s.x += part[q].x;
                s.y += part[q].y;
                s.z += part[q].z;
                s.w += part[q].w;
            }
        }
        return s;
    };

    // Each CTA of the cluster finishes a share of the group's outputs, four x rows of one output at
    // a time (one 16-byte read per peer).
    constexpr int kOutputs = OUT == Output::kSwiGlu ? kCtaRows / 2 : kCtaRows;
    const int quads = (p.t + 3) / 4;
    const int n_items = kOutputs * quads;
    for (int i = rank * kThreads + static_cast<int>(threadIdx.x); i < n_items;
         i += p.cluster * kThreads) {
        const int o = i % kOutputs;
        const int t0 = (i / kOutputs) * 4;
        if constexpr (OUT == Output::kSwiGlu) {
            const int64_t f = group * kOutputs + o;  // output feature
            if (f >= p.n / 2) {
                continue;
            }
            const int r = (o / 8) * kTileRows + o % 8;  // its gate row in the CTA; up is r + 8
            const float4 gs = total4(r, t0);
            const float4 us = total4(r + 8, t0);
            const float g4[4] = {gs.x, gs.y, gs.z, gs.w};
            const float u4[4] = {us.x, us.y, us.z, us.w};
            const float gb = bias_at(p, f);
            const float ub = bias_at(p, p.n / 2 + f);
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                if (t0 + e < p.t) {
                    const float gate = round_to<W>(g4[e] + gb);
                    const float up = round_to<W>(u4[e] + ub);
                    const float sg = round_to<W>(gate / (1.0f + expf(-gate)));
                    static_cast<O*>(p.out)[static_cast<int64_t>(t0 + e) * p.out_stride + f] =
                        from_f32<O>(sg * up);
                }
            }
        } else {
            const int64_t row = group * kCtaRows + o;
            if (row >= p.n) {
                continue;
            }
            const float4 s4 = total4(o, t0);
            const float v4[4] = {s4.x, s4.y, s4.z, s4.w};
            const float b = bias_at(p, row);
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                if (t0 + e < p.t) {
                    O* out = static_cast<O*>(p.out) + static_cast<int64_t>(t0 + e) * p.out_stride;
                    float v = v4[e] + b;
                    if constexpr (OUT == Output::kAccumulate) {
                        v += to_f32(out[row]);
                    }
                    out[row] = from_f32<O>(v);
                }
            }
        }
    }
    if (p.cluster > 1) {
        cluster.sync();  // peers may still be reading this CTA's partial sums
    }
}

template <typename W, typename O, int NT, Output OUT>
cudaError_t launch_nt(MmaParams<W> p, cudaStream_t stream) {
    const int64_t outputs = OUT == Output::kSwiGlu ? p.n / 2 : p.n;
    const int64_t per_cta = OUT == Output::kSwiGlu ? kCtaRows / 2 : kCtaRows;
    const int64_t groups = (outputs + per_cta - 1) / per_cta;
    const int64_t k_blocks = p.k / kBlockK;
    // Split K over a cluster while the doubled grid still fits one wave of ~2 CTAs per SM (every
    // CTA does the same work, so a partial second wave costs as much as the first: ncu showed qkv
    // at 48 groups x 8 = 384 CTAs with only 240 resident in clusters of 8), as long as each CTA
    // keeps at least two rings' worth of K blocks.
    const int64_t target = 2 * static_cast<int64_t>(device_sm_count()) * 7 / 8;
    int cluster = 1;
    while (cluster < kMaxCluster && groups * cluster * 2 <= target &&
           k_blocks / (cluster * 2) >= 2 * kStages) {
        cluster *= 2;
    }
    p.cluster = cluster;
    p.blocks_per_cta = (k_blocks + cluster - 1) / cluster;
    static std::atomic<uint64_t> smem_raised{0};
    if (const cudaError_t err =
            ensure_dynamic_smem(skinny_mma_kernel<W, O, NT, OUT>, kRingBytes, smem_raised);
        err != cudaSuccess) {
        return err;
    }
    return launch_kernel_in_clusters(skinny_mma_kernel<W, O, NT, OUT>,
                                     dim3(static_cast<unsigned>(groups * cluster)), dim3(kThreads),
                                     kRingBytes, stream, static_cast<unsigned>(cluster), p);
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
                     int64_t k, Output output, cudaStream_t stream) {
    const MmaParams<W> p{out,
                         out_stride,
                         static_cast<const W*>(x),
                         x_stride,
                         static_cast<const W*>(w),
                         static_cast<const W*>(bias),
                         n,
                         k,
                         static_cast<int>(t),
                         1,
                         0};
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

cudaError_t launch_skinny_mma_matmul(void* out, int64_t out_stride, ElemType out_type,
                                     const void* x, int64_t x_stride, const void* w,
                                     const void* bias, int64_t T, int64_t N, int64_t K,
                                     ElemType type, const SkinnyFusion& fusion,
                                     cudaStream_t stream) {
    if (!skinny_types_supported(type, out_type, fusion.output)) {
        return cudaErrorInvalidValue;
    }
    if (T == 0 || N == 0) {
        return T < 0 || N < 0 ? cudaErrorInvalidValue : cudaSuccess;
    }
    const int64_t out_cols = fusion.output == Output::kSwiGlu ? N / 2 : N;
    if (!skinny_mma_fits(T, K) || N < 0 || x_stride % 8 != 0 || x_stride < K ||
        (fusion.output == Output::kSwiGlu && N % 2 != 0) || fusion.norm_weight != nullptr ||
        out == nullptr || x == nullptr || w == nullptr || !aligned16(x) || !aligned16(w) ||
        (T > 1 && out_stride < out_cols)) {
        return cudaErrorInvalidValue;
    }
    if (type == ElemType::kBF16) {
        return launch_w<__nv_bfloat16>(out, out_stride, out_type, x, x_stride, w, bias, T, N, K,
                                       fusion.output, stream);
    }
    return launch_w<__half>(out, out_stride, out_type, x, x_stride, w, bias, T, N, K, fusion.output,
                            stream);
}

}  // namespace helexa::kernels
