// The prefill-sized linear through cuBLASLt: out[T, N] = x[T, K] * w[N, K]^T (+ bias[N]) with
// bf16/f16 operands, f32 accumulation and an out of the operand type or f32.
// Row-major out/x/w are seen column-major as D[N, T] = op_T(W[K, N]) * X[K, T], so no transpose
// is ever materialised. Plans (descriptors, layouts and the heuristic's algorithm) are cached
// per shape: the heuristic query costs tens of microseconds, a cached plan nothing. The
// heuristic's candidates are timed as a decode step runs them (inside a replayed graph, right
// after a kernel launched as ours are, from a cold L2: time_candidates), once per tuning class:
// the shape with its row count rounded up to tuning_rows(T). A later shape of the class reuses
// the winner (when cuBLASLt accepts that algorithm for it), so a serving process tunes a bounded
// number of times instead of stalling every step whose token count is new (chunked prefill
// mixes any number of prompt tokens with the decode rows).
// Thread-safety: owned and driven by the device's worker thread.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <tuple>
#include <utility>
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

    // The product split over K into f32 partials, for a consumer that sums them itself (the
    // residual add + RMSNorm after o_proj and down at decode sizes: kernels::
    // launch_add_partials_rms_norm, where cuBLASLt would otherwise split K inside and add the
    // parts in a reduce kernel of its own):
    //   partials + s * T * N = x[:, s K/S, (s + 1) K/S) * w[:, same)^T, f32 [T, N] (row stride
    //   N), s < S.
    // S is chosen once per tuning class: among the counts up to max_splits that cut K into
    // slices of whole 64-column groups (1 included: cuBLASLt's own split inside one GEMM), the
    // fewest whose batched GEMM runs within a margin of the fastest from a cold L2
    // (choose_k_split). Returns S; partials must hold max_splits * T * N floats.
    Result<int64_t> run_k_split(float* partials, int64_t max_splits, const void* x,
                                int64_t x_stride, const void* w, int64_t T, int64_t N, int64_t K,
                                cudaDataType_t operand_type, cudaStream_t stream);
    // The split counts run_k_split may choose for K (ascending, 1 first).
    static std::vector<int64_t> k_split_counts(int64_t K, int64_t max_splits);
    // The count run_k_split keeps of (count, best time) pairs in ascending count order: the
    // fewest parts within kKSplitTimeMargin of the fastest. The counts' single-call times from
    // a cold L2 sit within noise of each other (28.2-30.5 us at 32 x 4096 x 12288 on an H200),
    // while in the model more parts cost the norm kernel their reads and ran slower: 8 parts,
    // chosen by 0.2 us, took 35.6 us a layer against 27.7 for 2 (run 21). 0 when empty.
    static int64_t choose_k_split(std::span<const std::pair<int64_t, float>> timed);
    static constexpr float kKSplitTimeMargin = 0.03F;

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
    // (T, N, K, x_stride, out_stride, operand type, out type, bias, accumulate, K splits: 0 for
    // one GEMM, S for run_k_split's batched one).
    using Key =
        std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int, int, bool, bool, int64_t>;
    CublasLtMatmul(cublasLtHandle_t handle, void* workspace, size_t workspace_bytes,
                   int64_t l2_bytes);
    Result<Plan*> plan(const Key& key);
    // Times the plan's candidates (keeping the fastest in plan.algo, its time in plan.best_ms);
    // with one candidate only when `time_single` (run_k_split compares plans by their times).
    Status tune(Plan& plan, void* out, int64_t out_bytes, const void* x, const void* w,
                cudaStream_t stream, bool time_single = false);
    // A plan's algorithm on its first call at T rows: its tuning class's winner where cuBLASLt
    // takes it for this shape, else its candidates timed.
    Status settle(Plan& plan, int64_t T, const Key& tuning_class, void* out, int64_t out_bytes,
                  const void* x, const void* w, cudaStream_t stream);
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
    // run_k_split's chosen split count per tuning class (a Key with splits 0).
    std::map<Key, int64_t> class_splits_;
    int64_t tuned_shapes_ = 0;
};

}  // namespace helexa::cuda
