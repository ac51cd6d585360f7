// The running best (value, id) of a logits row's reductions, and its warp reduction: shared by the
// argmax kernel (sampling.cu) and the draw kernels (draw_rows.cu). Order: the rule's
// (draw::before: a present id first, then the higher key, then the lower id), so a reduction's
// result does not depend on which thread saw what.
#pragma once

#include <cstdint>

#include "helexa/engine/draw_rule.h"

namespace helexa::kernels {

struct RowBest {
    float key;        // a logit, or a draw's key
    int32_t id;       // -1: none yet
    int32_t pos_inf;  // a +inf was seen (the row is broken)
};

__device__ __forceinline__ RowBest no_row_best() {
    return RowBest{0.0F, -1, 0};
}

// Merges o into b.
__device__ __forceinline__ void merge_row_best(RowBest& b, const RowBest& o) {
    if (engine::draw::before(o.key, o.id, b.key, b.id)) {
        b.key = o.key;
        b.id = o.id;
    }
    b.pos_inf |= o.pos_inf;
}

// The best of a warp's 32 values, in every lane.
__device__ __forceinline__ RowBest warp_row_best(RowBest b) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        RowBest o;
        o.key = __shfl_xor_sync(0xffffffffu, b.key, off);
        o.id = __shfl_xor_sync(0xffffffffu, b.id, off);
        o.pos_inf = __shfl_xor_sync(0xffffffffu, b.pos_inf, off);
        merge_row_best(b, o);
    }
    return b;
}

}  // namespace helexa::kernels
