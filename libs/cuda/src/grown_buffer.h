// A device buffer that grows to the largest size a step has asked of it: scratch whose size
// depends on the step's shape (the paged attention's split workspace, the K-split partials).
// It only grows when a step of a new shape first runs, and outgrown buffers are kept until the
// backend goes: CUDA graphs recorded earlier still name them (their launches fit the old size),
// so freeing them would leave those graphs a dangling pointer.
// Thread-safety: owned and driven by the device's worker thread.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <vector>

namespace helexa::cuda {

struct GrownBuffer {
    void* ptr = nullptr;
    size_t bytes = 0;
    std::vector<void*> retired;  // outgrown, still named by older graphs

    // Makes room for `need` bytes (zeroed on `stream` when `zeroed`); a no-op when it fits.
    cudaError_t grow(size_t need, bool zeroed, cudaStream_t stream) {
        if (need <= bytes) {
            return cudaSuccess;
        }
        if (ptr != nullptr) {
            retired.push_back(ptr);
            ptr = nullptr;
            bytes = 0;
        }
        if (const cudaError_t err = cudaMalloc(&ptr, need); err != cudaSuccess) {
            ptr = nullptr;
            return err;
        }
        bytes = need;
        return zeroed ? cudaMemsetAsync(ptr, 0, need, stream) : cudaSuccess;
    }

    // Frees the buffer and every outgrown one (the backend's teardown, after its graphs).
    void release() {
        for (void* old : retired) {
            cudaFree(old);
        }
        retired.clear();
        if (ptr != nullptr) {
            cudaFree(ptr);
        }
        ptr = nullptr;
        bytes = 0;
    }
};

}  // namespace helexa::cuda
