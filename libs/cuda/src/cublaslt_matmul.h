// The prefill-sized linear through cuBLASLt: out[T, N] = x[T, K] * w[N, K]^T (+ bias[N]) with
// bf16/f16 operands, f32 accumulation and an out of the operand type or f32.
// Row-major out/x/w are seen column-major as D[N, T] = op_T(W[K, N]) * X[K, T], so no transpose
// is ever materialised. Plans (descriptors, layouts and the heuristic's algorithm) are cached
// per shape: the heuristic query costs tens of microseconds, a cached plan nothing. The
// heuristic's candidates are timed once per shape, from a cold L2 as a real step runs them.
// Thread-safety: owned and driven by the device's worker thread.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "helexa/common/result.h"

namespace helexa::cuda {

class CublasLtMatmul {
public:
    // workspace: device memory the algorithms may use (kept for the object's life).
    static Result<std::unique_ptr<CublasLtMatmul>> create(void* workspace, size_t workspace_bytes);
    ~CublasLtMatmul();
    CublasLtMatmul(const CublasLtMatmul&) = delete;
    CublasLtMatmul& operator=(const CublasLtMatmul&) = delete;

    // x: [T, K] (row stride x_stride), w: [N, K] contiguous, bias: [N] or null, all of
    // `operand_type`; out: [T, N] (row stride out_stride) of `out_type`. accumulate: out += the
    // product (beta = 1, the residual add, rounded once) instead of out = the product.
    Status run(void* out, int64_t out_stride, cudaDataType_t out_type, const void* x,
               int64_t x_stride, const void* w, const void* bias, int64_t T, int64_t N,
               int64_t K, cudaDataType_t operand_type, bool accumulate, cudaStream_t stream);

private:
    struct Plan;
    using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int, int, bool, bool>;
    CublasLtMatmul(cublasLtHandle_t handle, void* workspace, size_t workspace_bytes,
                   int64_t l2_bytes);
    Result<Plan*> plan(const Key& key);
    Status tune(Plan& plan, void* out, int64_t out_bytes, const void* x, const void* w,
                cudaStream_t stream);
    Status time_candidates(Plan& plan, void* out, const void* x, const void* w,
                           const void* evict, size_t evict_bytes, cudaStream_t stream);

    cublasLtHandle_t handle_;
    void* workspace_;
    size_t workspace_bytes_;
    int64_t l2_bytes_;  // the device's L2 size: tuning empties it before each timed run
    std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace helexa::cuda
