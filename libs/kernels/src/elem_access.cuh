// Element conversions and packed accesses every kernel of this library shares, so "the value a
// tensor of dtype T holds" (round_to) means the same thing in each of them: the fused kernels
// are checked against the separate ones bit for bit, which only holds while they round alike.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

namespace helexa::kernels {

__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }

// f32 -> T, rounded to nearest even.
template <typename T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ float from_f32<float>(float v) {
    return v;
}
template <>
__device__ __forceinline__ __half from_f32<__half>(float v) {
    return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}

// Rounds an f32 value to T and back: the value a tensor of dtype T would hold.
template <typename T>
__device__ __forceinline__ float round_to(float v) {
    return to_f32(from_f32<T>(v));
}

// SwiGLU's output from a gate and an up value as stored (already values of T): silu(gate),
// rounded as launch_silu_mul's intermediate, times up, in f32 (the caller rounds it once). Every
// kernel that fuses SwiGLU rounds through this one rule, so they agree with launch_silu_mul bit
// for bit.
template <typename T>
__device__ __forceinline__ float silu_mul_of(float gate, float up) {
    return round_to<T>(gate / (1.0f + expf(-gate))) * up;
}

// VEC elements moved as one access (16 bytes when VEC * sizeof(T) == 16).
template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) Pack {
    T v[VEC];
};

// Packs move as raw 16-byte accesses where the pack is 16 bytes: element-wise packs of 16-bit
// values are otherwise split into narrow accesses.
template <typename T, int VEC>
__device__ __forceinline__ Pack<T, VEC> load_pack(const T* src) {
    if constexpr (sizeof(Pack<T, VEC>) == 16) {
        const uint4 u = *reinterpret_cast<const uint4*>(src);
        Pack<T, VEC> v;
        memcpy(&v, &u, 16);
        return v;
    } else {
        return *reinterpret_cast<const Pack<T, VEC>*>(src);
    }
}

template <typename T, int VEC>
__device__ __forceinline__ void store_pack(T* dst, const Pack<T, VEC>& v) {
    if constexpr (sizeof(Pack<T, VEC>) == 16) {
        uint4 u;
        memcpy(&u, &v, 16);
        *reinterpret_cast<uint4*>(dst) = u;
    } else {
        *reinterpret_cast<Pack<T, VEC>*>(dst) = v;
    }
}

// The small-batch matmuls' 16-byte weight and x packs widened to floats.
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

// The 8 elements of one pack.
template <typename W>
__device__ __forceinline__ void unpack8(const uint4& p, float (&f)[8]) {
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

}  // namespace helexa::kernels
