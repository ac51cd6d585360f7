// cudaError_t / cublasStatus_t -> helexa::Status, and the test for errors that poison a device.
//
// A "sticky" error (illegal address, launch failure, ECC, ...) leaves the CUDA context unusable:
// every later call on it fails. Such errors map to kModelRecovering (503 + Retry-After) and mark
// the backend poisoned, so the node unloads and reloads the model; every other error fails one
// request and leaves the device alone (CONVENTIONS.md "Errors").
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <string>

#include "helexa/common/result.h"

namespace helexa::cuda {

// True for errors after which the context cannot be used again.
bool is_sticky_error(cudaError_t err);

// ok() for cudaSuccess, else an Error naming `what` and CUDA's own name for the error.
Status cuda_status(cudaError_t err, const std::string& what);
Status cublas_status(cublasStatus_t st, const std::string& what);

}  // namespace helexa::cuda

