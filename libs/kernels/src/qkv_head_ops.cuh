// The per-head arithmetic of the q/k/v epilogue (per-head RMSNorm, neox rotary, the cos/sin
// table), shared by the epilogue kernel (qkv_epilogue.cu) and the decode attention that does the
// epilogue itself (attention_decode.cu), so the two produce the same bits by construction.
//
// A head of head_dim elements is held by a group of G lanes of one warp (G a power of two <= 32):
// lane gl of the group holds packs of W elements at columns (gl + k * G) * W, k < kPacks. Every
// function here is called by all 32 lanes of the warp (they shuffle or sync the warp); `active`
// says whether the lane's group has a head to work on.
//
// Bit-exactness with norm.cu / pointwise.cu (the reference the engine was verified with):
// - Sum of squares: the reference warp kernel gives lane L the packs at L * P + k * 32 * P, sums
//   each pack with an fmaf chain from 0, adds the pack sums, then does an xor butterfly over 32
//   lanes. With P == W and G lanes this is the same sum: when G < 32 all data sits in lanes < G,
//   and the butterfly steps with offset >= G only add exact zeros to them.
// - Rotary: the pair (i, i + half) is computed by the lane that holds element i, with the
//   reference's expressions `a * c - b * s` and `b * c + a * s` written the same way (so that the
//   compiler contracts them into the same fma), a and b being the activation-type values.
// - cos/sin: precise sincosf of float(pos) * inv_freq[i], times attention_scaling, rounded to T
//   (rotary_table; pointwise.cu's rope kernel builds its table with it too).
#pragma once

#include <cuda_runtime.h>

#include "elem_access.cuh"

namespace helexa::kernels::qkv_head {

constexpr int kWarp = 32;

// A 16-byte pack store to shared memory, in PTX: the compiler splits a pack rebuilt from 16-bit
// values into narrow shared stores (four to eight instructions instead of one).
template <typename T, int VEC>
__device__ __forceinline__ void store_shared(T* dst, const Pack<T, VEC>& v) {
    if constexpr (sizeof(Pack<T, VEC>) == 16) {
        uint4 u;
        memcpy(&u, &v, 16);
        const auto addr = static_cast<unsigned>(__cvta_generic_to_shared(dst));
        asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};" ::"r"(addr), "r"(u.x), "r"(u.y),
                     "r"(u.z), "r"(u.w)
                     : "memory");
    } else {
        *reinterpret_cast<Pack<T, VEC>*>(dst) = v;
    }
}

// One position's table: cs[i] = cos, cs[half + i] = sin of float(pos) * inv_freq[i], each times
// attention_scaling and rounded to T. Threads tid, tid + n_threads, ... fill it.
template <typename T>
__device__ __forceinline__ void rotary_table(float* cs, int32_t position, const float* inv_freq,
                                             int half, float attention_scaling, int tid,
                                             int n_threads) {
    const float pos = static_cast<float>(position);
    for (int i = tid; i < half; i += n_threads) {
        const float angle = pos * inv_freq[i];
        float s;
        float c;
        sincosf(angle, &s, &c);
        cs[i] = round_to<T>(c * attention_scaling);
        cs[half + i] = round_to<T>(s * attention_scaling);
    }
}

// This lane's share of the head's sum of squares, from the packs it holds.
template <typename T, int W, int kPacks>
__device__ __forceinline__ float sum_squares(const Pack<T, W> (&v)[kPacks], int gl, int glanes,
                                             int hd, bool active) {
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < kPacks; ++k) {
        const int c = (gl + k * glanes) * W;
        if (active && c < hd) {
            float chunk = 0.0f;
#pragma unroll
            for (int j = 0; j < W; ++j) {
                const float f = to_f32(v[k].v[j]);
                chunk = fmaf(f, f, chunk);
            }
            ss += chunk;
        }
    }
    return ss;
}

