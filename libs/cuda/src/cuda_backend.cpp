// CudaBackend: the engine's Backend operations on one CUDA device (see cuda_backend.h).
// Every method runs on the device's worker thread. Kernels are enqueued on one stream; the only
// synchronisation point of a step is copy_to_host (the logits), where asynchronous kernel faults
// surface and, if sticky, poison the backend.

#include "helexa/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cuda_backend_impl.h"
#include "helexa/kernels/l2_cache.h"
#include "helexa/kernels/norm.h"
#include "helexa/kernels/pointwise.h"
#include "helexa/kernels/sampling.h"
#include "helexa/kernels/skinny_mma_matmul.h"

namespace helexa::cuda::backend_impl {

Result<std::unique_ptr<CudaBackend>> CudaBackend::create(const engine::BackendOptions& options,
                                                         std::shared_ptr<DeviceWorker> worker) {
    if (options.activation_dtype != DType::kBF16 && options.activation_dtype != DType::kF16) {
        return fail(ErrorCode::kInvalidRequest,
                    "cuda backend: activation dtype must be BF16 or F16, not " +
                        std::string(engine::dtype_name(options.activation_dtype)));
    }
    auto b = std::unique_ptr<CudaBackend>(new CudaBackend(options, std::move(worker)));
    HELEXA_TRY_STATUS(cuda_status(cudaSetDevice(options.device),
                                  "cudaSetDevice(" + std::to_string(options.device) + ")"));
    HELEXA_TRY_STATUS(cuda_status(cudaStreamCreateWithFlags(&b->stream_, cudaStreamNonBlocking),
                                  "cudaStreamCreate"));
    HELEXA_TRY_STATUS(
        cuda_status(cudaMalloc(&b->cublas_workspace_, kCublasWorkspaceBytes), "cudaMalloc"));
    auto mm = CublasLtMatmul::create(b->cublas_workspace_, kCublasWorkspaceBytes);
    if (!mm) {
        return tl::unexpected(std::move(mm).error());
    }
    b->matmul_ = std::move(*mm);
    b->uploads_ = std::make_unique<UploadRing>();
    // The tensor-core small-batch matmul's split-tile counters start (and stay) zero.
    const size_t mma_bytes = kernels::skinny_mma_workspace_bytes();
    HELEXA_TRY_STATUS(
        cuda_status(cudaMalloc(&b->mma_workspace_, mma_bytes), "cudaMalloc"));
    HELEXA_TRY_STATUS(cuda_status(cudaMemset(b->mma_workspace_, 0, mma_bytes), "cudaMemset"));
    // So do the decode chain's grid-barrier and work counters.
    const size_t chain_bytes = kernels::decode_chain_workspace_bytes();
    HELEXA_TRY_STATUS(cuda_status(cudaMalloc(&b->decode_chain_workspace_.device, chain_bytes),
                                  "cudaMalloc"));
    HELEXA_TRY_STATUS(cuda_status(
        cudaMemset(b->decode_chain_workspace_.device, 0, chain_bytes), "cudaMemset"));
    return b;
}

CudaBackend::~CudaBackend() {
    worker_->detach();
    if (stale()) {
        // The device was reset since: everything here is gone, and a stale pointer or handle
        // may name the new generation's objects. (After a fault but before the reset the
        // teardown below runs: its calls fail, but they drop this backend's references to
        // the context, which the reset needs.)
        (void)matmul_.release();
        (void)uploads_.release();
        return;
    }
    if (stream_) {
        cudaStreamSynchronize(stream_);
    }
    drop_graphs();
    matmul_.reset();
    uploads_.reset();
    for (const auto& [ptr, bytes] : allocations_) {
        cudaFree(ptr);
    }
    attention_workspace_.release();
    k_split_partials_.release();
    if (cublas_workspace_) {
        cudaFree(cublas_workspace_);
    }
    if (mma_workspace_) {
        cudaFree(mma_workspace_);
    }
    if (decode_chain_workspace_.device) {
        cudaFree(decode_chain_workspace_.device);
    }
    if (page_locked_) {
        cudaFreeHost(page_locked_);
    }
    for (IdsRead& r : ids_reads_) {
        if (r.host != nullptr) {
            cudaFreeHost(r.host);
        }
        if (r.done != nullptr) {
            cudaEventDestroy(r.done);
        }
    }
    if (stream_) {
        cudaStreamDestroy(stream_);
    }
}

std::optional<engine::Backend::MemoryInfo> CudaBackend::device_memory() const {
    size_t free_b = 0;
    size_t total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
        return std::nullopt;
    }
    return MemoryInfo{static_cast<int64_t>(free_b), static_cast<int64_t>(total_b)};
}

