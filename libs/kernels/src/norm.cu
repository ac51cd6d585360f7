// RMSNorm kernels: plain, fused residual-add (of a tensor, or of the f32 partials of a matmul split
// over K), and per-head (Qwen3 q_norm / k_norm).
//
// One "segment" is the run of elements normalised together: a whole row for rms_norm and
// add_rms_norm, one head of a row for rms_norm_heads. Short segments (<= kWarpMaxCols) get one
// warp each, so a decode step's [T, n_heads * 128] q/k norm fills the GPU; long rows get one CTA.
// Whole 16-bit rows of decode widths (up to 512 threads x 4 packs) keep their values in registers
// between the sum of squares and the scale, every load of a round issued before any use
// (rms_norm_in_registers_kernel): at 3-32 rows a norm is a few round trips through L2, and a loop
// of load -> use per pack made it one per pack (runs 25, 26: 2.43 -> 1.38 us a launch at 8 rows).
// The other kernels read the segment twice (sum of squares, then scale; the second pass hits L1).
//
// Numerics follow transformers' LlamaRMSNorm: x is upcast to f32, the f32 sum of squares gives
// inv = rsqrt(mean + eps), y = to_act(x * inv) and out = to_act(weight * y) (a product of two
// act-type values, computed in f32 and rounded once). For f32 every rounding is the identity.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "helexa/kernels/norm.h"
#include "elem_access.cuh"
#include "launch.cuh"
#include "rms_norm_order.cuh"

namespace helexa::kernels {
namespace {

constexpr int kWarp = 32;
constexpr int64_t kWarpMaxCols = kNormWarpMaxCols;  // segments up to this length get one warp
constexpr int kWarpKernelThreads = 128;  // 4 segments per CTA in the warp kernel

// What a norm kernel normalises: x itself, residual + x (rounded, written back to residual), or
// residual + the sum of a split matmul's f32 partials (the same, with x the parts' sum).
enum class NormSource { kX, kAddX, kAddPartials };

// Everything a norm kernel needs, passed by value. For the plain norm residual is null and the
// source is x; for the fused adds the source is residual + x or + the partials' sum (rounded),
// written back to residual.
template <typename T>
struct NormParams {
    T* out;             // [rows, segs_per_row * seg_len], row stride out_stride
    int64_t out_stride;
    T* residual;        // [rows, cols], row stride residual_stride; null for the plain norm
    int64_t residual_stride;
    const T* x;         // [rows, segs_per_row * seg_len], row stride x_stride
    int64_t x_stride;
    const T* weight;    // [seg_len]
    int64_t n_segs;     // rows * segs_per_row
    int64_t segs_per_row;
    int64_t seg_len;
    float eps;
    // kAddPartials: n_parts f32 slabs [rows, cols], slab s at partials + s * part_stride, row
    // stride part_row_stride.
    const float* partials = nullptr;
    int64_t n_parts = 0;
    int64_t part_stride = 0;
    int64_t part_row_stride = 0;
};

// One part's elements [0, VEC) of src, by 16-byte loads where VEC allows.
template <int VEC>
__device__ __forceinline__ void load_part(const float* src, float (&v)[VEC]) {
    if constexpr (VEC % 4 == 0) {
#pragma unroll
        for (int j = 0; j < VEC; j += 4) {
            const float4 f = *reinterpret_cast<const float4*>(src + j);
            v[j] = f.x;
            v[j + 1] = f.y;
            v[j + 2] = f.z;
            v[j + 3] = f.w;
        }
    } else {
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
            v[j] = src[j];
        }
    }
}

// One part's loaded elements into acc (kFirst: acc = v, else acc += v): the one place the parts
// are added, so both partials kernels add them in the same order (launch_add_partials_rms_norm's:
// part 0 first).
template <int VEC, bool kFirst>
__device__ __forceinline__ void accumulate_part(const float (&v)[VEC], float (&acc)[VEC]) {
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
        acc[j] = kFirst ? v[j] : acc[j] + v[j];
    }
}

template <int VEC, bool kFirst>
__device__ __forceinline__ void take_part(const float* src, float (&acc)[VEC]) {
    float v[VEC];
    load_part<VEC>(src, v);
    accumulate_part<VEC, kFirst>(v, acc);
}

