// Fused q/k/v epilogue: per-head RMSNorm of q and k, neox rotary of q and k, and the paged KV
// write of k and v, in one kernel (see qkv_epilogue.h for the contract).
//
// Work split. A "head task" is one head of one token: tasks 0..n_heads-1 are the q heads, then the
// k heads, then the v heads, which is also their column order in the qkv row (column = task *
// head_dim). A head is handled by a group of G lanes (G a power of two <= 32, so 32 / G heads per
// warp): lane l of the group holds the packs of W elements at columns (l + k * G) * W, W = 16
// bytes' worth when the qkv rows are 16-byte aligned, else 1. Grid: blockIdx.y walks tokens
// (grid-stride past 65535), blockIdx.x walks groups of kWarps * 32 / G head tasks. Each CTA
// computes its token's cos/sin table once into shared memory while the head loads are in flight.
//
// Bit-exactness with norm.cu / pointwise.cu: the per-head arithmetic lives in qkv_head_ops.cuh
// (shared with the decode attention that does this epilogue itself) and says how each step
// matches. When the reference norm's vector width P differs from W (a norm weight not 16-byte
// aligned while qkv is), the launcher uses G = 32 and the kernel re-reads the raw head from
// shared memory in the reference's partition for the sum of squares.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "helexa/kernels/qkv_epilogue.h"
#include "elem_access.cuh"
#include "launch.cuh"
#include "qkv_head_ops.cuh"

