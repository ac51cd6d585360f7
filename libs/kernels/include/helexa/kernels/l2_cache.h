// What sits in the L2 cache, on purpose: weights pulled in ahead of their use, or every line
// pushed out before a measurement that must see device-memory speed.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>

namespace helexa::kernels {

// Streams a read-only buffer (a weight matrix) from device memory into L2, with no other effect.
// At batch-1 decode the work between two projections (q/k epilogue, attention over a short
// context) is latency-bound and leaves the memory bus idle for ~15 us per layer; a prefetch
// launched beside it on a second stream fills that time with the next projection's weights,
// which that projection then reads from L2 instead of device memory.
// Enqueues bulk prefetches (cp.async.bulk.prefetch, compute capability 9.0+; nothing is
// launched on older devices) of [data, data + bytes) rounded inwards to 16-byte boundaries. The
// kernel returns once they are issued; they complete in the memory system. `data` must stay
// allocated until the stream has passed this point. A hint: the hardware may drop it.
cudaError_t launch_l2_prefetch(const void* data, size_t bytes, cudaStream_t stream);

// Reads every byte of `scratch` through L2 (and nowhere else), so that a buffer at least twice
// the L2 size leaves nothing else cached, and no dirty line whose write-back would be charged to
// whatever runs next. For timing a memory-bound kernel as a real step sees it: with its weights
// in device memory, not left in L2 by the previous run.
cudaError_t launch_l2_evict(const void* scratch, size_t bytes, cudaStream_t stream);

}  // namespace helexa::kernels
