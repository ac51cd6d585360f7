// Memory-bound pointwise kernels of the dense decoder: embedding, row gather, residual add, SwiGLU,
// dtype conversion and rotary embedding.
//
// The row-wise kernels share one grid shape: blockIdx.y walks rows (grid-stride past 65535),
// blockIdx.x * blockDim.x + threadIdx.x walks column packs of VEC elements (16 bytes when every row
// start is 16-byte aligned, else single elements). Arithmetic is f32; each result is rounded to the
// activation type once, where torch's bf16/f16 ops round.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "helexa/kernels/pointwise.h"
#include "elem_access.cuh"
#include "launch.cuh"
#include "qkv_head_ops.cuh"

namespace helexa::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxGridX = 1024;  // column blocks; each thread loops beyond that
constexpr int64_t kMaxGridY = 65535;

// True when a [rows, cols] view with this base and stride can be moved in 16-byte packs.
bool vec_ok(const void* base, int64_t stride, int64_t cols, int64_t elem_bytes) {
    const int64_t vec = 16 / elem_bytes;
    return aligned16(base) && stride % vec == 0 && cols % vec == 0;
}

// Row-wise grid: x over column packs, y over rows.
dim3 row_grid(int64_t rows, int64_t packs) {
    int64_t gx = (packs + kThreads - 1) / kThreads;
    gx = gx < 1 ? 1 : (gx > kMaxGridX ? kMaxGridX : gx);
    const int64_t gy = rows > kMaxGridY ? kMaxGridY : rows;
    return dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy), 1);
}

bool valid_type(ElemType t) {
    return t == ElemType::kF32 || t == ElemType::kF16 || t == ElemType::kBF16;
}

// Calls fn(T{}) with T the element type of `type`.
template <typename Fn>
cudaError_t with_type(ElemType type, Fn&& fn) {
    switch (type) {
        case ElemType::kF32:
            return fn(float{});
        case ElemType::kF16:
            return fn(__half{});
        case ElemType::kBF16:
            return fn(__nv_bfloat16{});
    }
    return cudaErrorInvalidValue;
}