// The sum over the parts of elements [col, col + VEC) of a row.
template <typename T, int VEC>
__device__ __forceinline__ void sum_parts(const NormParams<T>& p, int64_t row, int64_t col,
                                          float (&sum)[VEC]) {
    const float* src = p.partials + row * p.part_row_stride + col;
    take_part<VEC, true>(src, sum);
    for (int64_t s = 1; s < p.n_parts; ++s) {
        take_part<VEC, false>(src + s * p.part_stride, sum);
    }
}

// Pass 1 for the elements [i * VEC, i * VEC + VEC) of one segment: returns their sum of squares.
// With an add it also stores the rounded residual sum, which pass 2 then reads back (the same
// thread touches the same elements in both passes, so no barrier is needed between them).
template <typename T, int VEC, NormSource SRC>
__device__ __forceinline__ float load_square(const NormParams<T>& p, int64_t row, int64_t col) {
    float ss = 0.0f;
    if constexpr (SRC == NormSource::kX) {
        const Pack<T, VEC> xv =
            *reinterpret_cast<const Pack<T, VEC>*>(p.x + row * p.x_stride + col);
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
            const float f = to_f32(xv.v[j]);
            ss = fmaf(f, f, ss);
        }
    } else {
        float add[VEC];
        if constexpr (SRC == NormSource::kAddX) {
            const Pack<T, VEC> xv =
                *reinterpret_cast<const Pack<T, VEC>*>(p.x + row * p.x_stride + col);
#pragma unroll
            for (int j = 0; j < VEC; ++j) {
                add[j] = to_f32(xv.v[j]);
            }
        } else {
            sum_parts<T, VEC>(p, row, col, add);
        }
        T* rp = p.residual + row * p.residual_stride + col;
        Pack<T, VEC> rv = *reinterpret_cast<const Pack<T, VEC>*>(rp);
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
            rv.v[j] = from_f32<T>(to_f32(rv.v[j]) + add[j]);
            const float f = to_f32(rv.v[j]);
            ss = fmaf(f, f, ss);
        }
        *reinterpret_cast<Pack<T, VEC>*>(rp) = rv;
    }
    return ss;
}

// Pass 2: out = to_act(weight * to_act(src * inv)).
template <typename T, int VEC, NormSource SRC>
__device__ __forceinline__ void scale_store(const NormParams<T>& p, int64_t row, int64_t col,
                                            int64_t wcol, float inv) {
    const T* src = SRC != NormSource::kX ? p.residual + row * p.residual_stride + col
                                         : p.x + row * p.x_stride + col;
    const Pack<T, VEC> sv = *reinterpret_cast<const Pack<T, VEC>*>(src);
    const Pack<T, VEC> wv = *reinterpret_cast<const Pack<T, VEC>*>(p.weight + wcol);
    Pack<T, VEC> ov;
#pragma unroll
    for (int j = 0; j < VEC; ++j) {
        const float y = round_to<T>(to_f32(sv.v[j]) * inv);
        ov.v[j] = from_f32<T>(to_f32(wv.v[j]) * y);
    }
    *reinterpret_cast<Pack<T, VEC>*>(p.out + row * p.out_stride + col) = ov;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int off = kWarp / 2; off > 0; off >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, off);
    }
    return v;
}

// One warp per segment; blockDim.x == kWarpKernelThreads.
template <typename T, int VEC, NormSource SRC>
__global__ void __launch_bounds__(kWarpKernelThreads)
    rms_norm_warp_kernel(const NormParams<T> p) {
    // Nothing before this reads or writes what other kernels touch (launch.cuh).
    grid_dependency_wait();
    allow_dependent_launch();
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int64_t seg = static_cast<int64_t>(blockIdx.x) * (kWarpKernelThreads / kWarp) +
                        static_cast<int64_t>(threadIdx.x) / kWarp;
    if (seg >= p.n_segs) {
        return;  // whole warp leaves together: no shuffle is left half-populated
    }
    const int64_t row = seg / p.segs_per_row;
    const int64_t base = (seg % p.segs_per_row) * p.seg_len;
    float ss = 0.0f;
    for (int64_t c = static_cast<int64_t>(lane) * VEC; c < p.seg_len; c += kWarp * VEC) {
        ss += load_square<T, VEC, SRC>(p, row, base + c);
    }
    ss = warp_sum(ss);
    const float inv = rsqrtf(ss / static_cast<float>(p.seg_len) + p.eps);
    for (int64_t c = static_cast<int64_t>(lane) * VEC; c < p.seg_len; c += kWarp * VEC) {
        scale_store<T, VEC, SRC>(p, row, base + c, c, inv);
    }
}