Result<Tensor> CudaBackend::alloc(DType dtype, int64_t rows, int64_t cols) {
    HELEXA_TRY_STATUS(healthy());
    const int64_t bytes = std::max<int64_t>(1, rows * cols) * engine::dtype_size(dtype);
    void* ptr = nullptr;
    HELEXA_TRY_STATUS(check(cudaMalloc(&ptr, static_cast<size_t>(bytes)),
                            "cudaMalloc(" + std::to_string(bytes) + " bytes)"));
    allocations_[ptr] = bytes;
    allocated_bytes_ += bytes;
    return Tensor{ptr, dtype, rows, cols, cols};
}

void CudaBackend::free(const Tensor& tensor) {
    auto it = allocations_.find(tensor.data);
    if (it == allocations_.end()) {
        return;
    }
    allocated_bytes_ -= it->second;
    if (!stale()) {
        cudaFree(it->first);
    }
    allocations_.erase(it);
}

Result<Tensor> CudaBackend::upload_weight(std::span<const std::byte> bytes, DType src_dtype,
                                          int64_t rows, int64_t cols) {
    HELEXA_CUDA_REQUIRE(static_cast<int64_t>(bytes.size()) ==
                            rows * cols * engine::dtype_size(src_dtype),
                        "upload_weight", "byte count does not match the shape");
    // Float weights are kept in the activation dtype (one GEMM operand type); the rest as is.
    const DType dst_dtype = is_float(src_dtype) ? act_ : src_dtype;
    auto dst = alloc(dst_dtype, rows, cols);
    if (!dst) {
        return dst;
    }
    if (dst_dtype == src_dtype) {
        HELEXA_TRY_STATUS(check(cudaMemcpyAsync(dst->data, bytes.data(), bytes.size(),
                                                cudaMemcpyHostToDevice, stream_),
                                "upload"));
    } else {
        auto staging = alloc(src_dtype, rows, cols);
        if (!staging) {
            free(*dst);
            return staging;
        }
        Status st = check(cudaMemcpyAsync(staging->data, bytes.data(), bytes.size(),
                                          cudaMemcpyHostToDevice, stream_),
                          "upload");
        if (st) {
            st = check(kernels::launch_convert(dst->data, elem(dst_dtype), staging->data,
                                               elem(src_dtype), rows * cols, stream_),
                       "convert");
        }
        if (st) {
            st = check(cudaStreamSynchronize(stream_), "upload sync");
        }
        free(*staging);
        if (!st) {
            free(*dst);
            return tl::unexpected(std::move(st).error());
        }
    }
    return dst;
}

Status CudaBackend::copy_from_host(const Tensor& dst, const void* host) {
    HELEXA_TRY_STATUS(healthy());
    HELEXA_CUDA_REQUIRE(dst.contiguous(), "copy_from_host", "strided destination");
    // The caller may reuse `host` on return: small copies are staged in the upload ring's
    // page-locked memory (so enqueueing never waits for the device), large ones by the runtime.
    const auto bytes = static_cast<size_t>(dst.numel() * engine::dtype_size(dst.dtype));
    return check(uploads_->copy(dst.data, host, bytes, stream_), "copy_from_host");
}