namespace helexa::kernels {
namespace {

constexpr int kWarp = 32;
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * kWarp;
constexpr int kMaxHeadDim = 256;
// Elements one lane holds: one 16-byte pack (<= 8 elements), or head_dim / 32 <= 8 when the group
// is a full warp.
constexpr int kMaxElems = 8;
constexpr int64_t kMaxGridY = 65535;

__device__ __forceinline__ bool aligned16_dev(const void* p) {
    return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

template <typename T>
struct EpilogueParams {
    T* qkv;  // [n_tokens, n_tasks * head_dim], row stride qkv_stride (elements)
    int64_t qkv_stride;
    int64_t n_tokens;
    int32_t n_heads;
    int32_t n_kv_heads;
    int32_t n_tasks;     // n_heads + 2 * n_kv_heads
    int32_t task_begin;  // n_heads when q needs no work (no norm, no rotary), else 0
    int32_t head_dim;
    int32_t lanes_log2;  // log2 of G, the lanes per head
    const T* q_weight;   // [head_dim]; null: no q/k norm
    const T* k_weight;   // [head_dim]
    int32_t q_part;      // the reference norm's vector width for q (W or 1)
    int32_t k_part;      // ... and for k
    bool regs_ss;        // q_part == k_part == W: the sum of squares comes from registers
    float eps;
    const int32_t* positions;  // [n_tokens]
    const float* inv_freq;     // [half]
    int32_t half;              // rotary_dim / 2; 0: no rotary
    float attention_scaling;
    T* k_pool;  // [n_blocks, n_kv_heads, block_size, head_dim]
    T* v_pool;  // [n_blocks, n_kv_heads, block_size, head_dim]
    int64_t block_size;
    int64_t n_slots;       // n_blocks * block_size
    const int32_t* slots;  // [n_tokens]
    int32_t* bad_slot;     // device flag, may be null
    bool pool_vec;         // both pools 16-byte aligned (and W > 1): pack stores
};

// Stores one pack to a pool row, as a whole pack or element by element.
template <typename T, int W>
__device__ __forceinline__ void store_pool(T* dst, const Pack<T, W>& v, bool vec) {
    if (vec) {
        store_pack<T, W>(dst, v);
    } else {
#pragma unroll
        for (int j = 0; j < W; ++j) {
            dst[j] = v.v[j];
        }
    }
}

template <typename T, int W>
__global__ void __launch_bounds__(kThreads) qkv_epilogue_kernel(const EpilogueParams<T> p) {
    // Nothing before this reads or writes what other kernels touch (launch.cuh).
    grid_dependency_wait();
    allow_dependent_launch();
    constexpr int kPacks = kMaxElems / W;  // packs per lane
    // This token's table: cos[0, half) then sin[half, 2 * half), each rounded to T.
    __shared__ __align__(16) float cs[kMaxHeadDim];
    // Per warp, its head groups' values (group g at [g * head_dim, (g + 1) * head_dim)): the
    // rotary partner exchange and, on the mismatched-partition path, the raw head.
    __shared__ __align__(16) unsigned char stage_raw[kWarps * kMaxHeadDim * sizeof(T)];

    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
    const int glanes = 1 << p.lanes_log2;
    const int gi = lane >> p.lanes_log2;  // head group within the warp
    const int gl = lane & (glanes - 1);   // lane within the group
    const int heads_per_warp = kWarp >> p.lanes_log2;
    const int task = p.task_begin +
                     (static_cast<int>(blockIdx.x) * kWarps + warp) * heads_per_warp + gi;
    const bool is_q = task < p.n_heads;
    const bool is_k = !is_q && task < p.n_heads + p.n_kv_heads;
    const bool is_v = !is_q && !is_k && task < p.n_tasks;
    const bool is_qk = is_q || is_k;
    const bool active = is_qk || is_v;
    const int hd = p.head_dim;
    const int half = p.half;
    const bool has_norm = p.q_weight != nullptr;
    const int64_t col = static_cast<int64_t>(active ? task : 0) * hd;
    const int kv_head = is_k ? task - p.n_heads : task - p.n_heads - p.n_kv_heads;
    const T* weight = is_q ? p.q_weight : p.k_weight;
    const int part = is_q ? p.q_part : p.k_part;
    const bool w_vec = W > 1 && has_norm && aligned16_dev(weight);
    T* buf = reinterpret_cast<T*>(stage_raw) + warp * kMaxHeadDim + gi * hd;

    // The norm weight packs this lane needs, loaded once for all tokens (off the critical path).
    Pack<T, W> w[kPacks];
    if (has_norm && is_qk) {
#pragma unroll
        for (int k = 0; k < kPacks; ++k) {
            const int c = (gl + k * glanes) * W;
            if (c < hd) {
                if (w_vec) {
                    w[k] = load_pack<T, W>(weight + c);
                } else {
#pragma unroll
                    for (int j = 0; j < W; ++j) {
                        w[k].v[j] = weight[c + j];
                    }
                }
            }
        }
    }

    for (int64_t t = blockIdx.y; t < p.n_tokens; t += gridDim.y) {
        T* row = p.qkv + t * p.qkv_stride + col;
        const int64_t slot = p.slots[t];
        const bool slot_ok = slot >= 0 && slot < p.n_slots;
        if (!slot_ok && p.bad_slot != nullptr && blockIdx.x == 0 && threadIdx.x == 0) {
            *p.bad_slot = 1;
        }

        // 1. This lane's packs of its head (v heads included: they are only copied).
        Pack<T, W> v[kPacks];
#pragma unroll
        for (int k = 0; k < kPacks; ++k) {
            const int c = (gl + k * glanes) * W;
            if (active && c < hd) {
                v[k] = load_pack<T, W>(row + c);
            }
        }

        // 2. The cos/sin table, computed while the loads above are in flight.
        if (half > 0) {
            qkv_head::rotary_table<T>(cs, p.positions[t], p.inv_freq, half, p.attention_scaling,
                                      static_cast<int>(threadIdx.x), kThreads);
        }

        // 3. Per-head RMSNorm of q and k. Every lane takes part in the shuffles (has_norm and
        //    regs_ss are uniform); lanes of v or idle groups compute a value nobody uses.
        if (has_norm) {
            float ss = 0.0f;
            if (p.regs_ss) {
                ss = qkv_head::sum_squares<T, W, kPacks>(v, gl, glanes, hd, is_qk);
            } else {
                // G == 32 here: replay the reference's partition (packs of `part` at
                // lane * part + k * 32 * part) over the raw head staged in shared memory.
#pragma unroll
                for (int k = 0; k < kPacks; ++k) {
                    const int c = (gl + k * glanes) * W;
                    if (is_qk && c < hd) {
                        qkv_head::store_shared<T, W>(buf + c, v[k]);
                    }
                }
                __syncwarp();
                if (is_qk) {
                    for (int c = gl * part; c < hd; c += kWarp * part) {
                        float chunk = 0.0f;
                        for (int j = 0; j < part; ++j) {
                            const float f = to_f32(buf[c + j]);
                            chunk = fmaf(f, f, chunk);
                        }
                        ss += chunk;
                    }
                }
                __syncwarp();  // buf is rewritten by the rotary step
            }
            qkv_head::apply_norm<T, W, kPacks>(v, w, ss, gl, glanes, hd, p.eps, is_qk);
        }

        __syncthreads();  // the cos/sin table is complete

        // 4. Rotary of q and k.
        if (half > 0) {
            qkv_head::apply_rotary<T, W, kPacks>(v, buf, cs, gl, glanes, hd, half, is_qk);
        }

        // 5. Stores: q and k in place, k and v into the pools.
        const int64_t block = slot_ok ? slot / p.block_size : 0;
        const int64_t offset = slot_ok ? slot - block * p.block_size : 0;
        const int64_t dst_base = ((block * p.n_kv_heads + kv_head) * p.block_size + offset) * hd;
#pragma unroll
        for (int k = 0; k < kPacks; ++k) {
            const int c = (gl + k * glanes) * W;
            if (c >= hd) {
                continue;
            }
            if (is_qk && (has_norm || half > 0)) {  // else k is unchanged: no write-back
                store_pack<T, W>(row + c, v[k]);
            }
            if (slot_ok && is_k) {
                store_pool<T, W>(p.k_pool + dst_base + c, v[k], p.pool_vec);
            } else if (slot_ok && is_v) {
                store_pool<T, W>(p.v_pool + dst_base + c, v[k], p.pool_vec);
            }
        }
        __syncthreads();  // cs and the staging buffers are rewritten for the next token
    }
}

template <typename T, int W>
cudaError_t launch_typed(const EpilogueParams<T>& p, cudaStream_t stream) {
    const int64_t heads_per_cta = static_cast<int64_t>(kWarps) * (kWarp >> p.lanes_log2);
    const int64_t tasks = p.n_tasks - p.task_begin;
    const int64_t gx = (tasks + heads_per_cta - 1) / heads_per_cta;
    const int64_t gy = p.n_tokens > kMaxGridY ? kMaxGridY : p.n_tokens;
    if (const cudaError_t launched = launch_kernel(
            qkv_epilogue_kernel<T, W>,
            dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy), 1), kThreads, 0, stream, p);
        launched != cudaSuccess) {
        return launched;
    }
    return cudaGetLastError();
}

template <typename T>
cudaError_t launch_for_type(EpilogueParams<T> p, const void* qkv, int64_t qkv_stride,
                            cudaStream_t stream) {
    constexpr int kVec = 16 / static_cast<int>(sizeof(T));
    // head_dim % 16 == 0, so kVec always divides it; the row starts decide the data width.
    const bool vec = aligned16(qkv) && qkv_stride % kVec == 0;
    const int w = vec ? kVec : 1;
    // The reference norm vectorises a call when its rows (q or k, both aligned iff qkv's are,
    // since n_heads * head_dim is a multiple of kVec) and its weight are 16-byte aligned.
    p.q_part = vec && aligned16(p.q_weight) ? kVec : 1;
    p.k_part = vec && aligned16(p.k_weight) ? kVec : 1;
    p.regs_ss = p.q_weight == nullptr || (p.q_part == w && p.k_part == w);
    p.pool_vec = vec && aligned16(p.k_pool) && aligned16(p.v_pool);
    int lanes = 32;
    if (p.regs_ss) {
        const int packs = p.head_dim / w;
        lanes = 1;
        while (lanes < packs && lanes < 32) {
            lanes *= 2;
        }
    }
    p.lanes_log2 = 0;
    while ((1 << p.lanes_log2) < lanes) {
        ++p.lanes_log2;
    }
    if (vec) {
        return launch_typed<T, kVec>(p, stream);
    }
    return launch_typed<T, 1>(p, stream);
}

}  // namespace