// One CTA per row (segs_per_row == 1); rows beyond gridDim.y are covered by a grid-stride loop.
template <typename T, int VEC, NormSource SRC>
__global__ void __launch_bounds__(1024) rms_norm_block_kernel(const NormParams<T> p) {
    // Nothing before this reads or writes what other kernels touch (launch.cuh).
    grid_dependency_wait();
    allow_dependent_launch();
    __shared__ float partial[1024 / kWarp];
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
    const int n_warps = static_cast<int>(blockDim.x) / kWarp;
    const int64_t step = static_cast<int64_t>(blockDim.x) * VEC;
    for (int64_t row = blockIdx.x; row < p.n_segs; row += gridDim.x) {
        float ss = 0.0f;
        for (int64_t c = static_cast<int64_t>(threadIdx.x) * VEC; c < p.seg_len; c += step) {
            ss += load_square<T, VEC, SRC>(p, row, c);
        }
        ss = warp_sum(ss);
        if (lane == 0) {
            partial[warp] = ss;
        }
        __syncthreads();
        float total = 0.0f;
        for (int w = 0; w < n_warps; ++w) {
            total += partial[w];  // every thread sums in the same order: identical inv
        }
        __syncthreads();  // partial is reused by the next row
        const float inv = rsqrtf(total / static_cast<float>(p.seg_len) + p.eps);
        for (int64_t c = static_cast<int64_t>(threadIdx.x) * VEC; c < p.seg_len; c += step) {
            scale_store<T, VEC, SRC>(p, row, c, c, inv);
        }
    }
}

// Rows of decode widths on the 16-byte path, one CTA of V = norm_reduce_threads threads a row
// (V <= 512), for every source: thread v owns packs v, v + V, ... (at most kMaxPacks;
// rms_norm_order.cuh) and issues every load of a round (x, the residual, the first parts) before
// it uses any, then keeps the row's values in registers for the scale pass. The generic kernels
// walk their packs in a loop, load -> use -> next load (and the residual store may alias the next
// load), a round trip through L2 per pack and pass: at decode sizes (2-4 packs a thread) that
// made the K split's sum and norm ~2x the plain norm's time (run 18). Same sums in the same
// order, so the same bits as the generic path.
constexpr int kRegisterNormMaxThreads = 512;  // (rows up to 8192 bf16 elements; room for registers)

