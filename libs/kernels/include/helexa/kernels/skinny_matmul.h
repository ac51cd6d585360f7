// The decode-time linear: out[T, N] = x[T, K] * w[N, K]^T (+ bias[N]) for a handful of rows T,
// where the step is bound by reading w once. Each warp streams whole rows of w with 16-byte
// loads and dots them against all T rows of x, so w is read exactly once per call whatever T
// is. cuBLASLt takes over above kSkinnyMaxRows (or when this path is slower for a shape, as
// measured by the GPU benchmark).
//
// The operations a decoder layer puts around its projections are fused into the same kernel
// (SkinnyFusion), because at decode they cost a launch each and almost no bandwidth: the
// RMSNorm of the input (pre-norm), the residual add of the output, and SwiGLU over a fused
// gate/up projection. Each fused result equals the separate kernels' (norm.h, pointwise.h) up to
// where the f32 accumulation is rounded (see SkinnyFusion).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "helexa/kernels/elem_type.h"

namespace helexa::kernels {

inline constexpr int64_t kSkinnyMaxRows = 4;

// A fused norm keeps the T normalised rows of x in shared memory (2 bytes an element), within
// the 48 KiB a kernel may take without opting in (less the kernel's own ~1 KiB).
inline constexpr int kSkinnyNormSmemBytes = 46 * 1024;
inline bool skinny_norm_fits(int64_t T, int64_t K) { return T * K * 2 <= kSkinnyNormSmemBytes; }

struct SkinnyFusion {
    // Non-null: each row of x is first replaced by rms_norm(x) * norm_weight ([K], eps), rounded
    // to the element type exactly as launch_rms_norm stores it.
    const void* norm_weight = nullptr;
    float eps = 0.0f;
    enum class Output : int32_t {
        kStore,       // out = y (+ bias), rounded once to out_type
        kAccumulate,  // out += y (+ bias): the residual add, rounded once (out_type == type)
        // w holds N/2 gate rows then N/2 up rows; out: [T, N/2] with
        // out[t, i] = silu(g) * u, g and u the rounded outputs i and N/2 + i, as launch_silu_mul
        // computes it from a stored gate/up product (out_type == type).
        kSwiGlu,
    };
    Output output = Output::kStore;
};

// The element types both skinny matmuls (this one and skinny_mma_matmul.h) take: bf16 or f16
// weights and activations (f32 weights take the cuBLASLt path), the output in the same type, or
// f32 for a plain store (logits).
inline bool skinny_types_supported(ElemType type, ElemType out_type,
                                   SkinnyFusion::Output output) {
    if (type != ElemType::kBF16 && type != ElemType::kF16) {
        return false;
    }
    return out_type == type ||
           (output == SkinnyFusion::Output::kStore && out_type == ElemType::kF32);
}

// x: [T, K] (row stride x_stride), w: [N, K] contiguous, bias: [N] or null, all of `type`
// (bf16 or f16); out: [T, N] (or [T, N/2] for kSwiGlu; row stride out_stride) of out_type
// (type or f32). Requires 1 <= T <= kSkinnyMaxRows, K % 8 == 0, x_stride % 8 == 0, 16-byte
// aligned x and w, even N for kSwiGlu, skinny_norm_fits(T, K) for a fused norm. out must not
// alias x.
cudaError_t launch_skinny_matmul(void* out, int64_t out_stride, ElemType out_type, const void* x,
                                 int64_t x_stride, const void* w, const void* bias, int64_t T,
                                 int64_t N, int64_t K, ElemType type, const SkinnyFusion& fusion,
                                 cudaStream_t stream);

}  // namespace helexa::kernels
