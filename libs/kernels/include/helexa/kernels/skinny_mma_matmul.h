// The small-batch linear on tensor cores: out[T, N] = x[T, K] * w[N, K]^T (+ bias[N]) for a few
// dozen rows T (continuous batching's decode steps: 8-64 concurrent streams), where the step is
// still bound by reading w once but a dot product per output on CUDA cores (skinny_matmul.h) no
// longer keeps up, and cuBLASLt's GEMMs lose a third of the bandwidth on the smaller projections
// (ramp, tail and split-K reduction of a kernel that cannot overlap its neighbours).
//
// The fusions are skinny_matmul.h's (SkinnyFusion) except the input norm, which at these row
// counts runs as its own kernel: norm_weight must be null.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "helexa/kernels/elem_type.h"
#include "helexa/kernels/skinny_matmul.h"

namespace helexa::kernels {

inline constexpr int64_t kSkinnyMmaMaxRows = 64;
// Outputs the kernel's fix-up counters cover (one counter per 128 rows of w): the largest
// vocabulary a logits projection may have on this path.
inline constexpr int64_t kSkinnyMmaMaxN = 4096 * 128;

// The shapes the kernel takes: 1..kSkinnyMmaMaxRows rows, K a multiple of 64, N up to
// kSkinnyMmaMaxN; for SwiGLU each half (N / 2) a multiple of 8 (a tile interleaves 8 gate rows
// with their 8 up rows).
inline bool skinny_mma_fits(int64_t T, int64_t N, int64_t K, SkinnyFusion::Output output) {
    return T >= 1 && T <= kSkinnyMmaMaxRows && K > 0 && K % 64 == 0 && N > 0 &&
           N <= kSkinnyMmaMaxN && (output != SkinnyFusion::Output::kSwiGlu || N % 16 == 0);
}

// The shapes the chained MLP takes (launch_skinny_mma_mlp): T rows as above, hidden size D and
// intermediate size F multiples of 64 (gate_up's SwiGLU tile c is down's K chunk c), each
// matrix's tiles within the counters.
inline bool skinny_mma_mlp_fits(int64_t T, int64_t F, int64_t D) {
    return T >= 1 && T <= kSkinnyMmaMaxRows && F > 0 && F % 64 == 0 && D > 0 && D % 64 == 0 &&
           F / 64 <= kSkinnyMmaMaxN / 128 && D <= kSkinnyMmaMaxN;
}

// Whether the current device runs the kernel (compute capability 9.0 or later: it copies with
// the TMA); launches elsewhere answer cudaErrorNotSupported.
bool skinny_mma_supported();

// Debugging: every later launch writes, per CTA c, {SM id, start, first unit landed, last unit
// done, end} (globaltimer nanoseconds; start after the grid dependency wait; "last unit done"
// before the range's end finishes its shared tile) to device_buffer[5c..5c+4]; null stops it.
// device_buffer needs kSkinnyMmaTraceWords x SM count entries. linear_bench --trace uses it to
// see how the CTAs' ranges finish (docs/perf/cuda-engine.md, runs 15 and 29).
inline constexpr int kSkinnyMmaTraceWords = 5;
void skinny_mma_set_trace(unsigned long long* device_buffer);

// Device memory every launch on the current device needs as `workspace`: zeroed once before the
// first launch, and left zeroed (its counters) by every launch that completes. One workspace
// serves any number of launches that run one after another (one stream), not concurrent ones.
size_t skinny_mma_workspace_bytes();

// x: [T, K] (row stride x_stride), w: [N, K] contiguous, bias: [N] or null, all of `type` (bf16
// or f16); out: [T, N] (or [T, N/2] for kSwiGlu; row stride out_stride) of out_type (type or f32
// for kStore). Requires skinny_mma_fits(T, N, K, fusion.output), x_stride % 8 == 0, 16-byte
// aligned x and w, fusion.norm_weight == null, a workspace as above. out must not alias x.
// Each output is rounded once, as launch_skinny_matmul rounds it; the f32 sums differ from it
// only in summation order, and are the same on every run of the same shape on the same card.
cudaError_t launch_skinny_mma_matmul(void* out, int64_t out_stride, ElemType out_type,
                                     const void* x, int64_t x_stride, const void* w,
                                     const void* bias, int64_t T, int64_t N, int64_t K,
                                     ElemType type, const SkinnyFusion& fusion, void* workspace,
                                     cudaStream_t stream);

// The pre-norm decoder's MLP after its norm, in one launch: h = silu(x w_gate_up[:F]^T) *
// (x w_gate_up[F:]^T) ([T, F], row stride h_stride), then residual += h w_down^T ([T, D]).
// x: [T, D]; w_gate_up: [2F, D] (gate rows then up rows) and w_down: [D, F], contiguous; no
// biases; all of `type`. Requires skinny_mma_mlp_fits(T, F, D), 16-byte aligned x, h and
// weights, strides multiples of 8, the workspace above (not shared with a launch running at
// the same time), and every CTA of its one-per-SM grid resident (no other kernel holding SMs
// for good, as under MPS limits). The result equals launch_skinny_mma_matmul's SwiGLU launch
// followed by its accumulate launch, bit for bit.
cudaError_t launch_skinny_mma_mlp(void* residual, int64_t residual_stride, void* h,
                                  int64_t h_stride, const void* x, int64_t x_stride,
                                  const void* w_gate_up, const void* w_down, int64_t T, int64_t F,
                                  int64_t D, ElemType type, void* workspace,
                                  cudaStream_t stream);

}  // namespace helexa::kernels
