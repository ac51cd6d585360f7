// The prefill-sized linear through cuBLASLt: out[T, N] = x[T, K] * w[N, K]^T (+ bias[N]) with
// bf16/f16 operands, f32 accumulation and an out of the operand type or f32.
// Row-major out/x/w are seen column-major as D[N, T] = op_T(W[K, N]) * X[K, T], so no transpose
// is ever materialised. Plans (descriptors, layouts and the heuristic's algorithm) are cached
// per shape: the heuristic query costs tens of microseconds, a cached plan nothing. The
// heuristic's candidates are timed from a cold L2, as a real step runs them, once per tuning
// class: the shape with its row count rounded up to tuning_rows(T). A later shape of the class
// reuses the winner (when cuBLASLt accepts that algorithm for it), so a serving process tunes a
// bounded number of times instead of stalling every step whose token count is new (chunked
// prefill mixes any number of prompt tokens with the decode rows).
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

    // The row count a shape is tuned at: every count up to 8, then steps of 8 up to 64 (the
    // decode graph buckets, step_plan.h), then powers of two.
    static int64_t tuning_rows(int64_t T);
    // Shapes of more rows than this keep the heuristic's first choice untimed
    // (HELEXA_CUBLASLT_TUNE_MAX_ROWS; unlimited by default).
    static int64_t tune_max_rows();
    // How many shapes were tuned (timed) so far; the rest reused their class's winner.
    int64_t tuned_shapes() const { return tuned_shapes_; }

private:
    struct Plan;
    using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int, int, bool, bool>;
    CublasLtMatmul(cublasLtHandle_t handle, void* workspace, size_t workspace_bytes,
                   int64_t l2_bytes);
    Result<Plan*> plan(const Key& key);
    Status tune(Plan& plan, void* out, int64_t out_bytes, const void* x, const void* w,
                cudaStream_t stream);
    // Whether cuBLASLt runs `algo` for this plan's shape within our workspace.
    bool algo_fits(const Plan& plan, const cublasLtMatmulAlgo_t& algo) const;
    Status time_candidates(Plan& plan, void* out, const void* x, const void* w,
                           const void* evict, size_t evict_bytes, cudaStream_t stream);

    cublasLtHandle_t handle_;
    void* workspace_;
    size_t workspace_bytes_;
    int64_t l2_bytes_;  // the device's L2 size: tuning empties it before each timed run
    std::map<Key, std::unique_ptr<Plan>> plans_;
    // The tuned algorithm per tuning class (a Key whose T is tuning_rows(T)).
    std::map<Key, cublasLtMatmulAlgo_t> class_algos_;
    int64_t tuned_shapes_ = 0;
};

}  // namespace helexa::cuda
