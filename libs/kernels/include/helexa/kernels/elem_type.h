// Element types the kernels are instantiated for, and the tensor-view conventions every launcher
// in this library follows.
//
// Conventions (all launchers):
// - Matrices are row-major 2-D views: element (r, c) at base + r * stride + c, strides in
//   elements. A launcher never allocates, never synchronises and never throws; it returns the
//   launch's cudaError_t (cudaErrorInvalidValue for arguments it rejects).
// - Activations and weights share one ElemType per call (bf16 or f16; f32 is accepted wherever
//   noted, for tests and logits); arithmetic accumulates in f32.
// - Index tensors (token ids, positions, KV slots, block tables) are int32 device arrays.
#pragma once

#include <cstdint>

namespace helexa::kernels {

enum class ElemType : int32_t { kF32 = 0, kF16 = 1, kBF16 = 2 };

inline int64_t elem_size(ElemType t) { return t == ElemType::kF32 ? 4 : 2; }

}  // namespace helexa::kernels
