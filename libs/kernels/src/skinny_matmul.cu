// Decode-time linear out[T, N] = x[T, K] * w[N, K]^T (+ bias) for T <= 4: a weight stream, with
// the input RMSNorm, the residual add or SwiGLU fused in (SkinnyFusion).
//
// Design (why it is shaped this way):
// - The step is bound by reading w once, so every byte of w moves in a 16-byte, warp-coalesced,
//   L1-bypassing load (ld.global.nc.L1::no_allocate.v4), and each lane keeps 8 such loads in
//   flight before touching any of them (R rows x U packs, R * U == 8). With ~16+ resident warps
//   per SM that is 64+ KiB in flight per SM, past what HBM3e latency x bandwidth asks for.
// - Each warp asks L2 for its first tile of weights before grid_dependency_wait() (launch.cuh):
//   weights do not depend on the previous kernel, so under programmatic dependent launch the
//   weight stream starts while the previous kernel drains. At decode sizes most warps own exactly
//   one tile, so much of the matrix is on its way by the time x is ready. (An L2 prefetch holds
//   no registers; loading the tile into registers across the wait made ptxas spill.)
// - A warp owns R rows of w (R = 1 for T <= 2, 2 for T <= 4; SwiGLU: the pair g, g + N/2, so
//   the warp holds both halves of its output): each x pack it fetches and converts serves R rows.
// - x (a few KiB, L2-resident) is read straight from global memory through L1 with __ldg rather
//   than staged in shared memory: no barrier stalls the weight stream, and no K tile loop is
//   needed for K up to 32k. With the fused norm each CTA first reduces its x rows' sums of
//   squares (x is tiny next to the CTA's share of w) and scales every x pack as it is used.
// - When N alone gives too few warps to cover the GPU (small N, tensor-parallel shards), the K
//   range of a row group is split among ks = 2, 4 or 8 warps of the same CTA, whose partial sums
//   meet in shared memory. The hot loop has no bounds checks: full tiles of 32 * U packs run
//   unpredicated, one predicated tail follows.
// - Dot products accumulate in f32 (for T <= 2 two interleaved FMA chains per (row, x row), so a
//   tile's 64-deep chain does not delay the next tile's loads); the warp reduces with xor
//   shuffles; bias, the residual and SwiGLU are applied in f32; each output is rounded once
//   (SwiGLU rounds g, u and silu(g) first, as the separate kernels store them).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "helexa/kernels/skinny_matmul.h"
#include "elem_access.cuh"
#include "launch.cuh"
#include "fused_rms_norm.cuh"

namespace helexa::kernels {
namespace {

constexpr int kWarp = 32;
constexpr int kThreads = 256;
constexpr int kWarps = kThreads / kWarp;
constexpr int kPackElems = 8;  // 2-byte elements per 16-byte pack

using Output = SkinnyFusion::Output;

// Rows of w per warp for T rows of x (SwiGLU: its gate row and its up row).
constexpr int rows_per_warp(int t, Output o) {
    return o == Output::kSwiGlu ? 2 : (t <= 2 ? 1 : 2);
}

// CTAs per SM the register budget must allow (__launch_bounds__ minimum): 16+ warps per SM keep
// 64+ KiB of weight loads in flight.
constexpr int min_ctas_per_sm(int t) { return t <= 2 ? 3 : 2; }

// Independent FMA chains per (row, x row).
constexpr int chains_for(int t) { return t <= 2 ? 2 : 1; }

// 16-byte weight loads per row per tile: R * U == 8 loads in flight per lane.
constexpr int unroll_for(int r) { return 8 / r; }

template <typename W>
struct SkinnyParams {
    void* out;           // [T, N] (SwiGLU: [T, N/2]) of O, row stride out_stride
    int64_t out_stride;
    const W* x;          // [T, K], row stride x_stride (multiple of 8), 16-byte aligned
    int64_t x_stride;
    const W* w;          // [N, K] contiguous, 16-byte aligned
    const W* bias;       // [N] or null
    const W* norm_weight;  // [K] or null (no fused norm)
    float eps;
    int norm_threads;      // launch_rms_norm's reduction threads for K (rms_norm_order.cuh)
    int64_t n;
    int64_t groups;      // row groups of R rows (SwiGLU: N/2)
    int64_t k;
    int ks;              // warps sharing one row group's K range: 1, 2, 4 or 8
};

// Asks L2 for the weights of one tile without waiting for them (no registers held): issued
// before the dependency wait, so the weight stream overlaps the previous kernel's tail and the
// real loads below hit L2.
template <int R, int U>
__device__ __forceinline__ void prefetch_tile(const uint4* const (&wrow)[R], int64_t v,
                                              int64_t v_end) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
#pragma unroll
        for (int r = 0; r < R; ++r) {
            if (v + u * kWarp < v_end) {
                asm volatile("prefetch.global.L2 [%0];" ::"l"(wrow[r] + v + u * kWarp));
            }
        }
    }
}

