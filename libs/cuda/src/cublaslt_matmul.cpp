#include "cublaslt_matmul.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "cuda_status.h"
#include "helexa/common/logging.h"
#include "helexa/kernels/l2_cache.h"

namespace helexa::cuda {

namespace {

// Runs of each candidate in its timed graph (time_candidates).
constexpr int kTuningRounds = 3;

}  // namespace

struct CublasLtMatmul::Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr;  // W seen as [K, N] column-major, transposed
    cublasLtMatrixLayout_t b = nullptr;  // X seen as [K, T] column-major
    cublasLtMatrixLayout_t d = nullptr;  // out seen as [N, T] column-major
    cublasLtMatmulAlgo_t algo{};
    bool has_bias = false;
    bool accumulate = false;  // beta = 1 into out
    // The fastest candidate's time for kTuningRounds runs (tune()); +inf until timed.
    float best_ms = std::numeric_limits<float>::infinity();
    // Heuristic candidates still to be timed on the first call (tune()); empty afterwards.
    std::vector<cublasLtMatmulHeuristicResult_t> candidates;

    ~Plan() {
        if (d) {
            cublasLtMatrixLayoutDestroy(d);
        }
        if (b) {
            cublasLtMatrixLayoutDestroy(b);
        }
        if (a) {
            cublasLtMatrixLayoutDestroy(a);
        }
        if (desc) {
            cublasLtMatmulDescDestroy(desc);
        }
    }
};

Result<std::unique_ptr<CublasLtMatmul>> CublasLtMatmul::create(void* workspace,
                                                               size_t workspace_bytes) {
    int device = 0;
    int l2_bytes = 0;
    HELEXA_TRY_STATUS(cuda_status(cudaGetDevice(&device), "cudaGetDevice"));
    HELEXA_TRY_STATUS(cuda_status(
        cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device), "L2 size"));
    cublasLtHandle_t handle = nullptr;
    HELEXA_TRY_STATUS(cublas_status(cublasLtCreate(&handle), "cublasLtCreate"));
    return std::unique_ptr<CublasLtMatmul>(
        new CublasLtMatmul(handle, workspace, workspace_bytes, l2_bytes));
}

CublasLtMatmul::CublasLtMatmul(cublasLtHandle_t handle, void* workspace, size_t workspace_bytes,
                               int64_t l2_bytes)
    : handle_(handle),
      workspace_(workspace),
      workspace_bytes_(workspace_bytes),
      l2_bytes_(l2_bytes) {}

CublasLtMatmul::~CublasLtMatmul() {
    plans_.clear();
    cublasLtDestroy(handle_);
}

// HELEXA_CUBLASLT_TUNE_MAX_ROWS=n (A/B): shapes of more rows keep the heuristic's first choice.
int64_t CublasLtMatmul::tune_max_rows() {
    static const int64_t rows = [] {
        const char* v = std::getenv("HELEXA_CUBLASLT_TUNE_MAX_ROWS");
        return v != nullptr && std::atoll(v) > 0 ? std::atoll(v) : INT64_MAX;
    }();
    return rows;
}

int64_t CublasLtMatmul::tuning_rows(int64_t T) {
    if (T <= 8) {
        return T;
    }
    if (T <= 64) {
        return (T + 7) / 8 * 8;
    }
    int64_t r = 64;
    while (r < T) {
        r *= 2;
    }
    return r;
}

bool CublasLtMatmul::algo_fits(const Plan& plan, const cublasLtMatmulAlgo_t& algo) const {
    cublasLtMatmulHeuristicResult_t check{};
    return cublasLtMatmulAlgoCheck(handle_, plan.desc, plan.a, plan.b, plan.d, plan.d, &algo,
                                   &check) == CUBLAS_STATUS_SUCCESS &&
           check.workspaceSize <= workspace_bytes_;
}