// One page-locked buffer, grown (never shrunk) to the largest request: a step's logits rows.
Result<float*> CudaBackend::page_locked_floats(int64_t n) {
    HELEXA_TRY_STATUS(healthy());
    const auto bytes = static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(float);
    if (bytes > page_locked_bytes_) {
        if (page_locked_) {
            HELEXA_TRY_STATUS(check(cudaFreeHost(page_locked_), "page-locked host buffer"));
            page_locked_ = nullptr;
            page_locked_bytes_ = 0;
        }
        HELEXA_TRY_STATUS(
            check(cudaMallocHost(&page_locked_, bytes),
                  "page-locked host buffer of " + std::to_string(bytes >> 20) + " MiB"));
        page_locked_bytes_ = bytes;
    }
    return static_cast<float*>(page_locked_);
}

Status CudaBackend::start_read_ids(int slot, const Tensor& src) {
    HELEXA_TRY_STATUS(healthy());
    HELEXA_CUDA_REQUIRE(slot >= 0 && slot < 2 && src.dtype == DType::kI32 && src.rows == 1,
                        "start_read_ids", "bad slot or tensor");
    IdsRead& r = ids_reads_[slot];
    if (src.cols > r.capacity) {
        if (r.host != nullptr) {
            // (The slot's last copy has been read: launch_argmax finishes a step before it
            // reuses its slot; the wait only makes that certain.)
            HELEXA_TRY_STATUS(check(cudaEventSynchronize(r.done), "step"));
            HELEXA_TRY_STATUS(check(cudaFreeHost(r.host), "page-locked ids"));
            r.host = nullptr;
            r.capacity = 0;
        }
        void* p = nullptr;
        HELEXA_TRY_STATUS(check(cudaMallocHost(&p, static_cast<size_t>(src.cols) * 4),
                                "page-locked ids"));
        r.host = static_cast<int32_t*>(p);
        r.capacity = src.cols;
    }
    if (r.done == nullptr) {
        HELEXA_TRY_STATUS(
            check(cudaEventCreateWithFlags(&r.done, cudaEventDisableTiming), "ids event"));
    }
    r.count = src.cols;
    if (src.cols > 0) {
        HELEXA_TRY_STATUS(check(cudaMemcpyAsync(r.host, src.data, static_cast<size_t>(src.cols) * 4,
                                                cudaMemcpyDeviceToHost, stream_),
                                "start_read_ids"));
    }
    return check(cudaEventRecord(r.done, stream_), "start_read_ids");
}

Result<std::span<const int32_t>> CudaBackend::finish_read_ids(int slot) {
    HELEXA_TRY_STATUS(healthy());
    HELEXA_CUDA_REQUIRE(slot >= 0 && slot < 2 && ids_reads_[slot].done != nullptr,
                        "finish_read_ids", "no read started in this slot");
    IdsRead& r = ids_reads_[slot];
    HELEXA_TRY_STATUS(check(cudaEventSynchronize(r.done), "step"));
    return std::span<const int32_t>(r.host, static_cast<size_t>(r.count));
}

Status CudaBackend::copy_to_host(void* host, const Tensor& src) {
    HELEXA_TRY_STATUS(healthy());
    const auto es = static_cast<size_t>(engine::dtype_size(src.dtype));
    HELEXA_TRY_STATUS(check(cudaMemcpy2DAsync(host, static_cast<size_t>(src.cols) * es, src.data,
                                              static_cast<size_t>(src.row_stride) * es,
                                              static_cast<size_t>(src.cols) * es,
                                              static_cast<size_t>(src.rows),
                                              cudaMemcpyDeviceToHost, stream_),
                            "copy_to_host"));
    return check(cudaStreamSynchronize(stream_), "step");
}

