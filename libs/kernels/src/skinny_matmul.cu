// Decode-time linear out[T, N] = x[T, K] * w[N, K]^T (+ bias) for T <= 8: a weight stream.
//
// Design (why it is shaped this way):
// - The step is bound by reading w once, so every byte of w moves in a 16-byte, warp-coalesced,
//   L1-bypassing load (ld.global.nc.L1::no_allocate.v4), and each lane keeps 8 such loads in
//   flight before touching any of them (R rows x U packs, R * U == 8). With ~16+ resident warps
//   per SM that is 64+ KiB in flight per SM, past what HBM3e latency x bandwidth asks for.
// - A warp owns R consecutive rows of w (R = 1, 2, 4 for T <= 2, <= 4, <= 8): each x pack it
//   fetches and converts serves R rows, which keeps the x traffic through L1 (T * 16 B per w pack,
//   divided by R) and the x conversions well under the SM's L1 and ALU rates at T = 8.
// - x (a few KiB to 192 KiB, L2-resident) is read straight from global memory through L1 with
//   __ldg rather than staged in shared memory: no barrier stalls the weight stream, and no K tile
//   loop is needed for K up to 32k.
// - When N alone gives too few warps to cover the GPU (small N, tensor-parallel shards), the K
//   range of a row group is split among ks = 2, 4 or 8 warps of the same CTA, whose partial sums
//   meet in shared memory. The hot loop has no bounds checks: full tiles of 32 * U packs run
//   unpredicated, one predicated tail follows.
// - Dot products accumulate in f32 (for T <= 2 two interleaved FMA chains per (row, x row), so a
//   tile's 64-deep chain does not delay the next tile's loads); the warp reduces with xor
//   shuffles; bias is added in f32; the result is rounded once to out_type.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "helexa/kernels/skinny_matmul.h"