Result<CublasLtMatmul::Plan*> CublasLtMatmul::plan(const Key& key) {
    if (auto it = plans_.find(key); it != plans_.end()) {
        return it->second.get();
    }
    const auto [T, N, K, x_stride, out_stride, operand, out, has_bias, accumulate, splits] = key;
    auto p = std::make_unique<Plan>();
    p->has_bias = has_bias;
    p->accumulate = accumulate;
    const auto operand_type = static_cast<cudaDataType_t>(operand);
    const auto out_type = static_cast<cudaDataType_t>(out);
    HELEXA_TRY_STATUS(cublas_status(
        cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul desc"));
    const cublasOperation_t trans_a = CUBLAS_OP_T;
    const cublasOperation_t trans_b = CUBLAS_OP_N;
    HELEXA_TRY_STATUS(cublas_status(
        cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a,
                                       sizeof(trans_a)),
        "transa"));
    HELEXA_TRY_STATUS(cublas_status(
        cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b,
                                       sizeof(trans_b)),
        "transb"));
    if (has_bias) {
        const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
        HELEXA_TRY_STATUS(cublas_status(
            cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                           sizeof(epi)),
            "epilogue"));
        const cudaDataType_t bias_type = operand_type;
        HELEXA_TRY_STATUS(cublas_status(
            cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                                           &bias_type, sizeof(bias_type)),
            "bias type"));
    }
    // A K split is a strided batch: batch s reads the s-th slice of K columns of w and x (the
    // same leading dimensions, the pointers moved by s K/S elements) and writes its own [T, N]
    // slab of out.
    const int64_t k_rows = splits > 0 ? K / splits : K;
    HELEXA_TRY_STATUS(cublas_status(
        cublasLtMatrixLayoutCreate(&p->a, operand_type, static_cast<uint64_t>(k_rows),
                                   static_cast<uint64_t>(N), K),
        "layout w"));
    HELEXA_TRY_STATUS(cublas_status(
        cublasLtMatrixLayoutCreate(&p->b, operand_type, static_cast<uint64_t>(k_rows),
                                   static_cast<uint64_t>(T), x_stride),
        "layout x"));
    HELEXA_TRY_STATUS(cublas_status(
        cublasLtMatrixLayoutCreate(&p->d, out_type, static_cast<uint64_t>(N),
                                   static_cast<uint64_t>(T), out_stride),
        "layout out"));
    if (splits > 0) {
        const auto batch = static_cast<int32_t>(splits);
        const int64_t slice = k_rows;
        const int64_t slab = T * out_stride;
        for (auto [layout, offset] : {std::pair{p->a, slice}, std::pair{p->b, slice},
                                      std::pair{p->d, slab}}) {
            HELEXA_TRY_STATUS(cublas_status(
                cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                 &batch, sizeof(batch)),
                "batch count"));
            HELEXA_TRY_STATUS(cublas_status(
                cublasLtMatrixLayoutSetAttribute(layout,
                                                 CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                 &offset, sizeof(offset)),
                "batch offset"));
        }
    }
    cublasLtMatmulPreference_t pref = nullptr;
    HELEXA_TRY_STATUS(cublas_status(cublasLtMatmulPreferenceCreate(&pref), "preference"));
    const uint64_t ws = workspace_bytes_;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                         sizeof(ws));
    constexpr int kCandidates = 16;
    cublasLtMatmulHeuristicResult_t results[kCandidates] = {};
    int found = 0;
    const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(
        handle_, p->desc, p->a, p->b, p->d, p->d, pref, kCandidates, results, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    HELEXA_TRY_STATUS(cublas_status(st, "matmul heuristic"));
    if (found == 0) {
        return fail(ErrorCode::kInternal, "cuBLASLt has no algorithm for a " + std::to_string(T) +
                                              "x" + std::to_string(N) + "x" + std::to_string(K) +
                                              " matmul");
    }
    p->algo = results[0].algo;
    p->candidates.assign(results, results + found);
    Plan* raw = p.get();
    plans_.emplace(key, std::move(p));
    return raw;
}

