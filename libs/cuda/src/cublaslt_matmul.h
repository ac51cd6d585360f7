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
// Captured into a CUDA graph, the matmul's first kernel starts under the tail of the kernel
// before it (a programmatic edge, programmatic_edges.h) when its algorithm was found to wait for
// that kernel: each (tuning class, algorithm) is probed once, at the plan's first eager run.
// Thread-safety: owned and driven by the device's worker thread.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

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
    // Whether graphs get programmatic edges into the algorithms that wait for them (devices of
    // compute capability 9.0 and later; HELEXA_CUBLASLT_PDL=0 turns it off, for A/B runs).
    bool programmatic_edges() const { return programmatic_edges_; }
    // What the probes found, one entry per probed (tuning class, algorithm), in probe order
    // (programmatic_edges.h's GridWaitProbe, as an int).
    const std::vector<int>& grid_wait_probes() const { return probe_log_; }

private:
    struct Plan;
    using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int, int, bool, bool>;
    using AlgoBytes = std::array<uint64_t, 8>;
    CublasLtMatmul(cublasLtHandle_t handle, void* workspace, size_t workspace_bytes,
                   int64_t l2_bytes, bool programmatic_edges);
    Result<Plan*> plan(const Key& key);
    Status tune(Plan& plan, void* out, int64_t out_bytes, const void* x, const void* w,
                cudaStream_t stream);
    // Whether cuBLASLt runs `algo` for this plan's shape within our workspace.
    bool algo_fits(const Plan& plan, const cublasLtMatmulAlgo_t& algo) const;
    // Sets plan.programmatic: whether its algorithm's first kernel waits for its grid dependency
    // (probed once per tuning class and algorithm).
    Status probe_grid_wait(Plan& plan, const Key& tuning_class, int64_t T, int64_t N, int64_t K,
                           int64_t x_stride, int64_t out_stride, cudaDataType_t operand_type,
                           cudaDataType_t out_type, const void* w, cudaStream_t stream);
    // The plan's matmul with its chosen algorithm (beta = 1 when it accumulates).
    Status launch(const Plan& plan, void* out, const void* x, const void* w,
                  cudaStream_t stream);
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
    bool programmatic_edges_;
    // Whether each probed (tuning class, algorithm) waits for its grid dependency.
    std::map<std::pair<Key, AlgoBytes>, bool> grid_waits_;
    std::vector<int> probe_log_;
};

}  // namespace helexa::cuda
