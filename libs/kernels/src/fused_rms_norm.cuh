// The input RMSNorm as the matmuls that fuse it compute it (skinny_matmul.cu, decode_chain.cu):
// each row's squares summed in launch_rms_norm's order (rms_norm_order.cuh) and each element
// rounded as launch_rms_norm stores it, so a row normalised by a fused kernel and by the norm
// kernel is the same bits.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "elem_access.cuh"
#include "rms_norm_order.cuh"

namespace helexa::kernels {

// Reduction warp vw's sums of squares of T rows (of k_packs 16-byte packs each), in
// launch_rms_norm's order for V = norm_threads: the lane sums packs vw * 32 + lane, + V, ...
// (each pack's eight squares an fmaf chain from 0, then added), then the warp's xor butterfly
// (offsets 16 .. 1). Every lane ends with the warp's sums. load(t, i) returns row t's pack i.
template <typename W, int T, typename Load>
__device__ __forceinline__ void norm_warp_sums(int vw, int lane, int64_t k_packs,
                                               int64_t norm_threads, Load load, float (&ss)[T]) {
#pragma unroll
    for (int t = 0; t < T; ++t) {
        ss[t] = 0.0f;
    }
    // Unrolled so a lane's loads are in flight together; the sums keep their order.
#pragma unroll 4
    for (int64_t i = vw * 32 + lane; i < k_packs; i += norm_threads) {
#pragma unroll
        for (int t = 0; t < T; ++t) {
            float xf[8];
            unpack8<W>(load(t, i), xf);
            float pack = 0.0f;
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                pack = fmaf(xf[j], xf[j], pack);
            }
            ss[t] += pack;
        }
    }
#pragma unroll
    for (int t = 0; t < T; ++t) {
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) {
            ss[t] += __shfl_xor_sync(0xffffffffu, ss[t], off);
        }
    }
}

// A pack of x normalised by inv_rms with the norm weight's pack nf: y = round(x * inv), out =
// round(w * y).
template <typename W>
__device__ __forceinline__ uint4 normalised_pack(const uint4& x, const float (&nf)[8],
                                                 float inv_rms) {
    float xf[8];
    unpack8<W>(x, xf);
    __align__(16) W y[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
        y[j] = from_f32<W>(nf[j] * round_to<W>(xf[j] * inv_rms));
    }
    return *reinterpret_cast<const uint4*>(y);
}

}  // namespace helexa::kernels
