// Does a kernel we did not write wait for its grid dependency? A kernel may be started under the
// tail of its predecessor (a programmatic edge of a CUDA graph, docs/design/gpu.md) only if it
// executes griddepcontrol.wait before it reads the predecessor's output; a library's kernel
// (cuBLASLt's) cannot be read, so it is tested: this kernel lets its dependents launch at once,
// then writes its output only after a delay. A dependent that reads that output without waiting
// sees it unwritten; one that waits sees it written.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace helexa::kernels {

// Writes `bits` into `count` 16-bit elements of dst, `delay_ns` after every CTA has allowed its
// dependent grids to launch (griddepcontrol.launch_dependents, then a spin on the global
// timer). Launched plainly (it is the primary of the tested edge, never a dependent).
cudaError_t launch_delayed_fill16(void* dst, uint16_t bits, size_t count, uint64_t delay_ns,
                                  cudaStream_t stream);

}  // namespace helexa::kernels