// The heuristic's first choice is often not the fastest for the skinny, memory-bound shapes of
// batched decode: on the first real call of a shape, time every candidate on the real operands
// and keep the fastest. Each timed run starts with L2 emptied (a read of twice its size): in a
// real step the weights come from device memory, since the model is far larger than L2, and a
// matrix left in L2 by the previous run (a 32 MB projection fits) favours algorithms that are
// slow at streaming from memory. Costs a few milliseconds once per shape; never runs inside
// graph capture (a shape is always run eagerly first). An accumulating plan is timed into a
// temporary buffer (beta = 0): timing into out would add the product to it several times.
Status CublasLtMatmul::tune(Plan& plan, void* out, int64_t out_bytes, const void* x,
                            const void* w, cudaStream_t stream, bool time_single) {
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    HELEXA_TRY_STATUS(cuda_status(cudaStreamIsCapturing(stream, &capturing), "capture status"));
    if (plan.candidates.empty() || (plan.candidates.size() == 1 && !time_single) ||
        capturing != cudaStreamCaptureStatusNone) {
        // (Timing needs its own capture: a shape first met while a graph records keeps the
        // heuristic's first choice.)
        plan.candidates.clear();
        return ok();
    }
    void* target = out;
    if (plan.accumulate) {
        HELEXA_TRY_STATUS(cuda_status(cudaMalloc(&target, static_cast<size_t>(out_bytes)),
                                      "matmul tuning buffer"));
    }
    // The scratch is transient (twice L2: ~100 MB); where the KV pool has taken that much, the
    // candidates are timed without emptying L2 rather than not at all.
    void* evict = nullptr;
    size_t evict_bytes = static_cast<size_t>(2 * l2_bytes_);
    if (cudaMalloc(&evict, evict_bytes) != cudaSuccess) {
        (void)cudaGetLastError();
        evict = nullptr;
        evict_bytes = 0;
    }
    const Status timed = time_candidates(plan, target, x, w, evict, evict_bytes, stream);
    if (evict) {
        cudaFree(evict);
    }
    if (plan.accumulate) {
        cudaFree(target);
    }
    plan.candidates.clear();
    return timed;
}

namespace {

// The fastest of a few timed replays of `graph` on `stream`, after one untimed replay.
Status fastest_replay(cudaGraphExec_t graph, cudaStream_t stream, cudaEvent_t start,
                      cudaEvent_t stop, float& ms) {
    constexpr int kReplays = 3;
    ms = std::numeric_limits<float>::infinity();
    HELEXA_TRY_STATUS(cuda_status(cudaGraphLaunch(graph, stream), "tuning replay"));
    for (int r = 0; r < kReplays; ++r) {
        HELEXA_TRY_STATUS(cuda_status(cudaEventRecord(start, stream), "event"));
        HELEXA_TRY_STATUS(cuda_status(cudaGraphLaunch(graph, stream), "tuning replay"));
        HELEXA_TRY_STATUS(cuda_status(cudaEventRecord(stop, stream), "event"));
        HELEXA_TRY_STATUS(cuda_status(cudaEventSynchronize(stop), "tuning"));
        float t = 0;
        HELEXA_TRY_STATUS(cuda_status(cudaEventElapsedTime(&t, start, stop), "elapsed"));
        ms = std::min(ms, t);
    }
    return ok();
}

}  // namespace

// Each candidate is timed as a decode step runs it: inside a replayed CUDA graph, right after a
// kernel launched as ours are (the L2 evict: weights come from device memory), kRounds times,
// less the same graph without the matmuls. Timed alone from the stream, candidates ranked
// otherwise than in the model: on an H200 one gate_up candidate at 32 rows took 53.5 us alone
// against the winner's 52.5, and 57.4 against 54.1 in the graph (docs/perf/cuda-engine.md, run
// 22), and a process that kept it ran its steps 2.6% slower.
Status CublasLtMatmul::time_candidates(Plan& plan, void* out, const void* x, const void* w,
                                       const void* evict, size_t evict_bytes,
                                       cudaStream_t stream) {
    constexpr int kRounds = kTuningRounds;
    cudaEvent_t start = nullptr;
    cudaEvent_t stop = nullptr;
    HELEXA_TRY_STATUS(cuda_status(cudaEventCreate(&start), "event"));
    HELEXA_TRY_STATUS(cuda_status(cudaEventCreate(&stop), "event"));
    const float alpha = 1.0f;
    const float beta = 0.0f;
    auto matmul = [&](const cublasLtMatmulAlgo_t& algo) {
        return cublasLtMatmul(handle_, plan.desc, &alpha, w, plan.a, x, plan.b, &beta, out,
                              plan.d, out, plan.d, &algo, workspace_, workspace_bytes_,
                              stream) == CUBLAS_STATUS_SUCCESS;
    };
    // kRounds x (evict, then the candidate when given) as one graph, its fastest replay in ms;
    // +inf when cuBLASLt refused the candidate.
    auto time_rounds = [&](const cublasLtMatmulAlgo_t* algo, float& ms) -> Status {
        ms = std::numeric_limits<float>::infinity();
        HELEXA_TRY_STATUS(cuda_status(
            cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "tuning capture"));
        bool usable = true;
        cudaError_t launched = cudaSuccess;
        for (int r = 0; r < kRounds && usable && launched == cudaSuccess; ++r) {
            if (evict) {
                launched = kernels::launch_l2_evict(evict, evict_bytes, stream);
            }
            usable = algo == nullptr || launched != cudaSuccess || matmul(*algo);
        }
        cudaGraph_t graph = nullptr;
        const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
        if (launched != cudaSuccess || ended != cudaSuccess || !usable) {
            if (graph) {
                cudaGraphDestroy(graph);
            }
            (void)cudaGetLastError();  // a refused candidate may leave the capture's error
            HELEXA_TRY_STATUS(cuda_status(launched, "L2 evict"));
            return usable ? cuda_status(ended, "tuning capture") : ok();
        }
        cudaGraphExec_t exec = nullptr;
        const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
        cudaGraphDestroy(graph);
        HELEXA_TRY_STATUS(cuda_status(made, "tuning graph"));
        const Status timed = fastest_replay(exec, stream, start, stop, ms);
        cudaGraphExecDestroy(exec);
        return timed;
    };
    float base_ms = 0;
    Status st = evict ? time_rounds(nullptr, base_ms) : ok();
    float best_ms = std::numeric_limits<float>::infinity();
    for (const auto& c : plan.candidates) {
        if (!st) {
            break;
        }
        // Once outside the graph first: cuBLASLt refuses what it cannot run here, and the
        // kernel's first-use costs stay out of the capture.
        if (!matmul(c.algo)) {
            continue;
        }
        float ms = 0;
        st = time_rounds(&c.algo, ms);
        ms -= base_ms;  // kRounds runs of the candidate
        if (st && ms < best_ms) {
            best_ms = ms;
            plan.algo = c.algo;
        }
    }
    plan.best_ms = best_ms;
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return st;
}