Result<std::unique_ptr<KvCache>> CudaBackend::alloc_kv_cache(const KvCacheShape& shape) {
    HELEXA_TRY_STATUS(healthy());
    if (shape.n_layers <= 0 || shape.n_kv_heads <= 0 || shape.head_dim <= 0 ||
        shape.block_size <= 0 || shape.n_blocks <= 0 || shape.dtype != act_) {
        return fail(ErrorCode::kInvalidRequest, "cuda backend: invalid KV cache shape");
    }
    const int64_t bytes = 2 * shape.n_layers * shape.n_blocks * shape.block_size *
                          shape.n_kv_heads * shape.head_dim * engine::dtype_size(shape.dtype);
    void* base = nullptr;
    HELEXA_TRY_STATUS(check(cudaMalloc(&base, static_cast<size_t>(bytes)),
                            "KV pool of " + std::to_string(bytes >> 20) + " MiB"));
    return std::unique_ptr<KvCache>(std::make_unique<CudaKvCache>(shape, base, bytes, worker_));
}

Status CudaBackend::embedding(const Tensor& out, const Tensor& table, const Tensor& ids) {
    HELEXA_CUDA_REQUIRE(out.dtype == act_ && table.dtype == act_ && ids.dtype == DType::kI32 &&
                            out.rows == ids.numel() && out.cols == table.cols,
                        "embedding", "shape mismatch");
    return check(kernels::launch_embedding(out.data, out.row_stride, table.data,
                                           table.row_stride, static_cast<const int32_t*>(ids.data),
                                           out.rows, table.rows, out.cols, nullptr, elem(act_),
                                           stream_),
                 "embedding");
}

Status CudaBackend::rms_norm(const Tensor& out, const Tensor& x, const Tensor& weight, float eps) {
    HELEXA_CUDA_REQUIRE(same_act(out, x, weight) && x.cols == weight.cols &&
                            out.cols == x.cols && out.rows == x.rows,
                        "rms_norm", "shape mismatch");
    return check(kernels::launch_rms_norm(out.data, out.row_stride, x.data, x.row_stride,
                                          weight.data, x.rows, x.cols, eps, elem(act_), stream_),
                 "rms_norm");
}

Status CudaBackend::add_rms_norm(const Tensor& out, const Tensor& residual, const Tensor& x,
                                 const Tensor& weight, float eps) {
    HELEXA_CUDA_REQUIRE(same_act(out, residual, x) && weight.dtype == act_ &&
                            x.cols == weight.cols && residual.cols == x.cols &&
                            out.cols == x.cols && residual.rows == x.rows &&
                            out.rows == x.rows,
                        "add_rms_norm", "shape mismatch");
    return check(kernels::launch_add_rms_norm(out.data, out.row_stride, residual.data,
                                              residual.row_stride, x.data, x.row_stride,
                                              weight.data, x.rows, x.cols, eps, elem(act_),
                                              stream_),
                 "add_rms_norm");
}

Status CudaBackend::add(const Tensor& out, const Tensor& x, const Tensor& y) {
    HELEXA_CUDA_REQUIRE(same_act(out, x, y) && x.rows == y.rows && x.cols == y.cols &&
                            out.rows == x.rows && out.cols == x.cols,
                        "add", "shape mismatch");
    return check(kernels::launch_add(out.data, out.row_stride, x.data, x.row_stride, y.data,
                                     y.row_stride, x.rows, x.cols, elem(act_), stream_),
                 "add");
}

Status CudaBackend::rms_norm_heads(const Tensor& x, int64_t n_heads, const Tensor& weight,
                                   float eps) {
    HELEXA_CUDA_REQUIRE(x.dtype == act_ && weight.dtype == act_ &&
                            x.cols == n_heads * weight.cols,
                        "rms_norm_heads", "shape mismatch");
    return check(kernels::launch_rms_norm_heads(x.data, x.row_stride, weight.data, x.rows,
                                                n_heads, weight.cols, eps, elem(act_), stream_),
                 "rms_norm_heads");
}

