// See fault_injection.h.
#include <cuda_runtime.h>

#include <cstdint>

#include "helexa/kernels/fault_injection.h"

namespace helexa::kernels {
namespace {

__global__ void illegal_write_kernel(volatile int* target) { *target = 1; }

}  // namespace

cudaError_t launch_illegal_address_for_test(cudaStream_t stream) {
    // The first page is never mapped on the device: the store faults.
    auto* target = reinterpret_cast<volatile int*>(static_cast<uintptr_t>(0x10));
    illegal_write_kernel<<<1, 1, 0, stream>>>(target);
    return cudaGetLastError();
}

}  // namespace helexa::kernels