// A plan's algorithm on its first call: the tuning class's winner where cuBLASLt takes it for
// this shape, else the plan's candidates timed (its winner then serves the class).
Status CublasLtMatmul::settle(Plan& plan, int64_t T, const Key& tuning_class, void* out,
                              int64_t out_bytes, const void* x, const void* w,
                              cudaStream_t stream) {
    if (!plan.candidates.empty() && T > tune_max_rows()) {
        plan.candidates.clear();  // the heuristic's first choice
    }
    if (plan.candidates.empty()) {
        return ok();
    }
    const auto known = class_algos_.find(tuning_class);
    if (known != class_algos_.end() && algo_fits(plan, known->second)) {
        plan.algo = known->second;
        plan.candidates.clear();
        return ok();
    }
    HELEXA_TRY_STATUS(tune(plan, out, out_bytes, x, w, stream));
    ++tuned_shapes_;
    class_algos_.emplace(tuning_class, plan.algo);
    static const auto kLog = log::get("neuron::cuda::matmul");
    int tile = 0;
    int stages = 0;
    size_t written = 0;
    cublasLtMatmulAlgoConfigGetAttribute(&plan.algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile,
                                         sizeof(tile), &written);
    cublasLtMatmulAlgoConfigGetAttribute(&plan.algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages,
                                         sizeof(stages), &written);
    kLog->debug("tuned {}x{}x{}{} (class of {} rows): {:.1f}us, tile {} stages {}", T,
                std::get<1>(tuning_class), std::get<2>(tuning_class),
                std::get<9>(tuning_class) > 0
                    ? fmt::format(" in {} parts", std::get<9>(tuning_class))
                    : std::string(),
                std::get<0>(tuning_class), plan.best_ms / kTuningRounds * 1000, tile, stages);
    return ok();
}

Status CublasLtMatmul::run(void* out, int64_t out_stride, cudaDataType_t out_type, const void* x,
                           int64_t x_stride, const void* w, const void* bias, int64_t T,
                           int64_t N, int64_t K, cudaDataType_t operand_type, bool accumulate,
                           cudaStream_t stream) {
    auto p = plan(Key{T, N, K, x_stride, out_stride, static_cast<int>(operand_type),
                      static_cast<int>(out_type), bias != nullptr, accumulate, 0});
    if (!p) {
        return tl::unexpected(std::move(p).error());
    }
    Plan& plan = **p;
    if (plan.has_bias) {
        HELEXA_TRY_STATUS(cublas_status(
            cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                           sizeof(bias)),
            "bias pointer"));
    }
    const Key tuning_class{tuning_rows(T), N, K, x_stride, out_stride,
                           static_cast<int>(operand_type), static_cast<int>(out_type),
                           bias != nullptr, accumulate, 0};
    const int64_t out_bytes = ((T - 1) * out_stride + N) * (out_type == CUDA_R_32F ? 4 : 2);
    HELEXA_TRY_STATUS(settle(plan, T, tuning_class, out, out_bytes, x, w, stream));
    const float alpha = 1.0f;
    const float beta = plan.accumulate ? 1.0f : 0.0f;
    return cublas_status(cublasLtMatmul(handle_, plan.desc, &alpha, w, plan.a, x, plan.b, &beta,
                                        out, plan.d, out, plan.d, &plan.algo, workspace_,
                                        workspace_bytes_, stream),
                         "cublasLtMatmul");
}