// Finishes the per-head RMSNorm from each lane's share `ss` of the sum of squares: the group's
// xor butterfly, then y = round(x * inv), x = round(weight * y), as launch_rms_norm_heads does.
template <typename T, int W, int kPacks>
__device__ __forceinline__ void apply_norm(Pack<T, W> (&v)[kPacks], const Pack<T, W> (&w)[kPacks],
                                           float ss, int gl, int glanes, int hd, float eps,
                                           bool active) {
    for (int off = glanes / 2; off > 0; off >>= 1) {
        ss += __shfl_xor_sync(0xffffffffu, ss, off);
    }
    const float inv = rsqrtf(ss / static_cast<float>(hd) + eps);
    if (!active) {
        return;
    }
#pragma unroll
    for (int k = 0; k < kPacks; ++k) {
        const int c = (gl + k * glanes) * W;
        if (c < hd) {
#pragma unroll
            for (int j = 0; j < W; ++j) {
                const float y = round_to<T>(to_f32(v[k].v[j]) * inv);
                v[k].v[j] = from_f32<T>(to_f32(w[k].v[j]) * y);
            }
        }
    }
}

// W values of a cos/sin table in shared memory; 16-byte loads when W allows (the caller
// guarantees alignment then: the index is a multiple of W).
template <int W>
__device__ __forceinline__ void load_table(const float* src, float (&dst)[W]) {
    if constexpr (W % 4 == 0) {
#pragma unroll
        for (int j = 0; j < W; j += 4) {
            const float4 f = *reinterpret_cast<const float4*>(src + j);
            dst[j] = f.x;
            dst[j + 1] = f.y;
            dst[j + 2] = f.z;
            dst[j + 3] = f.w;
        }
    } else {
#pragma unroll
        for (int j = 0; j < W; ++j) {
            dst[j] = src[j];
        }
    }
}

// Neox rotary of the head in place: publish it to `buf` (the group's head_dim elements of
// shared memory), let the owner of element i compute both halves of pair (i, i + half) and hand
// the upper one back through buf. cs: rotary_table() of the head's position, complete.
template <typename T, int W, int kPacks>
__device__ __forceinline__ void apply_rotary(Pack<T, W> (&v)[kPacks], T* buf, const float* cs,
                                             int gl, int glanes, int hd, int half, bool active) {
    if (active) {
#pragma unroll
        for (int k = 0; k < kPacks; ++k) {
            const int c = (gl + k * glanes) * W;
            if (c < hd) {
                store_shared<T, W>(buf + c, v[k]);
            }
        }
    }
    __syncwarp();
    if (active) {
#pragma unroll
        for (int k = 0; k < kPacks; ++k) {
            const int c = (gl + k * glanes) * W;
            if (c >= hd || c >= half) {
                continue;
            }
            if (half % W == 0) {
                // The whole pack is in the lower half and its partner pack is aligned.
                const Pack<T, W> bp = load_pack<T, W>(buf + c + half);
                float co[W];
                float si[W];
                load_table<W>(cs + c, co);
                load_table<W>(cs + half + c, si);
                Pack<T, W> hp;
#pragma unroll
                for (int j = 0; j < W; ++j) {
                    const float a = to_f32(v[k].v[j]);
                    const float b = to_f32(bp.v[j]);
                    const float cv = co[j];
                    const float sv = si[j];
                    v[k].v[j] = from_f32<T>(a * cv - b * sv);
                    hp.v[j] = from_f32<T>(b * cv + a * sv);
                }
                store_shared<T, W>(buf + c + half, hp);
            } else {
#pragma unroll
                for (int j = 0; j < W; ++j) {
                    const int e = c + j;
                    if (e < half) {
                        const float a = to_f32(v[k].v[j]);
                        const float b = to_f32(buf[e + half]);
                        const float cv = cs[e];
                        const float sv = cs[half + e];
                        v[k].v[j] = from_f32<T>(a * cv - b * sv);
                        buf[e + half] = from_f32<T>(b * cv + a * sv);
                    }
                }
            }
        }
    }
    __syncwarp();
    if (active) {
#pragma unroll
        for (int k = 0; k < kPacks; ++k) {
            const int c = (gl + k * glanes) * W;
            if (c >= hd || c + W <= half || c >= 2 * half) {
                continue;  // no element of this pack is an upper rotary half
            }
            if (half % W == 0) {
                v[k] = load_pack<T, W>(buf + c);  // the whole pack is in [half, 2 * half)
            } else {
#pragma unroll
                for (int j = 0; j < W; ++j) {
                    const int e = c + j;
                    if (e >= half && e < 2 * half) {
                        v[k].v[j] = buf[e];
                    }
                }
            }
        }
    }
}

}  // namespace helexa::kernels::qkv_head
