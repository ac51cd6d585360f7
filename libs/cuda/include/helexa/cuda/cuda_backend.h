// The engine's `cuda` backend: bf16/f16 activations with f32 accumulation, weights converted to
// the activation dtype at upload, a paged bf16/f16 KV pool, hand-written kernels (libs/kernels)
// for everything but prefill-sized linears, which go through cuBLASLt.
//
// Each device is owned by one DeviceWorker thread for the process's life; a CudaBackend lives
// and dies on its device's worker, and load_model_runner sends every step there (the backend
// reports the worker through Backend::executor()).
//
// Use: call register_cuda_backend() once at start-up (neuron's main, GPU tests and benchmarks);
// then engine::make_backend({.kind = "cuda", .device = n}) works like any other backend.
// Thread-safety: register_cuda_backend() and list_devices() from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "helexa/common/result.h"
#include "helexa/engine/backend.h"

namespace helexa::cuda {

// Makes "cuda" available to engine::make_backend. Idempotent.
void register_cuda_backend();

// Creates a backend on options.device; runs the creation on the device's worker thread.
// Errors: kCudaUnavailable (no device / driver), kInvalidRequest (activation dtype not bf16/f16).
Result<std::unique_ptr<engine::Backend>> make_cuda_backend(const engine::BackendOptions& options);

struct DeviceInfo {
    int ordinal = 0;
    std::string name;
    int compute_major = 0;
    int compute_minor = 0;
    int sm_count = 0;
    int64_t total_bytes = 0;
    int64_t free_bytes = 0;
};

// Every visible device (empty when there is none or no driver).
std::vector<DeviceInfo> list_devices();

}  // namespace helexa::cuda