std::vector<int64_t> CublasLtMatmul::k_split_counts(int64_t K, int64_t max_splits) {
    std::vector<int64_t> counts{1};
    for (int64_t s = 2; s <= max_splits; ++s) {
        if (K % (s * 64) == 0) {
            counts.push_back(s);
        }
    }
    return counts;
}

int64_t CublasLtMatmul::choose_k_split(std::span<const std::pair<int64_t, float>> timed) {
    float best = std::numeric_limits<float>::infinity();
    for (const auto& [count, ms] : timed) {
        best = std::min(best, ms);
    }
    for (const auto& [count, ms] : timed) {
        if (ms <= best * (1.0F + kKSplitTimeMargin)) {
            return count;
        }
    }
    return 0;
}

Result<int64_t> CublasLtMatmul::run_k_split(float* partials, int64_t max_splits, const void* x,
                                            int64_t x_stride, const void* w, int64_t T,
                                            int64_t N, int64_t K, cudaDataType_t operand_type,
                                            cudaStream_t stream) {
    if (max_splits < 1 || T < 1) {
        return fail(ErrorCode::kInternal, "run_k_split: no room for a partial");
    }
    auto key = [&](int64_t rows, int64_t splits) {
        return Key{rows, N, K, x_stride, N, static_cast<int>(operand_type),
                   static_cast<int>(CUDA_R_32F), false, false, splits};
    };
    const int64_t class_rows = tuning_rows(T);
    const Key split_class = key(class_rows, 0);
    int64_t splits = 1;
    if (const auto known = class_splits_.find(split_class);
        known != class_splits_.end() && known->second <= max_splits) {
        splits = known->second;
    } else if (T <= tune_max_rows()) {
        // The first shape of its class: every count's plan tuned on this shape, the fastest
        // count kept (each count's winner also serves the class's later shapes).
        std::vector<std::pair<int64_t, float>> timed;
        std::string timings;  // for the debug log: each count's best time
        for (const int64_t s : k_split_counts(K, max_splits)) {
            auto p = plan(key(T, s));
            if (!p) {
                continue;  // no algorithm for this count's batch: the others may have one
            }
            Plan& candidate = **p;
            HELEXA_TRY_STATUS(tune(candidate, partials, 0, x, w, stream, /*time_single=*/true));
            class_algos_.emplace(key(class_rows, s), candidate.algo);
            timings += fmt::format(" {}:{:.1f}us", s, candidate.best_ms / kTuningRounds * 1000);
            timed.emplace_back(s, candidate.best_ms);
        }
        splits = std::max<int64_t>(choose_k_split(timed), 1);
        ++tuned_shapes_;
        class_splits_.insert_or_assign(split_class, splits);
        static const auto kLog = log::get("neuron::cuda::matmul");
        kLog->debug("K split of {}x{}x{} (class of {} rows): {} parts; parts:time{}", T, N, K,
                    class_rows, splits, timings);
    }
    auto p = plan(key(T, splits));
    if (!p) {
        return tl::unexpected(std::move(p).error());
    }
    Plan& plan = **p;
    HELEXA_TRY_STATUS(settle(plan, T, key(class_rows, splits), partials, 0, x, w, stream));
    const float alpha = 1.0f;
    const float beta = 0.0f;
    HELEXA_TRY_STATUS(cublas_status(
        cublasLtMatmul(handle_, plan.desc, &alpha, w, plan.a, x, plan.b, &beta, partials, plan.d,
                       partials, plan.d, &plan.algo, workspace_, workspace_bytes_, stream),
        "cublasLtMatmul (K split)"));
    return splits;
}

}  // namespace helexa::cuda
