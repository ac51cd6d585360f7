// What sits in the L2 cache, on purpose: every line pushed out before a measurement that must see
// device-memory speed (the cuBLASLt tuner times its candidates from a cold L2). A prefetch of the
// next projection into L2 beside the attention was tried and measured no gain (H200, run 7 in
// docs/perf/cuda-engine.md; removed, in git history before that note).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

namespace helexa::kernels {

// Reads every byte of `scratch` through L2 (and nowhere else), so that a buffer at least twice
// the L2 size leaves nothing else cached, and no dirty line whose write-back would be charged to
// whatever runs next. For timing a memory-bound kernel as a real step sees it: with its weights
// in device memory, not left in L2 by the previous run.
cudaError_t launch_l2_evict(const void* scratch, size_t bytes, cudaStream_t stream);

}  // namespace helexa::kernels