// One tile of 32 * U packs per lane-row: issue R * U weight loads, then consume them against the
// T rows of x: from global memory, or (SMEM) the CTA's normalised copy in shared memory. CHECK
// guards packs at or past v_end (only the last, partial tile needs it).
template <typename W, int T, int R, int U, int kChains, bool CHECK, bool SMEM>
__device__ __forceinline__ void skinny_tile(const uint4* const (&wrow)[R], const uint4* xbase,
                                            int64_t x_stride_packs, int64_t v, int64_t v_end,
                                            float (&acc)[R][T][kChains]) {
    uint4 wv[R][U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
#pragma unroll
        for (int r = 0; r < R; ++r) {
            if (!CHECK || v + u * kWarp < v_end) {
                wv[r][u] = load_stream(wrow[r] + v + u * kWarp);
            } else {
                wv[r][u] = make_uint4(0u, 0u, 0u, 0u);
            }
        }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
        const int64_t idx = v + u * kWarp;
        if (CHECK && idx >= v_end) {
            continue;
        }
        float wf[R][kPackElems];
#pragma unroll
        for (int r = 0; r < R; ++r) {
            unpack8<W>(wv[r][u], wf[r]);
        }
#pragma unroll
        for (int t = 0; t < T; ++t) {
            float xf[kPackElems];
            const uint4* xp = xbase + t * x_stride_packs + idx;
            unpack8<W>(SMEM ? *xp : __ldg(xp), xf);
#pragma unroll
            for (int r = 0; r < R; ++r) {
#pragma unroll
                for (int j = 0; j < kPackElems; ++j) {
                    acc[r][t][j % kChains] = fmaf(wf[r][j], xf[j], acc[r][t][j % kChains]);
                }
            }
        }
    }
}

// Row r of row group g.
template <Output OUT, int R>
__device__ __forceinline__ int64_t row_of(int64_t g, int r, int64_t n) {
    if constexpr (OUT == Output::kSwiGlu) {
        return g + r * (n / 2);
    } else {
        return g * R + r;
    }
}

template <typename W>
__device__ __forceinline__ float bias_at(const SkinnyParams<W>& p, int64_t row) {
    return p.bias != nullptr ? to_f32(p.bias[row]) : 0.0f;
}

// Stores the finished dot products of row group g for x row t: sums[r] is row r's.
template <typename W, typename O, int R, Output OUT>
__device__ __forceinline__ void store_group(const SkinnyParams<W>& p, int64_t g, int t,
                                            const float (&sums)[R]) {
    O* out = static_cast<O*>(p.out) + t * p.out_stride;
    if constexpr (OUT == Output::kSwiGlu) {
        const float gate = round_to<W>(sums[0] + bias_at(p, g));
        const float up = round_to<W>(sums[1] + bias_at(p, g + p.n / 2));
        out[g] = from_f32<O>(silu_mul_of<W>(gate, up));
    } else {
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const int64_t row = row_of<OUT, R>(g, r, p.n);
            if (row < p.n) {
                float v = sums[r] + bias_at(p, row);
                if constexpr (OUT == Output::kAccumulate) {
                    v += to_f32(out[row]);
                }
                out[row] = from_f32<O>(v);
            }
        }
    }
}

