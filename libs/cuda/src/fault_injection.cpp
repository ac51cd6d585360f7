// See helexa/cuda/fault_injection.h.
#include "helexa/cuda/fault_injection.h"

#include <cuda_runtime_api.h>

#include "cuda_status.h"
#include "device_worker.h"
#include "helexa/kernels/fault_injection.h"

namespace helexa::cuda {

Status inject_device_fault(int device) {
    auto worker = DeviceWorker::for_device(device);
    Status result = ok();
    worker->run([&] {
        cudaError_t err = kernels::launch_illegal_address_for_test(nullptr);
        if (err == cudaSuccess) {
            err = cudaDeviceSynchronize();
        }
        if (is_sticky_error(err)) {
            worker->mark_faulted();
        }
        result = cuda_status(err, "injected device fault");
    });
    return result;
}

}  // namespace helexa::cuda