Status CudaBackend::rope(const Tensor& x, int64_t n_heads, int64_t head_dim,
                         const Tensor& positions, const RopeTable& table) {
    HELEXA_CUDA_REQUIRE(x.dtype == act_ && x.cols == n_heads * head_dim &&
                            positions.numel() == x.rows && table.rotary_dim <= head_dim &&
                            table.rotary_dim % 2 == 0 &&
                            table.inv_freq.dtype == DType::kF32 &&
                            table.inv_freq.numel() == table.rotary_dim / 2,
                        "rope", "shape mismatch");
    return check(kernels::launch_rope(x.data, x.row_stride,
                                      static_cast<const int32_t*>(positions.data),
                                      static_cast<const float*>(table.inv_freq.data), x.rows,
                                      n_heads, head_dim, table.rotary_dim,
                                      table.attention_scaling, elem(act_), stream_),
                 "rope");
}

Status CudaBackend::silu_mul(const Tensor& out, const Tensor& gate_up) {
    HELEXA_CUDA_REQUIRE(out.dtype == act_ && gate_up.dtype == act_ &&
                            gate_up.cols == 2 * out.cols && gate_up.rows == out.rows,
                        "silu_mul", "shape mismatch");
    return check(kernels::launch_silu_mul(out.data, out.row_stride, gate_up.data,
                                          gate_up.row_stride, out.rows, out.cols, elem(act_),
                                          stream_),
                 "silu_mul");
}

Status CudaBackend::gather_rows(const Tensor& out, const Tensor& x, const Tensor& rows) {
    HELEXA_CUDA_REQUIRE(out.rows == rows.numel() && out.cols == x.cols &&
                            out.dtype == x.dtype && is_float(x.dtype),
                        "gather_rows", "shape mismatch");
    return check(kernels::launch_gather_rows(out.data, out.row_stride, x.data, x.row_stride,
                                             static_cast<const int32_t*>(rows.data), out.rows,
                                             x.cols, elem(x.dtype), stream_),
                 "gather_rows");
}

Status CudaBackend::feed_ids(const Tensor& ids, const Tensor& prev, const Tensor& map) {
    HELEXA_CUDA_REQUIRE(ids.dtype == DType::kI32 && prev.dtype == DType::kI32 &&
                            map.dtype == DType::kI32 && ids.rows == 1 && prev.rows == 1 &&
                            map.rows == 1 && map.cols == ids.cols,
                        "feed_ids", "shape mismatch");
    return check(kernels::launch_feed_ids(static_cast<int32_t*>(ids.data),
                                          static_cast<const int32_t*>(prev.data),
                                          static_cast<const int32_t*>(map.data), ids.cols,
                                          stream_),
                 "feed_ids");
}

Status CudaBackend::feed_draws(const Tensor& draws, int64_t n_rows, const Tensor& prev,
                               const Tensor& map) {
    HELEXA_CUDA_REQUIRE(draws.dtype == DType::kI32 && prev.dtype == DType::kI32 &&
                            map.dtype == DType::kI32 && draws.rows == 1 && prev.rows == 1 &&
                            map.rows == 1 && map.cols == n_rows &&
                            draws.cols >= n_rows * static_cast<int64_t>(sizeof(draw::RowDraw) / 4),
                        "feed_draws", "shape mismatch");
    return check(kernels::launch_feed_draws(draws.data, n_rows,
                                            static_cast<const int32_t*>(prev.data),
                                            static_cast<const int32_t*>(map.data), stream_),
                 "feed_draws");
}

Status CudaBackend::argmax_rows(const Tensor& out, const Tensor& logits) {
    HELEXA_CUDA_REQUIRE(out.dtype == DType::kI32 && logits.dtype == DType::kF32 &&
                            logits.contiguous() && out.numel() == logits.rows,
                        "argmax_rows", "shape mismatch");
    return check(kernels::launch_argmax_rows(static_cast<const float*>(logits.data),
                                             logits.rows, logits.cols,
                                             static_cast<int32_t*>(out.data), stream_),
                 "argmax_rows");
}