namespace helexa::kernels {
namespace {

constexpr int kWarp = 32;
constexpr int kThreads = 256;
constexpr int kWarps = kThreads / kWarp;
constexpr int kPackElems = 8;  // 2-byte elements per 16-byte pack

// Rows of w per warp for T rows of x.
constexpr int rows_per_warp(int t) { return t <= 2 ? 1 : (t <= 4 ? 2 : 4); }

// CTAs per SM the register budget must allow (__launch_bounds__ minimum): 16+ warps per SM keep
// 64+ KiB of weight loads in flight. Without the cap ptxas hoists every x load of a tile and
// T = 8 needs 150 registers, leaving one CTA (8 warps) per SM.
constexpr int min_ctas_per_sm(int t) { return t <= 2 ? 3 : 2; }

// Independent FMA chains per (row, x row).
constexpr int chains_for(int t) { return t <= 2 ? 2 : 1; }

// 16-byte weight loads per row per tile: R * U loads in flight per lane.
constexpr int unroll_for(int t) { return t <= 4 ? 8 / rows_per_warp(t) : 1; }

template <typename W>
struct SkinnyParams {
    void* out;           // [T, N] of O, row stride out_stride
    int64_t out_stride;
    const W* x;          // [T, K], row stride x_stride (multiple of 8), 16-byte aligned
    int64_t x_stride;
    const W* w;          // [N, K] contiguous, 16-byte aligned
    const W* bias;       // [N] or null
    int64_t n;
    int64_t k;
    int ks;              // warps sharing one row group's K range: 1, 2, 4 or 8
};

// Streaming 16-byte load of weights: read once per call, so keep them out of L1.
__device__ __forceinline__ uint4 load_stream(const uint4* p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

// Two packed 2-byte values -> two floats (element 2i in .x, 2i + 1 in .y).
template <typename W>
__device__ __forceinline__ float2 unpack2(uint32_t word);

template <>
__device__ __forceinline__ float2 unpack2<__nv_bfloat16>(uint32_t word) {
    // bf16 is the top half of an f32: widening is a shift / mask, exact.
    return make_float2(__uint_as_float(word << 16), __uint_as_float(word & 0xffff0000u));
}

template <>
__device__ __forceinline__ float2 unpack2<__half>(uint32_t word) {
    __half2 h;
    static_assert(sizeof(h) == sizeof(word));
    memcpy(&h, &word, sizeof(word));
    return __half22float2(h);
}

template <typename W>
__device__ __forceinline__ void unpack8(const uint4& p, float (&f)[kPackElems]) {
    const float2 a = unpack2<W>(p.x);
    const float2 b = unpack2<W>(p.y);
    const float2 c = unpack2<W>(p.z);
    const float2 d = unpack2<W>(p.w);
    f[0] = a.x;
    f[1] = a.y;
    f[2] = b.x;
    f[3] = b.y;
    f[4] = c.x;
    f[5] = c.y;
    f[6] = d.x;
    f[7] = d.y;
}

template <typename O>
__device__ __forceinline__ O to_out(float v);
template <>
__device__ __forceinline__ float to_out<float>(float v) {
    return v;
}
template <>
__device__ __forceinline__ __half to_out<__half>(float v) {
    return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 to_out<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}

__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }

// One tile of 32 * U packs per lane-row: issue R * U weight loads, then consume them against the
// T rows of x. CHECK guards packs at or past v_end (only the last, partial tile needs it).
template <typename W, int T, int R, int U, int kChains, bool CHECK>
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
            unpack8<W>(__ldg(xbase + t * x_stride_packs + idx), xf);
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

// Grid: one CTA per kWarps / ks row groups of R rows. Warp w of a CTA takes row group w / ks and
// the (w % ks)-th slice of K. Every thread reaches the barrier (no early return).
template <typename W, typename O, int T>
__global__ void __launch_bounds__(kThreads, min_ctas_per_sm(T))
    skinny_matmul_kernel(const SkinnyParams<W> p) {
    constexpr int R = rows_per_warp(T);
    constexpr int U = unroll_for(T);
    static_assert(R * T <= kWarp, "one lane per output of a row group");
    __shared__ float partial[kWarps][R * T];

    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
    const int ks = p.ks;
    const int groups_per_cta = kWarps / ks;
    const int64_t n0 =
        (static_cast<int64_t>(blockIdx.x) * groups_per_cta + warp / ks) * R;  // first row
    const int part = warp % ks;

    const int64_t k_packs = p.k / kPackElems;
    // Slices start on 128-byte boundaries so each warp load touches exactly four lines.
    const int64_t chunk = ((k_packs + ks - 1) / ks + 7) / 8 * 8;
    const int64_t v_begin = part * chunk < k_packs ? part * chunk : k_packs;
    const int64_t v_end = v_begin + chunk < k_packs ? v_begin + chunk : k_packs;

    constexpr int kChains = chains_for(T);
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

    if (n0 < p.n) {
        const uint4* wrow[R];
#pragma unroll
        for (int r = 0; r < R; ++r) {
            // Rows past N (last group only) re-read row N - 1; their sums are never written.
            const int64_t row = n0 + r < p.n ? n0 + r : p.n - 1;
            wrow[r] = reinterpret_cast<const uint4*>(p.w + row * p.k);
        }
        const auto* xbase = reinterpret_cast<const uint4*>(p.x);
        const int64_t x_stride_packs = p.x_stride / kPackElems;
        int64_t base = v_begin;
        for (; base + kWarp * U <= v_end; base += kWarp * U) {
            skinny_tile<W, T, R, U, kChains, false>(wrow, xbase, x_stride_packs, base + lane,
                                                    v_end, acc);
        }
        if (base < v_end) {
            skinny_tile<W, T, R, U, kChains, true>(wrow, xbase, x_stride_packs, base + lane,
                                                   v_end, acc);
        }
    }

    // Full xor-butterfly: every lane ends with every sum; lane r * T + t owns output (r, t).
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

    O* out = static_cast<O*>(p.out);
    if (ks == 1) {
#pragma unroll
        for (int r = 0; r < R; ++r) {
#pragma unroll
            for (int t = 0; t < T; ++t) {
                const int64_t n = n0 + r;
                if (lane == r * T + t && n < p.n) {
                    const float b = p.bias != nullptr ? to_f32(p.bias[n]) : 0.0f;
                    out[t * p.out_stride + n] = to_out<O>(sum[r][t] + b);
                }
            }
        }
        return;
    }

#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int t = 0; t < T; ++t) {
            if (lane == r * T + t) {
                partial[warp][r * T + t] = sum[r][t];
            }
        }
    }
    __syncthreads();
    const int outputs = groups_per_cta * R * T;
    for (int i = static_cast<int>(threadIdx.x); i < outputs; i += kThreads) {
        const int g = i / (R * T);
        const int j = i - g * (R * T);
        float total = 0.0f;
        for (int q = 0; q < ks; ++q) {
            total += partial[g * ks + q][j];
        }
        const int r = j / T;
        const int t = j - r * T;
        const int64_t n = (static_cast<int64_t>(blockIdx.x) * groups_per_cta + g) * R + r;
        if (n < p.n) {
            const float b = p.bias != nullptr ? to_f32(p.bias[n]) : 0.0f;
            out[t * p.out_stride + n] = to_out<O>(total + b);
        }
    }
}

