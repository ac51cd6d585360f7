// Test support for device-fault recovery: a kernel that writes through an invalid address, so
// the context is left with cudaErrorIllegalAddress (a sticky error), exactly as a kernel bug or
// an uncorrectable ECC error leaves it. Never called outside tests and fault drills.
#pragma once

#include <cuda_runtime_api.h>

namespace helexa::kernels {

// Enqueues the faulting kernel; the fault surfaces at the next synchronisation.
cudaError_t launch_illegal_address_for_test(cudaStream_t stream);

}  // namespace helexa::kernels