Status CudaBackend::draw_rows(const Tensor& out, const Tensor& logits, const Tensor& draws) {
    HELEXA_CUDA_REQUIRE(out.dtype == DType::kI32 && logits.dtype == DType::kF32 &&
                            draws.dtype == DType::kI32 && logits.contiguous() &&
                            out.numel() == logits.rows &&
                            draws.numel() * 4 >=
                                logits.rows * static_cast<int64_t>(sizeof(draw::RowDraw)),
                        "draw_rows", "shape mismatch");
    return check(kernels::launch_draw_rows(static_cast<float*>(logits.data), logits.rows,
                                           logits.cols, draws.data,
                                           static_cast<int32_t*>(out.data),
                                           kernels::draw_rows_cluster(logits.rows), stream_),
                 "draw_rows");
}

Result<int64_t> CudaBackend::capture_graph(const std::function<Status()>& fn) {
    HELEXA_TRY_STATUS(healthy());
    HELEXA_TRY_STATUS(check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal),
                            "begin graph capture"));
    Status recorded = fn();
    cudaGraph_t graph = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(stream_, &graph);
    if (!recorded) {
        if (graph) {
            cudaGraphDestroy(graph);
        }
        (void)cudaGetLastError();
        return tl::unexpected(std::move(recorded).error());
    }
    HELEXA_TRY_STATUS(check(ended, "end graph capture"));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    HELEXA_TRY_STATUS(check(inst, "instantiate graph"));
    graphs_.push_back(exec);
    return static_cast<int64_t>(graphs_.size() - 1);
}

Status CudaBackend::replay_graph(int64_t id) {
    HELEXA_TRY_STATUS(healthy());
    HELEXA_CUDA_REQUIRE(id >= 0 && id < static_cast<int64_t>(graphs_.size()) &&
                            graphs_[static_cast<size_t>(id)] != nullptr,
                        "replay_graph", "unknown graph");
    return check(cudaGraphLaunch(graphs_[static_cast<size_t>(id)], stream_), "graph launch");
}

void CudaBackend::drop_graphs() {
    for (auto g : graphs_) {
        if (g && !stale()) {
            cudaGraphExecDestroy(g);
        }
    }
    graphs_.clear();
}