template <typename T, int VEC, int kMaxPacks, NormSource SRC>
__global__ void __launch_bounds__(kRegisterNormMaxThreads)
    rms_norm_in_registers_kernel(const NormParams<T> p) {
    constexpr bool kAdds = SRC != NormSource::kX;  // the residual takes x or the parts' sum
    __shared__ float warp_sums[kRegisterNormMaxThreads / kWarp];
    const int v = static_cast<int>(threadIdx.x);
    const int n_threads = static_cast<int>(blockDim.x);
    const int n_warps = n_threads / kWarp;
    // This thread's packs, the same in every row. A pack past the row is read at the row's first
    // pack instead (never stored), so the row loop's loads need no branch (below).
    int64_t col[kMaxPacks];
    bool in_row[kMaxPacks];
#pragma unroll
    for (int i = 0; i < kMaxPacks; ++i) {
        const int64_t c = static_cast<int64_t>(v + i * n_threads) * VEC;
        in_row[i] = c < p.seg_len;
        col[i] = in_row[i] ? c : 0;
    }
    // The norm weight is no kernel's output (launch.cuh's contract): its packs are loaded before
    // the wait, off the round trips that follow it.
    Pack<T, VEC> wv[kMaxPacks];
#pragma unroll
    for (int i = 0; i < kMaxPacks; ++i) {
        wv[i] = load_pack<T, VEC>(p.weight + col[i]);
    }
    grid_dependency_wait();
    allow_dependent_launch();
    for (int64_t row = blockIdx.x; row < p.n_segs; row += gridDim.x) {
        // The row's values: x (kX), or the residual, rounded once with what it takes added.
        T* res_row = kAdds ? p.residual + row * p.residual_stride : nullptr;
        const T* x_row = p.x + row * p.x_stride;
        // Every load of a round (x, or the residual with x or parts 0 and 1, then each later
        // part) is issued before any of its values is used, with no branch between them. Each
        // pack's loads and adds in their own conditional block had the compiler wait on each
        // pack and part in turn (SASS: three L2 round trips at two parts where one does).
        Pack<T, VEC> rv[kMaxPacks];
        float add[kMaxPacks][VEC];
        if constexpr (SRC == NormSource::kX) {
#pragma unroll
            for (int i = 0; i < kMaxPacks; ++i) {
                rv[i] = load_pack<T, VEC>(x_row + col[i]);
            }
        } else if constexpr (SRC == NormSource::kAddX) {
            Pack<T, VEC> xv[kMaxPacks];
#pragma unroll
            for (int i = 0; i < kMaxPacks; ++i) {
                rv[i] = load_pack<T, VEC>(res_row + col[i]);
                xv[i] = load_pack<T, VEC>(x_row + col[i]);
            }
#pragma unroll
            for (int i = 0; i < kMaxPacks; ++i) {
#pragma unroll
                for (int j = 0; j < VEC; ++j) {
                    add[i][j] = to_f32(xv[i].v[j]);
                }
            }
        } else {
            const float* part_row = p.partials + row * p.part_row_stride;
            // Part 1 joins the first round where registers allow (two packs a thread: the
            // decode rows of 4096-8192 elements; four would spill).
            constexpr bool kPart1First = kMaxPacks <= 2;
            const bool two_parts = kPart1First && p.n_parts > 1;
            const float* part1_row = part_row + (two_parts ? p.part_stride : 0);
            float next[kMaxPacks][VEC];
#pragma unroll
            for (int i = 0; i < kMaxPacks; ++i) {
                rv[i] = load_pack<T, VEC>(res_row + col[i]);
                load_part<VEC>(part_row + col[i], add[i]);
                if constexpr (kPart1First) {
                    load_part<VEC>(part1_row + col[i], next[i]);
                }
            }
            if (two_parts) {
#pragma unroll
                for (int i = 0; i < kMaxPacks; ++i) {
                    accumulate_part<VEC, false>(next[i], add[i]);
                }
            }
            // One part a round (not unrolled: rounds of several parts' loads would spill at
            // four packs a thread).
#pragma unroll 1
            for (int64_t s = kPart1First ? 2 : 1; s < p.n_parts; ++s) {
                const float* part = part_row + s * p.part_stride;
#pragma unroll
                for (int i = 0; i < kMaxPacks; ++i) {
                    load_part<VEC>(part + col[i], next[i]);
                }
#pragma unroll
                for (int i = 0; i < kMaxPacks; ++i) {
                    accumulate_part<VEC, false>(next[i], add[i]);
                }
            }
        }
        float ss = 0.0f;
#pragma unroll
        for (int i = 0; i < kMaxPacks; ++i) {
            if (in_row[i]) {
                float pack_ss = 0.0f;
#pragma unroll
                for (int j = 0; j < VEC; ++j) {
                    if constexpr (kAdds) {
                        rv[i].v[j] = from_f32<T>(to_f32(rv[i].v[j]) + add[i][j]);
                    }
                    const float f = to_f32(rv[i].v[j]);
                    pack_ss = fmaf(f, f, pack_ss);
                }
                ss += pack_ss;
                if constexpr (kAdds) {
                    store_pack<T, VEC>(res_row + col[i], rv[i]);
                }
            }
        }
        ss = warp_sum(ss);
        if (v % kWarp == 0) {
            warp_sums[v / kWarp] = ss;
        }
        __syncthreads();
        float total = 0.0f;
        for (int w = 0; w < n_warps; ++w) {
            total += warp_sums[w];  // every thread sums in the same order: identical inv
        }
        __syncthreads();  // warp_sums is reused by the next row
        const float inv = rsqrtf(total / static_cast<float>(p.seg_len) + p.eps);
        T* out_row = p.out + row * p.out_stride;
#pragma unroll
        for (int i = 0; i < kMaxPacks; ++i) {
            if (in_row[i]) {
                Pack<T, VEC> ov;
#pragma unroll
                for (int j = 0; j < VEC; ++j) {
                    const float y = round_to<T>(to_f32(rv[i].v[j]) * inv);
                    ov.v[j] = from_f32<T>(to_f32(wv[i].v[j]) * y);
                }
                store_pack<T, VEC>(out_row + col[i], ov);
            }
        }
    }
}

