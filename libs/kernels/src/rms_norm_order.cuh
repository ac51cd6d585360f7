// The order in which launch_rms_norm sums a row's squares, shared with the matmul that fuses the
// norm (skinny_matmul.cu), so a row normalised by either gets the same inverse RMS bit for bit.
// Float addition is not associative: a different order moves inv by an ulp, which flips the bf16
// rounding of some normalised elements, and the batched (norm kernel + cuBLASLt) and single-row
// (fused) paths of one model would drift apart by more than bf16 noise over the layers.
//
// The order (16-byte packs of 8 elements, rows 16-byte aligned): V "reduction threads"; thread v
// sums the squares of packs v, v + V, v + 2V, ... in turn (each pack's eight squares in an fmaf
// chain from 0, then added); each warp of 32 consecutive threads adds its lanes with an xor
// butterfly (offsets 16 .. 1); the warps' sums are added in warp order from 0.
#pragma once

#include <cstdint>

namespace helexa::kernels {

// Rows up to this many elements are normalised by one warp each (V = 32).
inline constexpr int64_t kNormWarpMaxCols = 1024;

// V for a row of `cols` elements in packs of `vec`: 32 for short rows, else about two packs per
// thread, a multiple of 32 in [128, 1024].
__host__ __device__ inline int64_t norm_reduce_threads(int64_t cols, int64_t vec) {
    if (cols <= kNormWarpMaxCols) {
        return 32;
    }
    const int64_t vecs = (cols + vec - 1) / vec;
    const int64_t threads = ((vecs + 1) / 2 + 31) / 32 * 32;
    return threads < 128 ? 128 : (threads > 1024 ? 1024 : threads);
}

}  // namespace helexa::kernels