CudaBackend::CudaBackend(const engine::BackendOptions& options,
                         std::shared_ptr<DeviceWorker> worker)
    : act_(options.activation_dtype),
      worker_(std::move(worker)),
      generation_(worker_->generation()) {
    worker_->attach();
    // HELEXA_CUDA_SKINNY_MAX_ROWS=0 sends every linear past the CUDA-core skinny matmul
    // (with HELEXA_CUDA_MMA_MAX_ROWS=0 too: to cuBLASLt, what the linear benchmark compares
    // against); values above kSkinnyMaxRows are clamped.
    // NOTE: measured on an H200 (docs/perf/cuda-engine.md): the skinny matmul matches or
    // beats cuBLASLt at 1-2 rows and falls behind from 4, so 2 is the default.
    if (const char* v = std::getenv("HELEXA_CUDA_SKINNY_MAX_ROWS"); v != nullptr) {
        skinny_max_rows_ = std::clamp<int64_t>(std::atoll(v), 0, kernels::kSkinnyMaxRows);
    }
    // HELEXA_CUDA_MMA_MAX_ROWS=N sends up to N rows above the skinny path to the tensor-core
    // skinny matmul instead of cuBLASLt (clamped to kSkinnyMmaMaxRows). Off by default:
    // measured (docs/perf/cuda-engine.md, run 14, wgmma consumer) it trails cuBLASLt by 1-6
    // us a projection at 8-64 rows (a fixed ramp and tail per launch); Qwen3-8B at 8 / 32
    // / 64 streams 0.66 / 0.65 / 0.62 of the step ceiling with it against 0.72 / 0.73 /
    // 0.72 without (H200).
    if (const char* v = std::getenv("HELEXA_CUDA_MMA_MAX_ROWS"); v != nullptr) {
        mma_max_rows_ = std::clamp<int64_t>(std::atoll(v), 0, kernels::kSkinnyMmaMaxRows);
    }
    // HELEXA_CUDA_MMA_SWIGLU_MAX_ROWS=N: up to N rows the SwiGLU projection (gate_up) alone
    // takes the tensor-core kernel, SwiGLU fused (no SwiGLU kernel, and down starts under its
    // tail through PDL), while the residual adds keep the K split. Default kMmaSwiGluMaxRows.
    // NOTE: measured on H200s (docs/perf/cuda-engine.md, runs 27 and 29): 8 streams +0.75% with
    // it (run 27), +2.0% more since run 29's kernel; to 16 or 32 rows 8 streams within noise
    // and 32 streams flat / -0.4% (our 52.2 us a layer against cuBLASLt's 50.5 plus SwiGLU).
    if (const char* v = std::getenv("HELEXA_CUDA_MMA_SWIGLU_MAX_ROWS"); v != nullptr) {
        mma_swiglu_max_rows_ = std::clamp<int64_t>(std::atoll(v), 0, kernels::kSkinnyMmaMaxRows);
    }
    // HELEXA_CUDA_MLP_CHAIN=1 chains the MLP's two tensor-core launches into one
    // (run_chain) where both take the tensor-core path. Off by default: measured
    // (run 15, H200, linear_bench "mlp") the chained launch is 11-19 us slower than the two
    // apart at 1-64 rows: each CTA's down range waits for gate_up tiles whose finishers sum
    // them after every range has ended (docs/perf/cuda-engine.md, run 15).
    if (const char* v = std::getenv("HELEXA_CUDA_MLP_CHAIN"); v != nullptr) {
        mlp_chain_ = std::string_view(v) == "1";
    }
    // HELEXA_CUDA_DECODE_CHAIN=0 runs each projection of a 1-2 row step alone instead of the
    // persistent chain launch (run_chain; A/B measurements); =1 chains whatever the
    // weights' sizes (so the GPU tests' small models take it too).
    // HELEXA_CUDA_CHAIN_ATTENTION=1 runs the attention inside the decode chain's launch.
    // Off by default: measured (run 17, H200) the chain with the attention inside took ~148
    // us a Qwen3-8B layer against ~117 us for the attention kernel then the chain
    // (docs/perf/cuda-engine.md, run 17).
    if (const char* v = std::getenv("HELEXA_CUDA_CHAIN_ATTENTION"); v != nullptr) {
        chain_attention_ = std::string_view(v) == "1";
    }
    // HELEXA_CUDA_K_SPLIT=0 keeps cuBLASLt's own split-K reduce and the norm kernel after
    // o_proj and down at 3-64 rows instead of k_split_then_norm (A/B measurements).
    if (const char* v = std::getenv("HELEXA_CUDA_K_SPLIT"); v != nullptr) {
        k_split_ = std::string_view(v) != "0";
    }
    if (const char* v = std::getenv("HELEXA_CUDA_DECODE_CHAIN"); v != nullptr) {
        const std::string_view mode(v);
        decode_chain_ = mode == "0"   ? DecodeChain::kOff
                        : mode == "1" ? DecodeChain::kAlways
                                      : DecodeChain::kLongLinks;
    }
}

bool CudaBackend::same_act(const Tensor& a, const Tensor& b, const Tensor& c) const {
    return a.dtype == act_ && b.dtype == act_ && c.dtype == act_;
}

// A poisoned context fails every later call at once, with the same error; so does a device
// another backend on it faulted (the context is shared) or one reset since.
Status CudaBackend::healthy() const {
    if (poisoned_) {
        return fail(ErrorCode::kModelRecovering, "device fault earlier: " + poison_reason_);
    }
    if (stale()) {
        return fail(ErrorCode::kModelRecovering,
                    "the device was reset after a fault; the model must be reloaded");
    }
    if (worker_->faulted()) {
        return fail(ErrorCode::kModelRecovering, "another model on this device hit a fault");
    }
    return ok();
}

