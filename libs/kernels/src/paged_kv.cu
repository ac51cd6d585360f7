// Paged KV cache write: scatters each token's K and V rows into one layer's pools.
//
// Grid: blockIdx.y walks tokens (grid-stride past 65535); the x dimension walks the token's
// n_kv_heads * head_dim elements in packs of VEC (16 bytes when head_dim and both source strides
// allow it). A pack never straddles heads because head_dim % VEC == 0 on the packed path, so its
// destination is contiguous too.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "helexa/kernels/paged_kv.h"
#include "launch.cuh"

namespace helexa::kernels {
namespace {

constexpr int kThreads = 128;
constexpr int64_t kMaxGridY = 65535;

// k_pool, v_pool: [n_blocks, n_kv_heads, block_size, head_dim] of one layer.
// k, v: [n_tokens, n_kv_heads * head_dim] (row strides k_stride, v_stride); slots: int32
// [n_tokens]. Everything is in units of Elem (a pack of VEC elements, moved as raw bytes): dims are
// already divided by VEC by the launcher.
template <typename Elem>
__global__ void __launch_bounds__(kThreads)
    kv_write_kernel(Elem* k_pool, Elem* v_pool, const Elem* k, int64_t k_stride, const Elem* v,
                    int64_t v_stride, const int32_t* slots, int64_t n_tokens, int64_t n_kv_heads,
                    int64_t block_size, int64_t head_packs, int64_t n_slots, int32_t* bad_slot) {
    // Nothing before this reads or writes what other kernels touch (launch.cuh).
    grid_dependency_wait();
    allow_dependent_launch();
    const int64_t width = n_kv_heads * head_packs;
    for (int64_t t = blockIdx.y; t < n_tokens; t += gridDim.y) {
        const int64_t slot = slots[t];
        if (slot < 0 || slot >= n_slots) {
            if (bad_slot != nullptr && blockIdx.x == 0 && threadIdx.x == 0) {
                *bad_slot = 1;
            }
            continue;  // uniform across the CTA: every thread reads the same slot
        }
        const int64_t block = slot / block_size;
        const int64_t offset = slot - block * block_size;
        for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < width;
             e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
            const int64_t h = e / head_packs;
            const int64_t d = e - h * head_packs;
            const int64_t dst = ((block * n_kv_heads + h) * block_size + offset) * head_packs + d;
            k_pool[dst] = k[t * k_stride + e];
            v_pool[dst] = v[t * v_stride + e];
        }
    }
}

bool aligned(const void* p, int64_t bytes) {
    return reinterpret_cast<uintptr_t>(p) % static_cast<uintptr_t>(bytes) == 0;
}

template <typename Elem>
cudaError_t launch_packed(void* k_pool, void* v_pool, const PagedKvLayout& layout, const void* k,
                          int64_t k_stride, const void* v, int64_t v_stride,
                          const int32_t* slots, int64_t n_tokens, int32_t* bad_slot, int64_t vec,
                          cudaStream_t stream) {
    const int64_t head_packs = layout.head_dim / vec;
    const int64_t width = layout.n_kv_heads * head_packs;
    int64_t gx = (width + kThreads - 1) / kThreads;
    gx = gx > 1024 ? 1024 : gx;
    const int64_t gy = n_tokens > kMaxGridY ? kMaxGridY : n_tokens;
    if (const cudaError_t launched = launch_kernel(
            kv_write_kernel<Elem>, dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy), 1),
            kThreads, 0, stream, static_cast<Elem*>(k_pool), static_cast<Elem*>(v_pool),
            static_cast<const Elem*>(k), k_stride / vec, static_cast<const Elem*>(v),
            v_stride / vec, slots, n_tokens, layout.n_kv_heads, layout.block_size, head_packs,
            layout.n_blocks * layout.block_size, bad_slot);
        launched != cudaSuccess) {
        return launched;
    }
    return cudaGetLastError();
}

}  // namespace

cudaError_t launch_kv_write(void* k_pool, void* v_pool, const PagedKvLayout& layout,
                            const void* k, int64_t k_stride, const void* v, int64_t v_stride,
                            const int32_t* slots, int64_t n_tokens, int32_t* bad_slot,
                            ElemType type, cudaStream_t stream) {
    if (type != ElemType::kF32 && type != ElemType::kF16 && type != ElemType::kBF16) {
        return cudaErrorInvalidValue;
    }
    const int64_t width = layout.n_kv_heads * layout.head_dim;
    if (n_tokens < 0 || layout.n_blocks <= 0 || layout.n_kv_heads <= 0 ||
        layout.block_size <= 0 || layout.head_dim <= 0 || k_stride < width ||
        v_stride < width) {
        return cudaErrorInvalidValue;
    }
    if (n_tokens == 0) {
        return cudaSuccess;
    }
    if (k_pool == nullptr || v_pool == nullptr || k == nullptr || v == nullptr ||
        slots == nullptr) {
        return cudaErrorInvalidValue;
    }
    // Widest pack (16, 8, 4 or 2 bytes) that divides head_dim and both strides and that every
    // base pointer is aligned to; the element type only matters through its size.
    const int64_t es = elem_size(type);
    for (int64_t bytes = 16; bytes > es; bytes /= 2) {
        const int64_t vec = bytes / es;
        if (layout.head_dim % vec == 0 && k_stride % vec == 0 && v_stride % vec == 0 &&
            aligned(k_pool, bytes) && aligned(v_pool, bytes) && aligned(k, bytes) &&
            aligned(v, bytes)) {
            switch (bytes) {
                case 16:
                    return launch_packed<uint4>(k_pool, v_pool, layout, k, k_stride, v,
                                                    v_stride, slots, n_tokens, bad_slot, vec,
                                                    stream);
                case 8:
                    return launch_packed<uint2>(k_pool, v_pool, layout, k, k_stride, v,
                                                   v_stride, slots, n_tokens, bad_slot, vec,
                                                   stream);
                default:
                    return launch_packed<uint32_t>(k_pool, v_pool, layout, k, k_stride, v,
                                                   v_stride, slots, n_tokens, bad_slot, vec,
                                                   stream);
            }
        }
    }
    if (es == 4) {
        return launch_packed<uint32_t>(k_pool, v_pool, layout, k, k_stride, v, v_stride, slots,
                                       n_tokens, bad_slot, 1, stream);
    }
    return launch_packed<uint16_t>(k_pool, v_pool, layout, k, k_stride, v, v_stride, slots,
                                   n_tokens, bad_slot, 1, stream);
}

}  // namespace helexa::kernels