// Row r of a row group g: pointer to its weights (rows past N, in the last group only, re-read
// row N - 1; their sums are never written).
template <typename W, Output OUT, int R>
__device__ __forceinline__ void row_pointers(const SkinnyParams<W>& p, int64_t g,
                                             const uint4* (&wrow)[R]) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
        int64_t row = row_of<OUT, R>(g < p.groups ? g : 0, r, p.n);
        row = row < p.n ? row : p.n - 1;
        wrow[r] = reinterpret_cast<const uint4*>(p.w + row * p.k);
    }
}

// Persistent grid: each CTA walks "units" of kWarps / ks row groups (unit u, u + gridDim.x, ...),
// so the per-CTA start (dependency wait, the fused norm's reduction of x) is paid once per CTA
// rather than once per wave. Warp w of a CTA takes row group w / ks of the unit and the
// (w % ks)-th slice of K. Every thread reaches the barriers and the dependency wait (no early
// return).
template <typename W, typename O, int T, bool NORM, Output OUT>
__global__ void __launch_bounds__(kThreads, min_ctas_per_sm(T))
    skinny_matmul_kernel(const SkinnyParams<W> p) {
    constexpr int R = rows_per_warp(T, OUT);
    constexpr int U = unroll_for(R);
    static_assert(R * T <= kWarp, "one lane per output of a row group");
    __shared__ float partial[kWarps][R * T];

    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
    const int ks = p.ks;
    const int groups_per_cta = kWarps / ks;
    const int part = warp % ks;
    const int64_t units = (p.groups + groups_per_cta - 1) / groups_per_cta;

    const int64_t k_packs = p.k / kPackElems;
    // Slices start on 128-byte boundaries so each warp load touches exactly four lines.
    const int64_t chunk = ((k_packs + ks - 1) / ks + 7) / 8 * 8;
    const int64_t v_begin = part * chunk < k_packs ? part * chunk : k_packs;
    const int64_t v_end = v_begin + chunk < k_packs ? v_begin + chunk : k_packs;
    constexpr int64_t kTile = static_cast<int64_t>(kWarp) * U;

    // This warp's row group in unit u.
    auto group_of = [&](int64_t u) { return u * groups_per_cta + warp / ks; };
    const uint4* wrow[R];
    {
        const int64_t g = group_of(blockIdx.x);
        if (g < p.groups && v_begin < v_end) {
            row_pointers<W, OUT, R>(p, g, wrow);
            prefetch_tile<R, U>(wrow, v_begin + lane, v_end);
        }
    }
    // Everything below reads what the previous kernel wrote (x) or writes (out).
    grid_dependency_wait();
    allow_dependent_launch();

    const auto* xbase = reinterpret_cast<const uint4*>(p.x);
    const int64_t x_stride_packs = p.x_stride / kPackElems;
    // NORM: [T][K / 8] packs of normalised x (dynamic shared memory, skinny_norm_fits).
    extern __shared__ uint4 x_normed[];
    if constexpr (NORM) {
        // Sum the squares in launch_rms_norm's order (rms_norm_order.cuh): physical warp w plays
        // the norm's reduction warps w, w + 8, ...; their sums meet in shared memory.
        constexpr int kMaxNormWarps = 1024 / kWarp;
        __shared__ float red[kMaxNormWarps][T];
        const int norm_warps = p.norm_threads / kWarp;
        for (int vw = warp; vw < norm_warps; vw += kWarps) {
            // The loads of x are unrolled inside (one L2 round trip, not one per pack: this
            // prologue sits between the dependency wait and the weight stream).
            float ss[T];
            norm_warp_sums<W, T>(
                vw, lane, k_packs, p.norm_threads,
                [&](int t, int64_t i) { return __ldg(xbase + t * x_stride_packs + i); }, ss);
#pragma unroll
            for (int t = 0; t < T; ++t) {
                if (lane == 0) {
                    red[vw][t] = ss[t];
                }
            }
        }
        __syncthreads();
        float inv_rms[T];
#pragma unroll
        for (int t = 0; t < T; ++t) {
            float total = 0.0f;
            for (int q = 0; q < norm_warps; ++q) {
                total += red[q][t];
            }
            inv_rms[t] = rsqrtf(total / static_cast<float>(p.k) + p.eps);
        }
        // Normalise x once per CTA into shared memory, rounded as launch_rms_norm stores it
        // (y = to_act(x * inv), out = to_act(w * y)); every warp then reads it from there.
        // Recomputing it per weight row instead costs ~6 ALU ops per weight element.
        const auto* norm_packs = reinterpret_cast<const uint4*>(p.norm_weight);
#pragma unroll 4
        for (int64_t i = threadIdx.x; i < k_packs; i += kThreads) {
            float nf[kPackElems];
            unpack8<W>(__ldg(norm_packs + i), nf);
#pragma unroll
            for (int t = 0; t < T; ++t) {
                x_normed[t * k_packs + i] =
                    normalised_pack<W>(__ldg(xbase + t * x_stride_packs + i), nf, inv_rms[t]);
            }
        }
        __syncthreads();
    }
    // The x every tile reads: the normalised shared copy, or x itself.
    const uint4* xsrc = NORM ? x_normed : xbase;
    const int64_t xsrc_stride = NORM ? k_packs : x_stride_packs;

    constexpr int kChains = chains_for(T);

    for (int64_t u = blockIdx.x; u < units; u += gridDim.x) {
        const int64_t g = group_of(u);
        const bool work = g < p.groups && v_begin < v_end;
        float acc[R][T][kChains];
#pragma unroll
        for (int r = 0; r < R; ++r) {
#pragma unroll
            for (int t = 0; t < T; ++t) {
#pragma unroll
                for (int c = 0; c < kChains; ++c) {
                    acc[r][t][c] = 0.0f;
                }
            }
        }
        if (work) {
            row_pointers<W, OUT, R>(p, g, wrow);
            // The next unit's first tile heads for L2 while this one is read and reduced.
            const int64_t g_next = group_of(u + gridDim.x);
            if (g_next < p.groups) {
                const uint4* next[R];
                row_pointers<W, OUT, R>(p, g_next, next);
                prefetch_tile<R, U>(next, v_begin + lane, v_end);
            }
            int64_t base = v_begin;
            for (; base + kTile <= v_end; base += kTile) {
                skinny_tile<W, T, R, U, kChains, false, NORM>(wrow, xsrc, xsrc_stride,
                                                              base + lane, v_end, acc);
            }
            if (base < v_end) {
                skinny_tile<W, T, R, U, kChains, true, NORM>(wrow, xsrc, xsrc_stride,
                                                             base + lane, v_end, acc);
            }
        }

        // Full xor-butterfly: every lane ends with every sum.
        float sum[R][T];
#pragma unroll
        for (int r = 0; r < R; ++r) {
#pragma unroll
            for (int t = 0; t < T; ++t) {
                sum[r][t] = acc[r][t][0];
#pragma unroll
                for (int c = 1; c < kChains; ++c) {
                    sum[r][t] += acc[r][t][c];
                }
#pragma unroll
                for (int off = kWarp / 2; off > 0; off >>= 1) {
                    sum[r][t] += __shfl_xor_sync(0xffffffffu, sum[r][t], off);
                }
            }
        }

        if (ks == 1) {
            // Lane t stores x row t's outputs of this warp's row group.
#pragma unroll
            for (int t = 0; t < T; ++t) {
                if (lane == t && g < p.groups) {
                    float sums[R];
#pragma unroll
                    for (int r = 0; r < R; ++r) {
                        sums[r] = sum[r][t];
                    }
                    store_group<W, O, R, OUT>(p, g, t, sums);
                }
            }
            continue;
        }

        if (lane == 0) {
#pragma unroll
            for (int r = 0; r < R; ++r) {
#pragma unroll
                for (int t = 0; t < T; ++t) {
                    partial[warp][r * T + t] = sum[r][t];
                }
            }
        }
        __syncthreads();
        const int outputs = groups_per_cta * T;
        for (int i = static_cast<int>(threadIdx.x); i < outputs; i += kThreads) {
            const int gl = i / T;
            const int t = i - gl * T;
            const int64_t gg = u * groups_per_cta + gl;
            if (gg >= p.groups) {
                continue;
            }
            float sums[R];
#pragma unroll
            for (int r = 0; r < R; ++r) {
                float total = 0.0f;
                for (int q = 0; q < ks; ++q) {
                    total += partial[gl * ks + q][r * T + t];
                }
                sums[r] = total;
            }
            store_group<W, O, R, OUT>(p, gg, t, sums);
        }
        __syncthreads();  // partial is rewritten by the next unit
    }
}