template <typename T, int VEC, NormSource SRC>
cudaError_t launch_norm_vec(const NormParams<T>& p, cudaStream_t stream) {
    if (p.seg_len <= kWarpMaxCols) {
        const int64_t per_cta = kWarpKernelThreads / kWarp;
        const int64_t blocks = (p.n_segs + per_cta - 1) / per_cta;
        if (blocks > 0x7fffffffLL) {
            return cudaErrorInvalidValue;
        }
        if (const cudaError_t launched = launch_kernel(
                rms_norm_warp_kernel<T, VEC, SRC>, static_cast<unsigned>(blocks),
                kWarpKernelThreads, 0, stream, p);
            launched != cudaSuccess) {
            return launched;
        }
    } else {
        // Enough threads that each holds about two vectors (rms_norm_order.cuh).
        const int64_t threads = norm_reduce_threads(p.seg_len, VEC);
        const int64_t blocks = p.n_segs < 0x7fffffffLL ? p.n_segs : 0x7fffffffLL;
        if (const cudaError_t launched = launch_kernel(
                rms_norm_block_kernel<T, VEC, SRC>, static_cast<unsigned>(blocks),
                static_cast<unsigned>(threads), 0, stream, p);
            launched != cudaSuccess) {
            return launched;
        }
    }
    return cudaGetLastError();
}

// Picks the 16-byte path when every row start and the weight are 16-byte aligned (and, for the
// partials, every slab row too).
template <typename T, NormSource SRC>
cudaError_t launch_norm_typed(const NormParams<T>& p, cudaStream_t stream) {
    constexpr int kVec = 16 / static_cast<int>(sizeof(T));
    bool vec = p.seg_len % kVec == 0 && p.x_stride % kVec == 0 && p.out_stride % kVec == 0 &&
               aligned16(p.x) && aligned16(p.out) && aligned16(p.weight);
    if constexpr (SRC != NormSource::kX) {
        vec = vec && p.residual_stride % kVec == 0 && aligned16(p.residual);
    }
    if constexpr (SRC == NormSource::kAddPartials) {
        vec = vec && p.part_stride % 4 == 0 && p.part_row_stride % 4 == 0 &&
              aligned16(p.partials);
    }
    // Whole rows (not per-head segments) of 16-bit activations: the f32 form is not used, and
    // would spill.
    if constexpr (sizeof(T) == 2) {
        // Packs a thread: up to 2 on rows of many threads, up to 4 on one warp's rows (<= 1024).
        const int64_t threads = norm_reduce_threads(p.seg_len, kVec);
        const int64_t packs = (p.seg_len / kVec + threads - 1) / threads;
        if (vec && p.segs_per_row == 1 && threads <= kRegisterNormMaxThreads && packs <= 4) {
            const int64_t blocks = p.n_segs < 0x7fffffffLL ? p.n_segs : 0x7fffffffLL;
            const cudaError_t launched =
                packs <= 2 ? launch_kernel(rms_norm_in_registers_kernel<T, kVec, 2, SRC>,
                                           static_cast<unsigned>(blocks),
                                           static_cast<unsigned>(threads), 0, stream, p)
                           : launch_kernel(rms_norm_in_registers_kernel<T, kVec, 4, SRC>,
                                           static_cast<unsigned>(blocks),
                                           static_cast<unsigned>(threads), 0, stream, p);
            return launched != cudaSuccess ? launched : cudaGetLastError();
        }
    }
    if (vec) {
        return launch_norm_vec<T, kVec, SRC>(p, stream);
    }
    return launch_norm_vec<T, 1, SRC>(p, stream);
}

// x is only read for kAddX; for kAddPartials the partials' fields of `parts` are used (x is
// ignored but must be a valid pointer for the 16-byte check: pass residual).
template <NormSource SRC>
cudaError_t dispatch_norm(void* out, int64_t out_stride, void* residual, int64_t residual_stride,
                          const void* x, int64_t x_stride, const void* weight, int64_t rows,
                          int64_t segs_per_row, int64_t seg_len, float eps, ElemType type,
                          cudaStream_t stream, const NormParams<float>& parts = {}) {
    auto make = [&](auto tag) {
        using T = decltype(tag);
        NormParams<T> p{static_cast<T*>(out),          out_stride,
                        static_cast<T*>(residual),     residual_stride,
                        static_cast<const T*>(x),      x_stride,
                        static_cast<const T*>(weight), rows * segs_per_row,
                        segs_per_row,                  seg_len,
                        eps};
        p.partials = parts.partials;
        p.n_parts = parts.n_parts;
        p.part_stride = parts.part_stride;
        p.part_row_stride = parts.part_row_stride;
        return p;
    };
    switch (type) {
        case ElemType::kF32:
            return launch_norm_typed<float, SRC>(make(float{}), stream);
        case ElemType::kF16:
            return launch_norm_typed<__half, SRC>(make(__half{}), stream);
        case ElemType::kBF16:
            return launch_norm_typed<__nv_bfloat16, SRC>(make(__nv_bfloat16{}), stream);
    }
    return cudaErrorInvalidValue;
}

