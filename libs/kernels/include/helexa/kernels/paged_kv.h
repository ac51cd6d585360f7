// The paged KV cache's device layout and its write launcher.
//
// One layer's K pool (and, separately, its V pool) is
//   [n_blocks, n_kv_heads, block_size, head_dim]
// so one head's keys of one block are block_size * head_dim contiguous elements (a 4 KiB tile for
// bf16, block 16, head_dim 128): attention streams whole tiles per head. Token slot s lives in
// block s / block_size at offset s % block_size.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "helexa/kernels/elem_type.h"

namespace helexa::kernels {

struct PagedKvLayout {
    int64_t n_blocks = 0;
    int64_t n_kv_heads = 0;
    int64_t block_size = 0;
    int64_t head_dim = 0;
    // Elements in one layer's K (or V) pool.
    int64_t layer_elems() const { return n_blocks * n_kv_heads * block_size * head_dim; }
};

// Scatters k, v [n_tokens, n_kv_heads * head_dim] (strided views) into one layer's pools at
// slots[t] (int32 [n_tokens], each in [0, n_blocks * block_size)). Slots outside the pool are
// skipped and set *bad_slot (device int32, may be null) to 1.
cudaError_t launch_kv_write(void* k_pool, void* v_pool, const PagedKvLayout& layout,
                            const void* k, int64_t k_stride, const void* v, int64_t v_stride,
                            const int32_t* slots, int64_t n_tokens, int32_t* bad_slot,
                            ElemType type, cudaStream_t stream);

}  // namespace helexa::kernels