template <typename W, typename O, int T, bool NORM, Output OUT>
cudaError_t launch_t(const SkinnyParams<W>& base, cudaStream_t stream) {
    constexpr int R = rows_per_warp(T, OUT);
    constexpr int U = unroll_for(R);
    SkinnyParams<W> p = base;
    p.groups = OUT == Output::kSwiGlu ? p.n / 2 : (p.n + R - 1) / R;
    // Aim for ~64 warp work units per SM: 16-24 warps are resident per SM, so each walks 3-4
    // small units and the tail stays short (a few long units per warp would leave SMs idle at
    // the end). Split K while N alone falls short, as long as each warp keeps at least one full
    // tile (32 * U packs) of K.
    constexpr int64_t kUnitsPerSm = 64;
    const int64_t target_warps = static_cast<int64_t>(device_sm_count()) * kUnitsPerSm;
    const int64_t k_packs = p.k / kPackElems;
    // A split that would leave slices of a tile and a half (Qwen3-8B's down projection: 384 of
    // 1536 packs at ks = 4) is not taken while the current one cuts K into whole tiles: the
    // half tile is a second round trip with half the loads in flight.
    // HELEXA_SKINNY_WHOLE_TILES=0 drops that rule (A/B measurements).
    static const bool whole_tiles = env_on_unless_zero("HELEXA_SKINNY_WHOLE_TILES");
    constexpr int64_t kTilePacks = static_cast<int64_t>(kWarp) * U;
    auto whole = [&](int64_t splits) { return (k_packs / splits) % kTilePacks == 0; };
    int ks = 1;
    while (ks < kWarps && p.groups * ks < target_warps && k_packs / (ks * 2) >= kTilePacks &&
           !(whole_tiles && k_packs % ks == 0 && whole(ks) && !whole(ks * 2))) {
        ks *= 2;
    }
    p.ks = ks;
    const int64_t groups_per_cta = kWarps / ks;
    const int64_t units = (p.groups + groups_per_cta - 1) / groups_per_cta;
    // One resident wave of CTAs walks every unit (the kernel's loop). Occupancy is asked per
    // kernel instantiation with the most shared memory a fused norm may take, once.
    const size_t smem = NORM ? static_cast<size_t>(T * p.k) * 2 : 0;
    static const int64_t resident = [] {
        int per_sm = 0;
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                &per_sm, skinny_matmul_kernel<W, O, T, NORM, OUT>, kThreads,
                NORM ? kSkinnyNormSmemBytes : 0) != cudaSuccess ||
            per_sm <= 0) {
            per_sm = min_ctas_per_sm(T);
        }
        return static_cast<int64_t>(per_sm) * device_sm_count();
    }();
    const int64_t blocks = units < resident ? units : resident;
    return launch_kernel(skinny_matmul_kernel<W, O, T, NORM, OUT>,
                         dim3(static_cast<unsigned>(blocks)), dim3(kThreads), smem, stream, p);
}

