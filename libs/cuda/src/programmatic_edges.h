// Programmatic edges into kernels we did not write: a CUDA graph captured around a library call
// (cuBLASLt's matmul) can start the library's first kernel under the tail of the kernel before
// it, as programmatic dependent launch does for our own kernels (libs/kernels/src/launch.cuh),
// but only where that kernel waits for its grid dependency (griddepcontrol.wait) before it reads
// its inputs. Whether it does cannot be read off a closed library, so it is tested, once per
// algorithm, on the device (first_kernel_waits_for_grid).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <functional>

#include "helexa/common/result.h"

namespace helexa::cuda {

// The call under test: launches the library's work reading x and writing out on `stream`.
using LibraryCall = std::function<Status(const void* x, void* out, cudaStream_t stream)>;

// What first_kernel_waits_for_grid found.
enum class GridWaitProbe {
    kWaits,        // the kernel waited: a programmatic edge into it is safe
    kReadsEarly,   // it read its input before the kernel it followed had written it
    kRefused,      // CUDA refused the capture or the programmatic edge
};

// Runs `call` twice on private buffers: once plainly, on an x of 16-bit ones, and once in a
// captured graph behind a kernel that lets its dependents launch at once but writes those ones
// into an x of NaNs only 200 us later, with the edge into `call`'s first kernel programmatic.
// kWaits when both runs give the same bits; a kernel that read x early saw NaNs. Never call it
// while `stream` is capturing. x_elems: the 16-bit elements `call` reads from x; one_bits: 1.0
// in the operand type; out_bytes: the bytes it writes (read too when it accumulates: zeroed
// first).
Result<GridWaitProbe> first_kernel_waits_for_grid(const LibraryCall& call, size_t x_elems,
                                                  uint16_t one_bits, size_t out_bytes,
                                                  cudaStream_t stream);
const char* to_string(GridWaitProbe probe);

// While `stream` is capturing behind exactly one kernel node: the next node captured depends on
// that kernel through a programmatic edge (it may start once every CTA of the kernel has let its
// dependents launch). Otherwise leaves the capture as it is.
Status make_next_captured_edge_programmatic(cudaStream_t stream);

// Whether `stream` is capturing a graph now.
bool stream_is_capturing(cudaStream_t stream);

}  // namespace helexa::cuda
