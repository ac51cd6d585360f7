#include "cuda_status.h"

namespace helexa::cuda {

bool is_sticky_error(cudaError_t err) {
    switch (err) {
        case cudaErrorIllegalAddress:
        case cudaErrorLaunchFailure:
        case cudaErrorECCUncorrectable:
        case cudaErrorHardwareStackError:
        case cudaErrorIllegalInstruction:
        case cudaErrorMisalignedAddress:
        case cudaErrorInvalidAddressSpace:
        case cudaErrorInvalidPc:
        case cudaErrorLaunchTimeout:
        case cudaErrorAssert:
        case cudaErrorUnknown:
            return true;
        default:
            return false;
    }
}

Status cuda_status(cudaError_t err, const std::string& what) {
    if (err == cudaSuccess) {
        return ok();
    }
    const std::string msg = what + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
    if (err == cudaErrorMemoryAllocation) {
        return fail(ErrorCode::kInsufficientVram, msg);
    }
    if (is_sticky_error(err)) {
        return fail(ErrorCode::kModelRecovering, "device fault: " + msg);
    }
    if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver ||
        err == cudaErrorInvalidDevice) {
        return fail(ErrorCode::kCudaUnavailable, msg);
    }
    return fail(ErrorCode::kInternal, msg);
}

Status cublas_status(cublasStatus_t st, const std::string& what) {
    if (st == CUBLAS_STATUS_SUCCESS) {
        return ok();
    }
    const std::string msg = what + ": cuBLAS status " + std::to_string(static_cast<int>(st));
    if (st == CUBLAS_STATUS_ALLOC_FAILED) {
        return fail(ErrorCode::kInsufficientVram, msg);
    }
    return fail(ErrorCode::kInternal, msg);
}

}  // namespace helexa::cuda