cudaError_t launch_qkv_epilogue(void* qkv, int64_t qkv_stride, int64_t n_tokens, int64_t n_heads,
                                int64_t n_kv_heads, int64_t head_dim, const void* q_norm_weight,
                                const void* k_norm_weight, float eps, const int32_t* positions,
                                const float* inv_freq, int64_t rotary_dim,
                                float attention_scaling, void* k_pool, void* v_pool,
                                const PagedKvLayout& layout, const int32_t* slots,
                                int32_t* bad_slot, ElemType type, cudaStream_t stream) {
    constexpr int64_t kMaxHeads = 1 << 16;
    if (type != ElemType::kF32 && type != ElemType::kF16 && type != ElemType::kBF16) {
        return cudaErrorInvalidValue;
    }
    if (n_tokens < 0 || n_heads <= 0 || n_kv_heads <= 0 || n_heads > kMaxHeads ||
        n_kv_heads > kMaxHeads || head_dim < 16 || head_dim > kMaxHeadDim ||
        head_dim % 16 != 0 || qkv_stride < (n_heads + 2 * n_kv_heads) * head_dim ||
        rotary_dim < 0 || rotary_dim % 2 != 0 || rotary_dim > head_dim ||
        (q_norm_weight == nullptr) != (k_norm_weight == nullptr) ||
        layout.n_kv_heads != n_kv_heads || layout.head_dim != head_dim || layout.n_blocks <= 0 ||
        layout.block_size <= 0) {
        return cudaErrorInvalidValue;
    }
    if (n_tokens == 0) {
        return cudaSuccess;
    }
    if (qkv == nullptr || k_pool == nullptr || v_pool == nullptr || slots == nullptr ||
        (rotary_dim > 0 && (positions == nullptr || inv_freq == nullptr))) {
        return cudaErrorInvalidValue;
    }
    const bool q_work = q_norm_weight != nullptr || rotary_dim > 0;
    auto make = [&](auto tag) {
        using T = decltype(tag);
        EpilogueParams<T> p{};
        p.qkv = static_cast<T*>(qkv);
        p.qkv_stride = qkv_stride;
        p.n_tokens = n_tokens;
        p.n_heads = static_cast<int32_t>(n_heads);
        p.n_kv_heads = static_cast<int32_t>(n_kv_heads);
        p.n_tasks = static_cast<int32_t>(n_heads + 2 * n_kv_heads);
        p.task_begin = q_work ? 0 : static_cast<int32_t>(n_heads);
        p.head_dim = static_cast<int32_t>(head_dim);
        p.q_weight = static_cast<const T*>(q_norm_weight);
        p.k_weight = static_cast<const T*>(k_norm_weight);
        p.eps = eps;
        p.positions = positions;
        p.inv_freq = inv_freq;
        p.half = static_cast<int32_t>(rotary_dim / 2);
        p.attention_scaling = attention_scaling;
        p.k_pool = static_cast<T*>(k_pool);
        p.v_pool = static_cast<T*>(v_pool);
        p.block_size = layout.block_size;
        p.n_slots = layout.n_blocks * layout.block_size;
        p.slots = slots;
        p.bad_slot = bad_slot;
        return p;
    };
    switch (type) {
        case ElemType::kF32:
            return launch_for_type<float>(make(float{}), qkv, qkv_stride, stream);
        case ElemType::kF16:
            return launch_for_type<__half>(make(__half{}), qkv, qkv_stride, stream);
        case ElemType::kBF16:
            return launch_for_type<__nv_bfloat16>(make(__nv_bfloat16{}), qkv, qkv_stride,
                                                  stream);
    }
    return cudaErrorInvalidValue;
}

}  // namespace helexa::kernels