// First column pack of this thread and the stride between its packs (row_grid's x dimension).
__device__ __forceinline__ int64_t first_pack() {
    return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t pack_step() {
    return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// ---------------------------------------------------------------------------------------------
// Embedding and row gather (a copy of one source row per output row).

// out: [n, cols] (out_stride); src: [n_src, cols] (src_stride); ids: int32 [n]. Ids outside
// [0, n_src) write zeros and raise *bad (may be null). n_src < 0 means "unknown": only negative
// ids are rejected (gather_rows has no source row count in its contract).
template <typename T, int VEC>
__global__ void __launch_bounds__(kThreads)
    copy_rows_kernel(T* out, int64_t out_stride, const T* src, int64_t src_stride,
                     const int32_t* ids, int64_t n, int64_t n_src, int64_t packs, int32_t* bad) {
    // Nothing before this reads or writes what other kernels touch (launch.cuh).
    grid_dependency_wait();
    allow_dependent_launch();
    for (int64_t r = blockIdx.y; r < n; r += gridDim.y) {
        const int64_t id = ids[r];
        const bool ok = id >= 0 && (n_src < 0 || id < n_src);
        if (!ok && bad != nullptr && blockIdx.x == 0 && threadIdx.x == 0) {
            *bad = 1;
        }
        for (int64_t c = first_pack(); c < packs; c += pack_step()) {
            Pack<T, VEC> v;
            if (ok) {
                v = load_pack<T, VEC>(src + id * src_stride + c * VEC);
            } else {
#pragma unroll
                for (int j = 0; j < VEC; ++j) {
                    v.v[j] = from_f32<T>(0.0f);
                }
            }
            store_pack<T, VEC>(out + r * out_stride + c * VEC, v);
        }
    }
}

cudaError_t launch_copy_rows(void* out, int64_t out_stride, const void* src, int64_t src_stride,
                             const int32_t* ids, int64_t n, int64_t n_src, int64_t cols,
                             int32_t* bad, ElemType type, cudaStream_t stream) {
    return with_type(type, [&](auto tag) {
        using T = decltype(tag);
        constexpr int kVec = 16 / sizeof(T);
        const int64_t es = sizeof(T);
        if (vec_ok(out, out_stride, cols, es) && vec_ok(src, src_stride, cols, es)) {
            const int64_t packs = cols / kVec;
            if (const cudaError_t launched = launch_kernel(
                    copy_rows_kernel<T, kVec>, row_grid(n, packs), kThreads, 0, stream,
                    static_cast<T*>(out), out_stride, static_cast<const T*>(src), src_stride, ids,
                    n, n_src, packs, bad);
                launched != cudaSuccess) {
                return launched;
            }
        } else {
            if (const cudaError_t launched = launch_kernel(
                    copy_rows_kernel<T, 1>, row_grid(n, cols), kThreads, 0, stream,
                    static_cast<T*>(out), out_stride, static_cast<const T*>(src), src_stride, ids,
                    n, n_src, cols, bad);
                launched != cudaSuccess) {
                return launched;
            }
        }
        return cudaGetLastError();
    });
}

// ---------------------------------------------------------------------------------------------
// Residual add: out = to_act(x + y). x, y, out: [rows, cols] strided; out may alias x or y (each
// element is read and written by one thread).
template <typename T, int VEC>
__global__ void __launch_bounds__(kThreads)
    add_kernel(T* out, int64_t out_stride, const T* x, int64_t x_stride, const T* y,
               int64_t y_stride, int64_t rows, int64_t packs) {
    // Nothing before this reads or writes what other kernels touch (launch.cuh).
    grid_dependency_wait();
    allow_dependent_launch();
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
        for (int64_t c = first_pack(); c < packs; c += pack_step()) {
            const Pack<T, VEC> a = load_pack<T, VEC>(x + r * x_stride + c * VEC);
            const Pack<T, VEC> b = load_pack<T, VEC>(y + r * y_stride + c * VEC);
            Pack<T, VEC> o;
#pragma unroll
            for (int j = 0; j < VEC; ++j) {
                o.v[j] = from_f32<T>(to_f32(a.v[j]) + to_f32(b.v[j]));
            }
            store_pack<T, VEC>(out + r * out_stride + c * VEC, o);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SwiGLU: out[r, i] = to_act(to_act(silu(g)) * u), g = gate_up[r, i], u = gate_up[r, n + i];
// gate_up: [rows, 2n] (gate_up_stride); out: [rows, n] (out_stride). torch evaluates
// act_fn(gate) * up as two bf16 ops: silu in f32 rounded to the dtype, then the product rounded.
template <typename T, int VEC>
__global__ void __launch_bounds__(kThreads)
    silu_mul_kernel(T* out, int64_t out_stride, const T* gate_up, int64_t gate_up_stride,
                    int64_t rows, int64_t n, int64_t packs) {
    // Nothing before this reads or writes what other kernels touch (launch.cuh).
    grid_dependency_wait();
    allow_dependent_launch();
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
        for (int64_t c = first_pack(); c < packs; c += pack_step()) {
            const T* row = gate_up + r * gate_up_stride;
            const Pack<T, VEC> g = load_pack<T, VEC>(row + c * VEC);
            const Pack<T, VEC> u = load_pack<T, VEC>(row + n + c * VEC);
            Pack<T, VEC> o;
#pragma unroll
            for (int j = 0; j < VEC; ++j) {
                o.v[j] = from_f32<T>(silu_mul_of<T>(to_f32(g.v[j]), to_f32(u.v[j])));
            }
            store_pack<T, VEC>(out + r * out_stride + c * VEC, o);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Conversion of a contiguous array: dst[i] = D(float(src[i])). Going through f32 is exact for
// every pair here (f16 and bf16 both widen exactly to f32) and rounds once, to nearest-even.
template <typename D, typename S>
__global__ void __launch_bounds__(kThreads) convert_kernel(D* dst, const S* src, int64_t n) {
    // Nothing before this reads or writes what other kernels touch (launch.cuh).
    grid_dependency_wait();
    allow_dependent_launch();
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        dst[i] = from_f32<D>(to_f32(src[i]));
    }
}

template <typename O, typename B>
__global__ void __launch_bounds__(kThreads)
    add_bias_kernel(O* out, int64_t out_stride, const B* bias, int64_t rows, int64_t cols) {
    // Nothing before this reads or writes what other kernels touch (launch.cuh).
    grid_dependency_wait();
    allow_dependent_launch();
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
        O* row = out + r * out_stride;
        for (int64_t c = first_pack(); c < cols; c += pack_step()) {
            row[c] = from_f32<O>(to_f32(row[c]) + to_f32(bias[c]));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rotary embedding, neox style, in place. x: [rows, n_heads, head_dim] (row stride x_stride);
// positions: int32 [rows]; inv_freq: f32 [half]. One CTA per row: the row's cos/sin table (f32
// math, precise cosf/sinf because angles reach 32k+ radians, times attention_scaling, rounded to
// the activation type as transformers casts cos/sin to the model dtype) is built once in shared
// memory and applied to every head. Each rotated value is computed in f32 from the act-type
// operands and rounded once.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    rope_kernel(T* x, int64_t x_stride, const int32_t* positions, const float* inv_freq,
                int64_t rows, int64_t n_heads, int64_t head_dim, int64_t half,
                float attention_scaling) {
    // Nothing before this reads or writes what other kernels touch (launch.cuh).
    grid_dependency_wait();
    allow_dependent_launch();
    extern __shared__ float cs[];  // [2 * half]: cos then sin
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        qkv_head::rotary_table<T>(cs, positions[r], inv_freq, static_cast<int>(half),
                                  attention_scaling, static_cast<int>(threadIdx.x),
                                  static_cast<int>(blockDim.x));
        __syncthreads();
        T* row = x + r * x_stride;
        const int64_t pairs = n_heads * half;
        for (int64_t k = threadIdx.x; k < pairs; k += blockDim.x) {
            const int64_t h = k / half;
            const int64_t i = k - h * half;
            T* v = row + h * head_dim;
            const float a = to_f32(v[i]);
            const float b = to_f32(v[i + half]);
            const float c = cs[i];
            const float s = cs[half + i];
            v[i] = from_f32<T>(a * c - b * s);
            v[i + half] = from_f32<T>(b * c + a * s);
        }
        __syncthreads();  // cs is rewritten for the next row
    }
}

}  // namespace

cudaError_t launch_embedding(void* out, int64_t out_stride, const void* table,
                             int64_t table_stride, const int32_t* ids, int64_t n_tokens,
                             int64_t vocab, int64_t cols, int32_t* bad_id, ElemType type,
                             cudaStream_t stream) {
    if (n_tokens < 0 || vocab < 0 || cols <= 0 || !valid_type(type) || out_stride < cols ||
        table_stride < cols) {
        return cudaErrorInvalidValue;
    }
    if (n_tokens == 0) {
        return cudaSuccess;
    }
    if (out == nullptr || ids == nullptr || (vocab > 0 && table == nullptr)) {
        return cudaErrorInvalidValue;
    }
    return launch_copy_rows(out, out_stride, table, table_stride, ids, n_tokens, vocab, cols,
                            bad_id, type, stream);
}

cudaError_t launch_gather_rows(void* out, int64_t out_stride, const void* x, int64_t x_stride,
                               const int32_t* rows, int64_t n_rows, int64_t cols, ElemType type,
                               cudaStream_t stream) {
    if (n_rows < 0 || cols <= 0 || !valid_type(type) || out_stride < cols || x_stride < cols) {
        return cudaErrorInvalidValue;
    }
    if (n_rows == 0) {
        return cudaSuccess;
    }
    if (out == nullptr || x == nullptr || rows == nullptr) {
        return cudaErrorInvalidValue;
    }
    // The caller guarantees rows[r] < the source's row count (not passed); negatives write zeros.
    return launch_copy_rows(out, out_stride, x, x_stride, rows, n_rows, -1, cols, nullptr, type,
                            stream);
}

__global__ void __launch_bounds__(kThreads)
    feed_ids_kernel(int32_t* ids, const int32_t* prev, const int32_t* map, int64_t n) {
    // prev is the previous step's argmax and ids its successor's metadata copy: both are
    // earlier work on the stream (launch.cuh).
    grid_dependency_wait();
    allow_dependent_launch();
    for (int64_t i = blockIdx.x * int64_t{kThreads} + threadIdx.x; i < n;
         i += int64_t{gridDim.x} * kThreads) {
        if (const int32_t from = map[i]; from >= 0) {
            ids[i] = prev[from];
        }
    }
}

cudaError_t launch_feed_ids(int32_t* ids, const int32_t* prev, const int32_t* map, int64_t n,
                            cudaStream_t stream) {
    if (n < 0) {
        return cudaErrorInvalidValue;
    }
    if (n == 0) {
        return cudaSuccess;
    }
    if (ids == nullptr || prev == nullptr || map == nullptr) {
        return cudaErrorInvalidValue;
    }
    const auto blocks =
        static_cast<unsigned>(std::min<int64_t>((n + kThreads - 1) / kThreads, 1024));
    return launch_kernel(feed_ids_kernel, dim3(blocks), dim3(kThreads), 0, stream, ids, prev, map,
                         n);
}

cudaError_t launch_add(void* out, int64_t out_stride, const void* x, int64_t x_stride,
                       const void* y, int64_t y_stride, int64_t rows, int64_t cols,
                       ElemType type, cudaStream_t stream) {
    if (rows < 0 || cols <= 0 || !valid_type(type) || out_stride < cols || x_stride < cols ||
        y_stride < cols) {
        return cudaErrorInvalidValue;
    }
    if (rows == 0) {
        return cudaSuccess;
    }
    if (out == nullptr || x == nullptr || y == nullptr) {
        return cudaErrorInvalidValue;
    }
    return with_type(type, [&](auto tag) {
        using T = decltype(tag);
        constexpr int kVec = 16 / sizeof(T);
        const int64_t es = sizeof(T);
        if (vec_ok(out, out_stride, cols, es) && vec_ok(x, x_stride, cols, es) &&
            vec_ok(y, y_stride, cols, es)) {
            const int64_t packs = cols / kVec;
            if (const cudaError_t launched = launch_kernel(
                    add_kernel<T, kVec>, row_grid(rows, packs), kThreads, 0, stream,
                    static_cast<T*>(out), out_stride, static_cast<const T*>(x), x_stride,
                    static_cast<const T*>(y), y_stride, rows, packs);
                launched != cudaSuccess) {
                return launched;
            }
        } else {
            if (const cudaError_t launched = launch_kernel(
                    add_kernel<T, 1>, row_grid(rows, cols), kThreads, 0, stream,
                    static_cast<T*>(out), out_stride, static_cast<const T*>(x), x_stride,
                    static_cast<const T*>(y), y_stride, rows, cols);
                launched != cudaSuccess) {
                return launched;
            }
        }
        return cudaGetLastError();
    });
}

cudaError_t launch_silu_mul(void* out, int64_t out_stride, const void* gate_up,
                            int64_t gate_up_stride, int64_t rows, int64_t n, ElemType type,
                            cudaStream_t stream) {
    if (rows < 0 || n <= 0 || !valid_type(type) || out_stride < n || gate_up_stride < 2 * n) {
        return cudaErrorInvalidValue;
    }
    if (rows == 0) {
        return cudaSuccess;
    }
    if (out == nullptr || gate_up == nullptr) {
        return cudaErrorInvalidValue;
    }
    return with_type(type, [&](auto tag) {
        using T = decltype(tag);
        constexpr int kVec = 16 / sizeof(T);
        const int64_t es = sizeof(T);
        // n % kVec == 0 (checked by vec_ok on out) also keeps the up half 16-byte aligned.
        if (vec_ok(out, out_stride, n, es) && vec_ok(gate_up, gate_up_stride, n, es)) {
            const int64_t packs = n / kVec;
            if (const cudaError_t launched = launch_kernel(
                    silu_mul_kernel<T, kVec>, row_grid(rows, packs), kThreads, 0, stream,
                    static_cast<T*>(out), out_stride, static_cast<const T*>(gate_up),
                    gate_up_stride, rows, n, packs);
                launched != cudaSuccess) {
                return launched;
            }
        } else {
            if (const cudaError_t launched = launch_kernel(
                    silu_mul_kernel<T, 1>, row_grid(rows, n), kThreads, 0, stream,
                    static_cast<T*>(out), out_stride, static_cast<const T*>(gate_up),
                    gate_up_stride, rows, n, n);
                launched != cudaSuccess) {
                return launched;
            }
        }
        return cudaGetLastError();
    });
}

cudaError_t launch_add_bias(void* out, int64_t out_stride, ElemType out_type, const void* bias,
                            ElemType bias_type, int64_t rows, int64_t cols, cudaStream_t stream) {
    if (rows < 0 || cols <= 0 || !valid_type(out_type) || !valid_type(bias_type) ||
        out_stride < cols) {
        return cudaErrorInvalidValue;
    }
    if (rows == 0) {
        return cudaSuccess;
    }
    if (out == nullptr || bias == nullptr) {
        return cudaErrorInvalidValue;
    }
    return with_type(out_type, [&](auto otag) {
        using O = decltype(otag);
        return with_type(bias_type, [&](auto btag) {
            using B = decltype(btag);
            if (const cudaError_t launched = launch_kernel(
                    add_bias_kernel<O, B>, row_grid(rows, cols), kThreads, 0, stream,
                    static_cast<O*>(out), out_stride, static_cast<const B*>(bias), rows, cols);
                launched != cudaSuccess) {
                return launched;
            }
            return cudaGetLastError();
        });
    });
}

cudaError_t launch_convert(void* dst, ElemType dst_type, const void* src, ElemType src_type,
                           int64_t n, cudaStream_t stream) {
    if (n < 0 || !valid_type(dst_type) || !valid_type(src_type)) {
        return cudaErrorInvalidValue;
    }
    if (n == 0) {
        return cudaSuccess;
    }
    if (dst == nullptr || src == nullptr) {
        return cudaErrorInvalidValue;
    }
    int64_t blocks = (n + kThreads - 1) / kThreads;
    blocks = blocks > 65536 ? 65536 : blocks;  // grid-stride beyond 16M elements
    return with_type(dst_type, [&](auto dtag) {
        using D = decltype(dtag);
        return with_type(src_type, [&](auto stag) {
            using S = decltype(stag);
            if (const cudaError_t launched = launch_kernel(
                    convert_kernel<D, S>, static_cast<unsigned>(blocks), kThreads, 0, stream,
                    static_cast<D*>(dst), static_cast<const S*>(src), n);
                launched != cudaSuccess) {
                return launched;
            }
            return cudaGetLastError();
        });
    });
}

cudaError_t launch_rope(void* x, int64_t x_stride, const int32_t* positions,
                        const float* inv_freq, int64_t rows, int64_t n_heads, int64_t head_dim,
                        int64_t rotary_dim, float attention_scaling, ElemType type,
                        cudaStream_t stream) {
    constexpr int64_t kMaxHalf = 4096;  // cos/sin table: 32 KiB of shared memory
    if (rows < 0 || n_heads <= 0 || head_dim <= 0 || rotary_dim < 0 || rotary_dim % 2 != 0 ||
        rotary_dim > head_dim || rotary_dim / 2 > kMaxHalf || !valid_type(type) ||
        x_stride < n_heads * head_dim) {
        return cudaErrorInvalidValue;
    }
    if (rows == 0 || rotary_dim == 0) {
        return cudaSuccess;
    }
    if (x == nullptr || positions == nullptr || inv_freq == nullptr) {
        return cudaErrorInvalidValue;
    }
    const int64_t half = rotary_dim / 2;
    const int64_t blocks = rows > 0x7fffffffLL ? 0x7fffffffLL : rows;
    const size_t smem = static_cast<size_t>(2 * half) * sizeof(float);
    return with_type(type, [&](auto tag) {
        using T = decltype(tag);
        if (const cudaError_t launched = launch_kernel(
                rope_kernel<T>, static_cast<unsigned>(blocks), kThreads, smem, stream,
                static_cast<T*>(x), x_stride, positions, inv_freq, rows, n_heads, head_dim, half,
                attention_scaling);
            launched != cudaSuccess) {
            return launched;
        }
        return cudaGetLastError();
    });
}

}  // namespace helexa::kernels