int sm_count() {
    int device = 0;
    int sms = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
        sms <= 0) {
        return 132;  // an H100/H200's count: only the split heuristic depends on it
    }
    return sms;
}

template <typename W, typename O, int T>
cudaError_t launch_t(const SkinnyParams<W>& base, cudaStream_t stream) {
    constexpr int R = rows_per_warp(T);
    constexpr int U = unroll_for(T);
    SkinnyParams<W> p = base;
    const int64_t groups = (p.n + R - 1) / R;
    // Aim for ~64 warp work units per SM: 16-24 warps are resident per SM, so this is 3-4 waves
    // of small units that the block scheduler balances (one big wave of long warps would leave
    // SMs idle in its tail). Split K while N alone falls short, as long as each warp keeps at
    // least one full tile (32 * U packs) of K. NOTE: tune kUnitsPerSm on the GPU benchmark.
    constexpr int64_t kUnitsPerSm = 64;
    const int64_t target_warps = static_cast<int64_t>(sm_count()) * kUnitsPerSm;
    const int64_t k_packs = p.k / kPackElems;
    int ks = 1;
    while (ks < kWarps && groups * ks < target_warps && k_packs / (ks * 2) >= kWarp * U) {
        ks *= 2;
    }
    p.ks = ks;
    const int64_t groups_per_cta = kWarps / ks;
    const int64_t blocks = (groups + groups_per_cta - 1) / groups_per_cta;
    if (blocks > 0x7fffffffLL) {
        return cudaErrorInvalidValue;
    }
    skinny_matmul_kernel<W, O, T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p);
    return cudaGetLastError();
}

template <typename W, typename O>
cudaError_t launch_typed(const SkinnyParams<W>& p, int64_t t, cudaStream_t stream) {
    switch (t) {
        case 1:
            return launch_t<W, O, 1>(p, stream);
        case 2:
            return launch_t<W, O, 2>(p, stream);
        case 3:
            return launch_t<W, O, 3>(p, stream);
        case 4:
            return launch_t<W, O, 4>(p, stream);
        case 5:
            return launch_t<W, O, 5>(p, stream);
        case 6:
            return launch_t<W, O, 6>(p, stream);
        case 7:
            return launch_t<W, O, 7>(p, stream);
        case 8:
            return launch_t<W, O, 8>(p, stream);
        default:
            return cudaErrorInvalidValue;
    }
}

template <typename W>
cudaError_t launch_w(void* out, int64_t out_stride, ElemType out_type, const void* x,
                     int64_t x_stride, const void* w, const void* bias, int64_t t, int64_t n,
                     int64_t k, cudaStream_t stream) {
    const SkinnyParams<W> p{out,
                            out_stride,
                            static_cast<const W*>(x),
                            x_stride,
                            static_cast<const W*>(w),
                            static_cast<const W*>(bias),
                            n,
                            k,
                            1};
    if (out_type == ElemType::kF32) {
        return launch_typed<W, float>(p, t, stream);
    }
    return launch_typed<W, W>(p, t, stream);
}

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

}  // namespace

cudaError_t launch_skinny_matmul(void* out, int64_t out_stride, ElemType out_type, const void* x,
                                 int64_t x_stride, const void* w, const void* bias, int64_t T,
                                 int64_t N, int64_t K, ElemType type, cudaStream_t stream) {
    if (type != ElemType::kBF16 && type != ElemType::kF16) {
        return cudaErrorInvalidValue;  // f32 weights take the cuBLASLt path
    }
    if (out_type != type && out_type != ElemType::kF32) {
        return cudaErrorInvalidValue;
    }
    if (T < 0 || T > kSkinnyMaxRows || N < 0 || K <= 0 || K % kPackElems != 0 ||
        x_stride % kPackElems != 0 || x_stride < K) {
        return cudaErrorInvalidValue;
    }
    if (T == 0 || N == 0) {
        return cudaSuccess;
    }
    if (out == nullptr || x == nullptr || w == nullptr || !aligned16(x) || !aligned16(w) ||
        (T > 1 && out_stride < N)) {
        return cudaErrorInvalidValue;
    }
    if (type == ElemType::kBF16) {
        return launch_w<__nv_bfloat16>(out, out_stride, out_type, x, x_stride, w, bias, T, N, K,
                                       stream);
    }
    return launch_w<__half>(out, out_stride, out_type, x, x_stride, w, bias, T, N, K, stream);
}

}  // namespace helexa::kernels