template <typename W, int T, bool NORM>
cudaError_t launch_output(const SkinnyParams<W>& p, ElemType out_type, Output output,
                          cudaStream_t stream) {
    switch (output) {
        case Output::kStore:
            if (out_type == ElemType::kF32) {
                return launch_t<W, float, T, NORM, Output::kStore>(p, stream);
            }
            return launch_t<W, W, T, NORM, Output::kStore>(p, stream);
        case Output::kAccumulate:
            return launch_t<W, W, T, NORM, Output::kAccumulate>(p, stream);
        case Output::kSwiGlu:
            return launch_t<W, W, T, NORM, Output::kSwiGlu>(p, stream);
    }
    return cudaErrorInvalidValue;
}

template <typename W, int T>
cudaError_t launch_rows(const SkinnyParams<W>& p, ElemType out_type, Output output,
                        cudaStream_t stream) {
    if (p.norm_weight != nullptr) {
        return launch_output<W, T, true>(p, out_type, output, stream);
    }
    return launch_output<W, T, false>(p, out_type, output, stream);
}

template <typename W>
cudaError_t launch_w(void* out, int64_t out_stride, ElemType out_type, const void* x,
                     int64_t x_stride, const void* w, const void* bias, int64_t t, int64_t n,
                     int64_t k, const SkinnyFusion& f, cudaStream_t stream) {
    const SkinnyParams<W> p{out,
                            out_stride,
                            static_cast<const W*>(x),
                            x_stride,
                            static_cast<const W*>(w),
                            static_cast<const W*>(bias),
                            static_cast<const W*>(f.norm_weight),
                            f.eps,
                            static_cast<int>(norm_reduce_threads(k, kPackElems)),
                            n,
                            0,
                            k,
                            1};
    switch (t) {
        case 1:
            return launch_rows<W, 1>(p, out_type, f.output, stream);
        case 2:
            return launch_rows<W, 2>(p, out_type, f.output, stream);
        case 3:
            return launch_rows<W, 3>(p, out_type, f.output, stream);
        case 4:
            return launch_rows<W, 4>(p, out_type, f.output, stream);
        default:
            return cudaErrorInvalidValue;
    }
}

}  // namespace