bool valid_type(ElemType t) {
    return t == ElemType::kF32 || t == ElemType::kF16 || t == ElemType::kBF16;
}

}  // namespace

cudaError_t launch_rms_norm(void* out, int64_t out_stride, const void* x, int64_t x_stride,
                            const void* weight, int64_t rows, int64_t cols, float eps,
                            ElemType type, cudaStream_t stream) {
    if (rows < 0 || cols <= 0 || !valid_type(type) || out_stride < cols || x_stride < cols) {
        return cudaErrorInvalidValue;
    }
    if (rows == 0) {
        return cudaSuccess;
    }
    if (out == nullptr || x == nullptr || weight == nullptr) {
        return cudaErrorInvalidValue;
    }
    return dispatch_norm<NormSource::kX>(out, out_stride, nullptr, 0, x, x_stride, weight, rows,
                                         1, cols, eps, type, stream);
}

cudaError_t launch_add_rms_norm(void* out, int64_t out_stride, void* residual,
                                int64_t residual_stride, const void* x, int64_t x_stride,
                                const void* weight, int64_t rows, int64_t cols, float eps,
                                ElemType type, cudaStream_t stream) {
    if (rows < 0 || cols <= 0 || !valid_type(type) || out_stride < cols || x_stride < cols ||
        residual_stride < cols) {
        return cudaErrorInvalidValue;
    }
    if (rows == 0) {
        return cudaSuccess;
    }
    if (out == nullptr || residual == nullptr || x == nullptr || weight == nullptr ||
        out == residual) {
        return cudaErrorInvalidValue;
    }
    return dispatch_norm<NormSource::kAddX>(out, out_stride, residual, residual_stride, x,
                                            x_stride, weight, rows, 1, cols, eps, type, stream);
}

cudaError_t launch_add_partials_rms_norm(void* out, int64_t out_stride, void* residual,
                                         int64_t residual_stride, const float* partials,
                                         int64_t n_parts, int64_t part_stride,
                                         int64_t part_row_stride, const void* weight,
                                         int64_t rows, int64_t cols, float eps, ElemType type,
                                         cudaStream_t stream) {
    if (rows < 0 || cols <= 0 || n_parts <= 0 || !valid_type(type) || out_stride < cols ||
        residual_stride < cols || part_row_stride < cols ||
        (n_parts > 1 && part_stride < rows * part_row_stride)) {
        return cudaErrorInvalidValue;
    }
    if (rows == 0) {
        return cudaSuccess;
    }
    if (out == nullptr || residual == nullptr || partials == nullptr || weight == nullptr ||
        out == residual) {
        return cudaErrorInvalidValue;
    }
    NormParams<float> parts{};
    parts.partials = partials;
    parts.n_parts = n_parts;
    parts.part_stride = part_stride;
    parts.part_row_stride = part_row_stride;
    return dispatch_norm<NormSource::kAddPartials>(out, out_stride, residual, residual_stride,
                                                   residual, residual_stride, weight, rows, 1,
                                                   cols, eps, type, stream, parts);
}

cudaError_t launch_rms_norm_heads(void* x, int64_t x_stride, const void* weight, int64_t rows,
                                  int64_t n_heads, int64_t head_dim, float eps, ElemType type,
                                  cudaStream_t stream) {
    if (rows < 0 || n_heads <= 0 || head_dim <= 0 || !valid_type(type) ||
        x_stride < n_heads * head_dim) {
        return cudaErrorInvalidValue;
    }
    if (rows == 0) {
        return cudaSuccess;
    }
    if (x == nullptr || weight == nullptr) {
        return cudaErrorInvalidValue;
    }
    if (head_dim > kWarpMaxCols) {
        // The block kernel normalises whole rows only; per-head norms this wide do not occur.
        return cudaErrorInvalidValue;
    }
    return dispatch_norm<NormSource::kX>(x, x_stride, nullptr, 0, x, x_stride, weight, rows,
                                         n_heads, head_dim, eps, type, stream);
}

}  // namespace helexa::kernels