Status CudaBackend::check(cudaError_t err, const std::string& what) {
    if (err == cudaSuccess) {
        return healthy();
    }
    if (is_sticky_error(err)) {
        poisoned_ = true;
        poison_reason_ = what + ": " + cudaGetErrorName(err);
        worker_->mark_faulted();
    }
    // Clear a non-sticky error so it is not reported again by the next launch.
    (void)cudaGetLastError();
    return cuda_status(err, what);
}

Status CudaBackend::note(Status st) {
    if (st) {
        return healthy();
    }
    if (st.error().code() == ErrorCode::kModelRecovering) {  // a sticky error underneath
        poisoned_ = true;
        poison_reason_ = st.error().full_message();
        worker_->mark_faulted();
    }
    return st;
}

}  // namespace helexa::cuda::backend_impl

namespace helexa::cuda {

using backend_impl::CudaBackend;

Result<std::unique_ptr<engine::Backend>> make_cuda_backend(const engine::BackendOptions& options) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        (void)cudaGetLastError();
        return fail(ErrorCode::kCudaUnavailable, "no CUDA device is visible");
    }
    if (options.device < 0 || options.device >= count) {
        return fail(ErrorCode::kCudaUnavailable, "CUDA device " + std::to_string(options.device) +
                                                     " does not exist (" + std::to_string(count) +
                                                     " visible)");
    }
    auto worker = DeviceWorker::for_device(options.device);
    Result<std::unique_ptr<CudaBackend>> made = fail(ErrorCode::kInternal, "not run");
    worker->run([&] {
        // A fault left the device's context unusable: reset it before anything new lives there.
        if (const cudaError_t err = worker->reset_if_faulted(); err != cudaSuccess) {
            std::string why;
            if (err == cudaErrorNotReady) {
                why = std::to_string(worker->live()) +
                      " model(s) loaded before the fault must unload first";
            } else {
                int mode = -1;
                (void)cudaDeviceGetAttribute(&mode, cudaDevAttrComputeMode, options.device);
                (void)cudaGetLastError();
                why = std::string("a new context did not come up after the reset (") +
                      cudaGetErrorName(err) + ", compute mode " + std::to_string(mode) +
                      "): only a process restart gives this device back";
            }
            made = fail(ErrorCode::kCudaUnavailable,
                        "CUDA device " + std::to_string(options.device) +
                            " faulted and cannot be reset yet: " + why);
            return;
        }
        made = CudaBackend::create(options, worker);
    });
    if (!made) {
        return tl::unexpected(std::move(made).error());
    }
    return std::unique_ptr<engine::Backend>(std::move(*made));
}

void register_cuda_backend() {
    static std::once_flag once;
    std::call_once(once, [] { engine::register_backend("cuda", make_cuda_backend); });
}

std::vector<DeviceInfo> list_devices() {
    std::vector<DeviceInfo> out;
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        (void)cudaGetLastError();
        return out;
    }
    for (int i = 0; i < count; ++i) {
        cudaDeviceProp prop{};
        if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
            continue;
        }
        DeviceInfo d;
        d.ordinal = i;
        d.name = prop.name;
        d.compute_major = prop.major;
        d.compute_minor = prop.minor;
        d.sm_count = prop.multiProcessorCount;
        d.total_bytes = static_cast<int64_t>(prop.totalGlobalMem);
        auto worker = DeviceWorker::for_device(i);
        worker->run([&] {
            size_t free_b = 0;
            size_t total_b = 0;
            if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
                d.free_bytes = static_cast<int64_t>(free_b);
            }
        });
        out.push_back(d);
    }
    return out;
}

}  // namespace helexa::cuda