cudaError_t launch_skinny_matmul(void* out, int64_t out_stride, ElemType out_type, const void* x,
                                 int64_t x_stride, const void* w, const void* bias, int64_t T,
                                 int64_t N, int64_t K, ElemType type, const SkinnyFusion& fusion,
                                 cudaStream_t stream) {
    if (!skinny_types_supported(type, out_type, fusion.output)) {
        return cudaErrorInvalidValue;
    }
    if (T < 0 || T > kSkinnyMaxRows || N < 0 || K <= 0 || K % kPackElems != 0 ||
        x_stride % kPackElems != 0 || x_stride < K ||
        (fusion.output == Output::kSwiGlu && N % 2 != 0)) {
        return cudaErrorInvalidValue;
    }
    if (T == 0 || N == 0) {
        return cudaSuccess;
    }
    const int64_t out_cols = fusion.output == Output::kSwiGlu ? N / 2 : N;
    if (out == nullptr || x == nullptr || w == nullptr || !aligned16(x) || !aligned16(w) ||
        (T > 1 && out_stride < out_cols) ||
        (fusion.norm_weight != nullptr &&
         (!aligned16(fusion.norm_weight) || !skinny_norm_fits(T, K)))) {
        return cudaErrorInvalidValue;
    }
    if (type == ElemType::kBF16) {
        return launch_w<__nv_bfloat16>(out, out_stride, out_type, x, x_stride, w, bias, T, N, K,
                                       fusion, stream);
    }
    return launch_w<__half>(out, out_stride, out_type, x, x_stride, w, bias, T, N, K, fusion,
                            stream);
}

}  // namespace helexa::kernels
