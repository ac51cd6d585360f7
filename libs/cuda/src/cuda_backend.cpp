// CudaBackend: the engine's Backend operations on one CUDA device (see cuda_backend.h).
// Every method runs on the device's worker thread. Kernels are enqueued on one stream; the only
// synchronisation point of a step is copy_to_host (the logits), where asynchronous kernel faults
// surface and, if sticky, poison the backend.
#include "helexa/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <span>
#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "cublaslt_matmul.h"
#include "cuda_status.h"
#include "device_worker.h"
#include "grown_buffer.h"
#include "helexa/engine/draw_rule.h"
#include "helexa/kernels/attention.h"
#include "helexa/kernels/decode_chain.h"
#include "helexa/kernels/l2_cache.h"
#include "helexa/kernels/norm.h"
#include "helexa/kernels/paged_kv.h"
#include "helexa/kernels/pointwise.h"
#include "helexa/kernels/qkv_epilogue.h"
#include "helexa/kernels/sampling.h"
#include "helexa/kernels/skinny_matmul.h"
#include "helexa/kernels/skinny_mma_matmul.h"

namespace helexa::cuda {
namespace {

using engine::AttentionBatch;
using engine::DType;
namespace draw = engine::draw;
using engine::KvCache;
using engine::KvCacheShape;
using engine::LinearFusion;
using engine::LinearScratch;
using engine::RopeTable;
using engine::Tensor;
using kernels::ElemType;

constexpr size_t kCublasWorkspaceBytes = size_t{32} << 20;

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

bool is_float(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

ElemType elem(DType t) {
    switch (t) {
        case DType::kF16:
            return ElemType::kF16;
        case DType::kBF16:
            return ElemType::kBF16;
        case DType::kF32:
        case DType::kI32:
            return ElemType::kF32;
    }
    return ElemType::kF32;
}

cudaDataType_t cuda_type(DType t) {
    switch (t) {
        case DType::kF16:
            return CUDA_R_16F;
        case DType::kBF16:
            return CUDA_R_16BF;
        case DType::kF32:
            return CUDA_R_32F;
        case DType::kI32:
            return CUDA_R_32I;
    }
    return CUDA_R_32F;
}

// K and V pools of every layer in one allocation, paged_kv.h layout per layer.
class CudaKvCache final : public KvCache {
public:
    CudaKvCache(const KvCacheShape& shape, void* base, int64_t bytes,
                std::shared_ptr<DeviceWorker> worker)
        : shape_(shape), base_(base), bytes_(bytes), worker_(std::move(worker)),
          generation_(worker_->generation()) {
        layout_ = kernels::PagedKvLayout{shape.n_blocks, shape.n_kv_heads, shape.block_size,
                                         shape.head_dim};
    }
    ~CudaKvCache() override {
        if (worker_->generation() == generation_) {  // else the reset freed it (and may reuse it)
            cudaFree(base_);
        }
    }
    const KvCacheShape& shape() const override { return shape_; }
    int64_t bytes() const override { return bytes_; }
    const kernels::PagedKvLayout& layout() const { return layout_; }
    void* k_pool(int64_t layer) const { return pool(2 * layer); }
    void* v_pool(int64_t layer) const { return pool(2 * layer + 1); }

private:
    void* pool(int64_t index) const {
        return static_cast<std::byte*>(base_) +
               index * layout_.layer_elems() * engine::dtype_size(shape_.dtype);
    }
    KvCacheShape shape_;
    kernels::PagedKvLayout layout_;
    void* base_;
    int64_t bytes_;
    std::shared_ptr<DeviceWorker> worker_;
    uint64_t generation_;
};

#define HELEXA_CUDA_REQUIRE(cond, op, what)                                                 \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            return fail(ErrorCode::kInternal, std::string("cuda backend: ") + (op) + ": " + \
                                                  (what));                                  \
        }                                                                                   \
    } while (false)

class CudaBackend final : public engine::Backend {
public:
    static Result<std::unique_ptr<CudaBackend>> create(const engine::BackendOptions& options,
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

    ~CudaBackend() override {
        worker_->detach();
        if (stale()) {
            // The device was reset since: everything here is gone, and a stale pointer or handle
            // may name the new generation's objects. (After a fault but before the reset the
            // teardown below runs: its calls fail, but they drop this backend's references to
            // the context, which the reset needs.)
            (void)matmul_.release();
            return;
        }
        if (stream_) {
            cudaStreamSynchronize(stream_);
        }
        drop_graphs();
        matmul_.reset();
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
        if (stream_) {
            cudaStreamDestroy(stream_);
        }
    }

    std::string_view name() const override { return "cuda"; }
    DType activation_dtype() const override { return act_; }
    std::shared_ptr<engine::DeviceExecutor> executor() const override { return worker_; }
    std::optional<MemoryInfo> device_memory() const override {
        size_t free_b = 0;
        size_t total_b = 0;
        if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
            return std::nullopt;
        }
        return MemoryInfo{static_cast<int64_t>(free_b), static_cast<int64_t>(total_b)};
    }

    // ---- memory ---------------------------------------------------------------------------
    Result<Tensor> alloc(DType dtype, int64_t rows, int64_t cols) override {
        HELEXA_TRY_STATUS(healthy());
        const int64_t bytes = std::max<int64_t>(1, rows * cols) * engine::dtype_size(dtype);
        void* ptr = nullptr;
        HELEXA_TRY_STATUS(check(cudaMalloc(&ptr, static_cast<size_t>(bytes)),
                                "cudaMalloc(" + std::to_string(bytes) + " bytes)"));
        allocations_[ptr] = bytes;
        allocated_bytes_ += bytes;
        return Tensor{ptr, dtype, rows, cols, cols};
    }

    void free(const Tensor& tensor) override {
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

    Result<Tensor> upload_weight(std::span<const std::byte> bytes, DType src_dtype, int64_t rows,
                                 int64_t cols) override {
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

    Status copy_from_host(const Tensor& dst, const void* host) override {
        HELEXA_TRY_STATUS(healthy());
        HELEXA_CUDA_REQUIRE(dst.contiguous(), "copy_from_host", "strided destination");
        // Pageable source: the runtime stages it before returning, so the caller may reuse it.
        return check(cudaMemcpyAsync(dst.data, host,
                                     static_cast<size_t>(dst.numel() * engine::dtype_size(dst.dtype)),
                                     cudaMemcpyHostToDevice, stream_),
                     "copy_from_host");
    }

    // One page-locked buffer, grown (never shrunk) to the largest request: a step's logits rows.
    Result<float*> page_locked_floats(int64_t n) override {
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

    Status copy_to_host(void* host, const Tensor& src) override {
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

    Result<std::unique_ptr<KvCache>> alloc_kv_cache(const KvCacheShape& shape) override {
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

    int64_t allocated_bytes() const override { return allocated_bytes_; }

    // ---- operations -----------------------------------------------------------------------
    Status embedding(const Tensor& out, const Tensor& table, const Tensor& ids) override {
        HELEXA_CUDA_REQUIRE(out.dtype == act_ && table.dtype == act_ && ids.dtype == DType::kI32 &&
                                out.rows == ids.numel() && out.cols == table.cols,
                            "embedding", "shape mismatch");
        return check(kernels::launch_embedding(out.data, out.row_stride, table.data,
                                               table.row_stride, static_cast<const int32_t*>(ids.data),
                                               out.rows, table.rows, out.cols, nullptr, elem(act_),
                                               stream_),
                     "embedding");
    }

    Status rms_norm(const Tensor& out, const Tensor& x, const Tensor& weight,
                    float eps) override {
        HELEXA_CUDA_REQUIRE(same_act(out, x, weight) && x.cols == weight.cols &&
                                out.cols == x.cols && out.rows == x.rows,
                            "rms_norm", "shape mismatch");
        return check(kernels::launch_rms_norm(out.data, out.row_stride, x.data, x.row_stride,
                                              weight.data, x.rows, x.cols, eps, elem(act_), stream_),
                     "rms_norm");
    }

    Status add_rms_norm(const Tensor& out, const Tensor& residual, const Tensor& x,
                        const Tensor& weight, float eps) override {
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

    Status add(const Tensor& out, const Tensor& x, const Tensor& y) override {
        HELEXA_CUDA_REQUIRE(same_act(out, x, y) && x.rows == y.rows && x.cols == y.cols &&
                                out.rows == x.rows && out.cols == x.cols,
                            "add", "shape mismatch");
        return check(kernels::launch_add(out.data, out.row_stride, x.data, x.row_stride, y.data,
                                         y.row_stride, x.rows, x.cols, elem(act_), stream_),
                     "add");
    }

    Status linear(const Tensor& out, const Tensor& x, const Tensor& w,
                  const Tensor& bias) override {
        return fused_linear(out, x, w, bias, LinearFusion{}, LinearScratch{});
    }

    static kernels::SkinnyFusion::Output skinny_output(LinearFusion::Output o) {
        switch (o) {
            case LinearFusion::Output::kStore:
                return kernels::SkinnyFusion::Output::kStore;
            case LinearFusion::Output::kAccumulate:
                return kernels::SkinnyFusion::Output::kAccumulate;
            case LinearFusion::Output::kSwiGlu:
                return kernels::SkinnyFusion::Output::kSwiGlu;
        }
        return kernels::SkinnyFusion::Output::kStore;
    }

    // Up to skinny_max_rows_ rows: one skinny-matmul kernel with the norm, residual add or
    // SwiGLU fused in. Up to mma_max_rows_: the norm kernel into scratch, then the tensor-core
    // skinny matmul with the residual add or SwiGLU fused in. Above: the norm kernel, cuBLASLt
    // (the residual add as its beta = 1 accumulation into out), then SwiGLU as its own kernel.
    Status fused_linear(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                        const LinearFusion& fusion, const LinearScratch& scratch) override {
        using Output = LinearFusion::Output;
        const bool swiglu = fusion.output == Output::kSwiGlu;
        const int64_t out_cols = swiglu ? w.rows / 2 : w.rows;
        HELEXA_CUDA_REQUIRE(x.dtype == act_ && w.dtype == act_ && w.contiguous() &&
                                (out.dtype == act_ ||
                                 (out.dtype == DType::kF32 && fusion.output == Output::kStore)) &&
                                x.cols == w.cols && out.rows == x.rows && out.cols == out_cols &&
                                (!swiglu || w.rows % 2 == 0) &&
                                (!bias || (bias.dtype == act_ && bias.numel() == w.rows)) &&
                                (!fusion.norm_weight || (fusion.norm_weight.dtype == act_ &&
                                                         fusion.norm_weight.numel() == x.cols)),
                            "linear", "shape mismatch");
        if (x.rows == 0) {
            return ok();
        }
        const bool skinny = x.rows <= skinny_max_rows_ && x.cols % 8 == 0 &&
                            x.row_stride % 8 == 0 && aligned16(x.data) && aligned16(w.data) &&
                            (!fusion.norm_weight || (aligned16(fusion.norm_weight.data) &&
                                                     kernels::skinny_norm_fits(x.rows, x.cols)));
        if (skinny) {
            kernels::SkinnyFusion f;
            f.norm_weight = fusion.norm_weight ? fusion.norm_weight.data : nullptr;
            f.eps = fusion.eps;
            f.output = skinny_output(fusion.output);
            return check(kernels::launch_skinny_matmul(out.data, out.row_stride, elem(out.dtype),
                                                       x.data, x.row_stride, w.data,
                                                       bias ? bias.data : nullptr, x.rows, w.rows,
                                                       w.cols, elem(act_), f, stream_),
                         "skinny_matmul");
        }
        Tensor in = x;
        if (fusion.norm_weight) {
            HELEXA_CUDA_REQUIRE(scratch.normed && scratch.normed.rows >= x.rows &&
                                    scratch.normed.cols == x.cols,
                                "linear", "normed scratch does not fit");
            in = scratch.normed.row_slice(0, x.rows);
            HELEXA_TRY_STATUS(rms_norm(in, x, fusion.norm_weight, fusion.eps));
        }
        if (x.rows <= mma_max_rows_ &&
            kernels::skinny_mma_fits(x.rows, w.rows, x.cols, skinny_output(fusion.output)) &&
            kernels::skinny_mma_supported() &&
            in.row_stride % 8 == 0 && aligned16(in.data) && aligned16(w.data)) {
            kernels::SkinnyFusion f;
            f.output = skinny_output(fusion.output);
            return check(kernels::launch_skinny_mma_matmul(
                             out.data, out.row_stride, elem(out.dtype), in.data, in.row_stride,
                             w.data, bias ? bias.data : nullptr, x.rows, w.rows, w.cols,
                             elem(act_), f, mma_workspace_, stream_),
                         "skinny_mma_matmul");
        }
        Tensor product = out;
        if (swiglu) {
            HELEXA_CUDA_REQUIRE(scratch.product && scratch.product.rows >= x.rows &&
                                    scratch.product.cols == w.rows,
                                "linear", "product scratch does not fit");
            product = scratch.product.row_slice(0, x.rows);
        }
        // cuBLASLt's bias epilogue takes no bf16/f16 bias with f32 output (its heuristic answers
        // CUBLAS_STATUS_INVALID_VALUE): that bias is added by its own kernel after the GEMM.
        const bool bias_in_gemm = bias && product.dtype == act_;
        HELEXA_TRY_STATUS(note(matmul_->run(product.data, product.row_stride,
                                            cuda_type(product.dtype), in.data, in.row_stride,
                                            w.data, bias_in_gemm ? bias.data : nullptr, x.rows,
                                            w.rows, w.cols, cuda_type(act_),
                                            fusion.output == Output::kAccumulate, stream_)));
        if (bias && !bias_in_gemm) {
            HELEXA_TRY_STATUS(check(kernels::launch_add_bias(product.data, product.row_stride,
                                                             elem(product.dtype), bias.data,
                                                             elem(act_), x.rows, w.rows, stream_),
                                    "add_bias"));
        }
        if (swiglu) {
            return silu_mul(out, product);
        }
        return ok();
    }

    // The decode attention with its q/k/v epilogue done by the attention kernel
    // (kernels::FusedQkvEpilogue): its launch arguments, args.epilogue pointing at epilogue (so
    // a FusedAttention is used where it was filled, not copied).
    struct FusedAttention {
        kernels::PagedAttentionArgs args;
        kernels::FusedQkvEpilogue epilogue;
    };
    // At 1-2 rows (where each projection alone would be a skinny matmul) every link in one
    // persistent launch (kernels::launch_decode_chain), the attention included, when all of
    // them fit it. Otherwise each attention alone (qkv_attention) and each run of projections
    // between them as one decode chain when it fits, else each projection alone, except the
    // MLP's pair where both would take the tensor-core path and mlp_chain_ is on: chained in one
    // launch (kernels::launch_skinny_mma_mlp, the same bits as the two), and each residual add
    // followed by a normalised projection at 9-64 rows (k_split_pair): the add's matmul split
    // over K, its parts summed into the residual by the norm kernel (k_split_then_norm).
    Status run_chain(std::span<const engine::ChainLink> links) override {
        bool launched = false;
        HELEXA_TRY_STATUS(try_decode_chain(links, launched));
        if (launched) {
            return ok();
        }
        for (size_t i = 0; i < links.size();) {
            if (const auto* a = std::get_if<engine::AttentionLink>(&links[i])) {
                HELEXA_TRY_STATUS(run_attention_link(*a));
                ++i;
                continue;
            }
            size_t end = i;
            while (end < links.size() && std::holds_alternative<engine::LinearLink>(links[end])) {
                ++end;
            }
            if (end - i < links.size()) {  // (the whole chain was tried above)
                HELEXA_TRY_STATUS(try_decode_chain(links.subspan(i, end - i), launched));
            }
            for (; !launched && i < end;) {
                const auto& l = std::get<engine::LinearLink>(links[i]);
                const engine::LinearLink* next =
                    i + 1 < end ? &std::get<engine::LinearLink>(links[i + 1]) : nullptr;
                if (next != nullptr && mma_mlp_pair(l, *next)) {
                    HELEXA_TRY_STATUS(mma_mlp(l, *next));
                    i += 2;
                    continue;
                }
                if (next != nullptr && k_split_pair(l, *next)) {
                    HELEXA_TRY_STATUS(k_split_then_norm(l, *next));
                    i += 2;
                    continue;
                }
                HELEXA_TRY_STATUS(fused_linear(l.out, l.x, l.w, l.bias, l.fusion, l.scratch));
                ++i;
            }
            i = end;
        }
        return ok();
    }

    // The links as one decode chain launch, launched true, where they all fit it
    // (decode_chain_links).
    Status try_decode_chain(std::span<const engine::ChainLink> links, bool& launched) {
        launched = false;
        std::vector<kernels::DecodeChainLink> chain;
        std::vector<FusedAttention> attention;
        attention.reserve(links.size());  // the chain's links point into it
        int64_t T = 0;
        HELEXA_TRY_STATUS(decode_chain_links(links, chain, attention, T));
        if (T == 0) {
            return ok();
        }
        launched = true;
        return check(kernels::launch_decode_chain(chain.data(), static_cast<int>(chain.size()), T,
                                                  elem(act_), decode_chain_workspace_, stream_),
                     "decode_chain");
    }

    // The links as the persistent decode chain takes them at T rows, T 0 where it does not take
    // them all. Only chains of two or more links whose every projection weight is at least
    // kDecodeChainMinLinkBytes: the chain's grid barriers cost about what the kernel boundaries
    // they replace do, and only long weight streams hide them. Measured on an H200 (run 16):
    // Qwen3-8B (links of 32-96 MiB) batch 1 0.78 -> 0.84 of the roofline, Qwen3-0.6B (4-12
    // MiB) 0.32 -> 0.29; sizes between are untested. HELEXA_CUDA_DECODE_CHAIN=1 drops the size
    // bound (tests), =0 never chains (A/B). An attention link goes in only as the fused decode
    // attention (fused_attention) and with HELEXA_CUDA_CHAIN_ATTENTION=1; its launch arguments
    // are kept in `attention`, which must not reallocate while chain is used.
    static constexpr int64_t kDecodeChainMinLinkBytes = 16 << 20;
    Status decode_chain_links(std::span<const engine::ChainLink> links,
                              std::vector<kernels::DecodeChainLink>& chain,
                              std::vector<FusedAttention>& attention, int64_t& rows) {
        rows = 0;
        if (decode_chain_ == DecodeChain::kOff || decode_chain_workspace_.device == nullptr ||
            links.size() < 2 ||
            static_cast<int64_t>(links.size()) > kernels::kDecodeChainMaxLinks ||
            !kernels::decode_chain_supported()) {
            return ok();
        }
        int64_t T = -1;
        for (const engine::ChainLink& link : links) {
            if (const auto* a = std::get_if<engine::AttentionLink>(&link)) {
                T = T < 0 ? a->qkv.rows : T;
                if (!chain_attention_ || a->qkv.rows != T) {
                    return ok();
                }
                continue;
            }
            const auto& l = std::get<engine::LinearLink>(link);
            T = T < 0 ? l.x.rows : T;
            if (decode_chain_ == DecodeChain::kLongLinks &&
                l.w.numel() * engine::dtype_size(l.w.dtype) < kDecodeChainMinLinkBytes) {
                return ok();
            }
        }
        if (T < 1 || T > std::min(skinny_max_rows_, kernels::kDecodeChainMaxRows)) {
            return ok();
        }
        for (const engine::ChainLink& link : links) {
            if (const auto* a = std::get_if<engine::AttentionLink>(&link)) {
                FusedAttention& f = attention.emplace_back();
                bool fused = false;
                HELEXA_TRY_STATUS(fused_attention(*a, f, fused));
                if (!fused) {
                    return ok();
                }
                kernels::DecodeChainLink c;
                c.attention = &f.args;
                chain.push_back(c);
                continue;
            }
            const auto& l = std::get<engine::LinearLink>(link);
            const bool swiglu = l.fusion.output == LinearFusion::Output::kSwiGlu;
            const Tensor& nw = l.fusion.norm_weight;
            if (l.x.rows != T || l.out.rows != T || l.x.dtype != act_ || l.w.dtype != act_ ||
                l.out.dtype != act_ || !l.w.contiguous() || l.x.cols != l.w.cols ||
                l.out.cols != (swiglu ? l.w.rows / 2 : l.w.rows) ||
                (l.bias && (l.bias.dtype != act_ || l.bias.numel() != l.w.rows)) ||
                (nw && (nw.dtype != act_ || nw.numel() != l.x.cols))) {
                return ok();
            }
            kernels::DecodeChainLink c;
            c.out = l.out.data;
            c.out_stride = l.out.row_stride;
            c.x = l.x.data;
            c.x_stride = l.x.row_stride;
            c.w = l.w.data;
            c.bias = l.bias ? l.bias.data : nullptr;
            c.n = l.w.rows;
            c.k = l.w.cols;
            c.fusion.norm_weight = nw ? nw.data : nullptr;
            c.fusion.eps = l.fusion.eps;
            c.fusion.output = skinny_output(l.fusion.output);
            chain.push_back(c);
        }
        if (kernels::decode_chain_fits(chain.data(), static_cast<int>(chain.size()), T)) {
            rows = T;
        }
        return ok();
    }

    // Whether links (a, b) are the MLP's gate_up (+ norm, SwiGLU) and down (+ residual) at rows
    // where both would take the tensor-core path, and mlp_chain_ is on.
    bool mma_mlp_pair(const engine::LinearLink& a, const engine::LinearLink& b) const {
        const Tensor& residual = a.x;
        const Tensor& act = a.out;
        const Tensor& normed = a.scratch.normed;
        const Tensor& norm_weight = a.fusion.norm_weight;
        const int64_t T = residual.rows;
        const int64_t D = residual.cols;
        const int64_t F = act.cols;
        return mlp_chain_ && a.fusion.output == LinearFusion::Output::kSwiGlu &&
               b.fusion.output == LinearFusion::Output::kAccumulate && !b.fusion.norm_weight &&
               b.x.data == act.data && b.out.data == residual.data &&
               b.out.row_stride == residual.row_stride && b.x.row_stride == act.row_stride &&
               T > skinny_max_rows_ && T <= mma_max_rows_ && !a.bias && !b.bias && norm_weight &&
               residual.dtype == act_ && act.dtype == act_ && a.w.dtype == act_ &&
               b.w.dtype == act_ && norm_weight.dtype == act_ && norm_weight.numel() == D &&
               act.rows == T && a.w.rows == 2 * F && a.w.cols == D && b.w.rows == D &&
               b.w.cols == F && a.w.contiguous() && b.w.contiguous() && normed &&
               normed.rows >= T && normed.cols == D && kernels::skinny_mma_mlp_fits(T, F, D) &&
               kernels::skinny_mma_supported() && act.row_stride % 8 == 0 &&
               normed.row_stride % 8 == 0 && aligned16(act.data) && aligned16(normed.data) &&
               aligned16(a.w.data) && aligned16(b.w.data);
    }

    // The pair mma_mlp_pair accepted: the norm kernel into scratch, then the chained launch.
    Status mma_mlp(const engine::LinearLink& a, const engine::LinearLink& b) {
        const Tensor& residual = a.x;
        const int64_t T = residual.rows;
        const Tensor in = a.scratch.normed.row_slice(0, T);
        HELEXA_TRY_STATUS(rms_norm(in, residual, a.fusion.norm_weight, a.fusion.eps));
        return check(kernels::launch_skinny_mma_mlp(
                         residual.data, residual.row_stride, a.out.data, a.out.row_stride,
                         in.data, in.row_stride, a.w.data, b.w.data, T, a.out.cols,
                         residual.cols, elem(act_), mma_workspace_, stream_),
                     "skinny_mma_mlp");
    }

    // Whether a (residual add, normalised projection of that residual) pair takes
    // k_split_then_norm: o_proj then the MLP's gate_up, down then the next layer's q/k/v, at
    // 9-64 rows on the cuBLASLt path. There, cuBLASLt splits the add's matmul over K and sums
    // the parts in a reduce kernel of its own, then the norm kernel runs: two small kernels
    // between the weight streams, where one does the same work. Measured on H200s (run 18,
    // Qwen3-8B, four A/Bs in separate calls): 32 streams +0.5 to +3.8%, 64 flat, 8 streams -0.4 to
    // -2.6% (the tuner picks 4-8 parts there, which its timing does not charge for the sum's
    // reads on a grid of 8 rows), so 8 rows and fewer keep cuBLASLt's reduce.
    static constexpr int64_t kKSplitMinRows = 9;
    static constexpr int64_t kKSplitMaxRows = 64;
    static constexpr int64_t kKSplitMaxParts = 8;
    bool k_split_pair(const engine::LinearLink& a, const engine::LinearLink& b) const {
        const int64_t T = a.x.rows;
        const int64_t D = a.out.cols;
        const Tensor& norm_weight = b.fusion.norm_weight;
        const Tensor& normed = b.scratch.normed;
        return k_split_ && act_ != DType::kF32 &&
               a.fusion.output == LinearFusion::Output::kAccumulate && !a.fusion.norm_weight &&
               !a.bias && T >= kKSplitMinRows && T <= kKSplitMaxRows &&
               T > std::max(skinny_max_rows_, mma_max_rows_) && a.x.dtype == act_ &&
               a.w.dtype == act_ && a.out.dtype == act_ &&
               a.w.contiguous() && a.x.cols == a.w.cols && a.out.rows == T && D == a.w.rows &&
               norm_weight && norm_weight.dtype == act_ && norm_weight.numel() == D &&
               b.x.data == a.out.data && b.x.row_stride == a.out.row_stride && b.x.rows == T &&
               b.x.cols == D && normed && normed.dtype == act_ && normed.rows >= T &&
               normed.cols == D && D % 8 == 0 && a.out.row_stride % 8 == 0 &&
               normed.row_stride % 8 == 0 && a.x.row_stride % 8 == 0 && aligned16(a.x.data) &&
               aligned16(a.w.data) && aligned16(a.out.data) && aligned16(normed.data) &&
               aligned16(norm_weight.data);
    }

    // The pair k_split_pair accepted: a's matmul as cuBLASLt's batched GEMM over K slices into
    // f32 partials (CublasLtMatmul::run_k_split), one kernel that adds their sum to the residual
    // and normalises it for b (kernels::launch_add_partials_rms_norm), then b's matmul on the
    // normalised rows. The residual is rounded once, as cuBLASLt's beta = 1 add rounds it.
    Status k_split_then_norm(const engine::LinearLink& a, const engine::LinearLink& b) {
        const int64_t T = a.x.rows;
        const int64_t D = a.out.cols;
        const int64_t K = a.w.cols;
        // Sized for the tuning class's rows: a decode graph of the class records after its first
        // (eager) step, and must not need a larger buffer than that step made.
        const auto need = static_cast<size_t>(kKSplitMaxParts * CublasLtMatmul::tuning_rows(T) *
                                              D * static_cast<int64_t>(sizeof(float)));
        HELEXA_TRY_STATUS(
            check(k_split_partials_.grow(need, /*zeroed=*/false, stream_), "K-split partials"));
        auto* partials = static_cast<float*>(k_split_partials_.ptr);
        auto parts = matmul_->run_k_split(partials, kKSplitMaxParts, a.x.data, a.x.row_stride,
                                          a.w.data, T, D, K, cuda_type(act_), stream_);
        if (!parts) {
            return note(tl::unexpected(std::move(parts).error()));
        }
        const Tensor normed = b.scratch.normed.row_slice(0, T);
        HELEXA_TRY_STATUS(check(kernels::launch_add_partials_rms_norm(
                                    normed.data, normed.row_stride, a.out.data,
                                    a.out.row_stride, partials, *parts, T * D, D,
                                    b.fusion.norm_weight.data, T, D, b.fusion.eps, elem(act_),
                                    stream_),
                                "add_partials_rms_norm"));
        return fused_linear(b.out, normed, b.w, b.bias,
                            LinearFusion{Tensor{}, 0.0f, b.fusion.output}, b.scratch);
    }

    Status rms_norm_heads(const Tensor& x, int64_t n_heads, const Tensor& weight,
                          float eps) override {
        HELEXA_CUDA_REQUIRE(x.dtype == act_ && weight.dtype == act_ &&
                                x.cols == n_heads * weight.cols,
                            "rms_norm_heads", "shape mismatch");
        return check(kernels::launch_rms_norm_heads(x.data, x.row_stride, weight.data, x.rows,
                                                    n_heads, weight.cols, eps, elem(act_), stream_),
                     "rms_norm_heads");
    }

    Status rope(const Tensor& x, int64_t n_heads, int64_t head_dim, const Tensor& positions,
                const RopeTable& table) override {
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

    Status silu_mul(const Tensor& out, const Tensor& gate_up) override {
        HELEXA_CUDA_REQUIRE(out.dtype == act_ && gate_up.dtype == act_ &&
                                gate_up.cols == 2 * out.cols && gate_up.rows == out.rows,
                            "silu_mul", "shape mismatch");
        return check(kernels::launch_silu_mul(out.data, out.row_stride, gate_up.data,
                                              gate_up.row_stride, out.rows, out.cols, elem(act_),
                                              stream_),
                     "silu_mul");
    }

    Status kv_write(KvCache& cache, int64_t layer, const Tensor& k, const Tensor& v,
                    const Tensor& slots) override {
        auto& kv = static_cast<CudaKvCache&>(cache);
        const auto& s = kv.shape();
        HELEXA_CUDA_REQUIRE(k.dtype == act_ && v.dtype == act_ &&
                                k.cols == s.n_kv_heads * s.head_dim && v.cols == k.cols &&
                                k.rows == v.rows && slots.numel() == k.rows && layer >= 0 &&
                                layer < s.n_layers,
                            "kv_write", "shape mismatch");
        return check(kernels::launch_kv_write(kv.k_pool(layer), kv.v_pool(layer), kv.layout(),
                                              k.data, k.row_stride, v.data, v.row_stride,
                                              static_cast<const int32_t*>(slots.data), k.rows,
                                              nullptr, elem(act_), stream_),
                     "kv_write");
    }

    Status qkv_epilogue(const Tensor& qkv, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                        const Tensor& q_norm, const Tensor& k_norm, float eps,
                        const Tensor& positions, const RopeTable& rope_table, KvCache& cache,
                        int64_t layer, const Tensor& slots) override {
        auto& kv = static_cast<CudaKvCache&>(cache);
        const auto& s = kv.shape();
        HELEXA_CUDA_REQUIRE(qkv.dtype == act_ && qkv.cols == (n_heads + 2 * n_kv_heads) * head_dim &&
                                s.n_kv_heads == n_kv_heads && s.head_dim == head_dim &&
                                positions.numel() == qkv.rows && slots.numel() == qkv.rows &&
                                layer >= 0 && layer < s.n_layers &&
                                static_cast<bool>(q_norm) == static_cast<bool>(k_norm) &&
                                (!q_norm || (q_norm.dtype == act_ && q_norm.numel() == head_dim &&
                                             k_norm.dtype == act_ && k_norm.numel() == head_dim)) &&
                                rope_table.inv_freq.dtype == DType::kF32 &&
                                rope_table.inv_freq.numel() == rope_table.rotary_dim / 2,
                            "qkv_epilogue", "shape mismatch");
        return check(kernels::launch_qkv_epilogue(
                         qkv.data, qkv.row_stride, qkv.rows, n_heads, n_kv_heads, head_dim,
                         q_norm ? q_norm.data : nullptr, k_norm ? k_norm.data : nullptr, eps,
                         static_cast<const int32_t*>(positions.data),
                         static_cast<const float*>(rope_table.inv_freq.data), rope_table.rotary_dim,
                         rope_table.attention_scaling, kv.k_pool(layer), kv.v_pool(layer),
                         kv.layout(), static_cast<const int32_t*>(slots.data), nullptr, elem(act_),
                         stream_),
                     "qkv_epilogue");
    }

    Status attention(const Tensor& out, const Tensor& q, const KvCache& cache, int64_t layer,
                     const AttentionBatch& batch, int64_t n_heads, float scale) override {
        const auto& kv = static_cast<const CudaKvCache&>(cache);
        const auto& s = kv.shape();
        HELEXA_CUDA_REQUIRE(out.dtype == act_ && q.dtype == act_ &&
                                q.cols == n_heads * s.head_dim && out.cols == q.cols &&
                                out.rows == q.rows && layer >= 0 && layer < s.n_layers &&
                                n_heads % s.n_kv_heads == 0,
                            "attention", "shape mismatch");
        if (q.rows == 0) {
            return ok();
        }
        auto args = attention_args(out, q, kv, layer, batch, n_heads, scale);
        if (!args) {
            return tl::unexpected(std::move(args).error());
        }
        return check(kernels::launch_paged_attention(*args, stream_), "attention");
    }

    // One kernel for decode steps (fused_attention, where the grid is small enough:
    // kernels::paged_attention_fuses_epilogue); otherwise the epilogue kernel then the
    // attention.
    Status qkv_attention(const Tensor& out, const Tensor& qkv, int64_t n_heads, int64_t n_kv_heads,
                         int64_t head_dim, const Tensor& q_norm, const Tensor& k_norm, float eps,
                         const Tensor& positions, const RopeTable& rope_table, KvCache& cache,
                         int64_t layer, const Tensor& slots, const AttentionBatch& batch,
                         float scale) override {
        const engine::AttentionLink link{out,   qkv,   n_heads, n_kv_heads, head_dim,
                                         q_norm, k_norm, eps,   positions,  &rope_table,
                                         &cache, layer, slots,  &batch,     scale};
        FusedAttention f;
        bool fused = false;
        HELEXA_TRY_STATUS(fused_attention(link, f, fused));
        if (!fused || !kernels::paged_attention_fuses_epilogue(f.args)) {
            // The composition checks the shapes and names the failing op.
            return Backend::qkv_attention(out, qkv, n_heads, n_kv_heads, head_dim, q_norm, k_norm,
                                          eps, positions, rope_table, cache, layer, slots, batch,
                                          scale);
        }
        return check(kernels::launch_paged_attention(f.args, stream_), "qkv_attention");
    }

    // Fills f for link l, or leaves fused false where the fused form does not apply: not a
    // decode step (one query row per sequence), shapes it does not take, or
    // HELEXA_CUDA_FUSED_QKV_ATTENTION=0 (A/B measurements). May grow the attention workspace.
    Status fused_attention(const engine::AttentionLink& l, FusedAttention& f, bool& fused) {
        static const bool fuse = [] {
            const char* v = std::getenv("HELEXA_CUDA_FUSED_QKV_ATTENTION");
            return v == nullptr || std::string_view(v) != "0";
        }();
        fused = false;
        auto& kv = static_cast<CudaKvCache&>(*l.cache);
        const auto& s = kv.shape();
        const Tensor& out = l.out;
        const Tensor& qkv = l.qkv;
        const int64_t hd = l.head_dim;
        const RopeTable& rope = *l.rope;
        const bool shapes_ok =
            out.dtype == act_ && qkv.dtype == act_ &&
            qkv.cols == (l.n_heads + 2 * l.n_kv_heads) * hd && out.rows == qkv.rows &&
            out.cols == l.n_heads * hd && s.n_kv_heads == l.n_kv_heads && s.head_dim == hd &&
            l.n_heads % l.n_kv_heads == 0 && l.positions.numel() == qkv.rows &&
            l.slots.numel() == qkv.rows && l.layer >= 0 && l.layer < s.n_layers &&
            static_cast<bool>(l.q_norm) == static_cast<bool>(l.k_norm) &&
            (!l.q_norm || (l.q_norm.dtype == act_ && l.q_norm.numel() == hd &&
                           l.k_norm.dtype == act_ && l.k_norm.numel() == hd)) &&
            rope.inv_freq.dtype == DType::kF32 && rope.inv_freq.numel() == rope.rotary_dim / 2;
        if (!fuse || !shapes_ok || qkv.rows == 0 || l.batch->max_query_len != 1) {
            return ok();
        }
        auto args = attention_args(out, qkv.col_slice(0, l.n_heads * hd), kv, l.layer, *l.batch,
                                   l.n_heads, l.scale);
        if (!args) {
            return tl::unexpected(std::move(args).error());
        }
        f.args = *args;
        kernels::FusedQkvEpilogue& e = f.epilogue;
        e.q_norm_weight = l.q_norm ? l.q_norm.data : nullptr;
        e.k_norm_weight = l.k_norm ? l.k_norm.data : nullptr;
        e.eps = l.eps;
        e.positions = static_cast<const int32_t*>(l.positions.data);
        e.inv_freq = static_cast<const float*>(rope.inv_freq.data);
        e.rotary_dim = rope.rotary_dim;
        e.attention_scaling = rope.attention_scaling;
        e.k_pool = kv.k_pool(l.layer);
        e.v_pool = kv.v_pool(l.layer);
        e.slots = static_cast<const int32_t*>(l.slots.data);
        f.args.epilogue = &e;
        fused = true;
        return ok();
    }

    Status gather_rows(const Tensor& out, const Tensor& x, const Tensor& rows) override {
        HELEXA_CUDA_REQUIRE(out.rows == rows.numel() && out.cols == x.cols &&
                                out.dtype == x.dtype && is_float(x.dtype),
                            "gather_rows", "shape mismatch");
        return check(kernels::launch_gather_rows(out.data, out.row_stride, x.data, x.row_stride,
                                                 static_cast<const int32_t*>(rows.data), out.rows,
                                                 x.cols, elem(x.dtype), stream_),
                     "gather_rows");
    }

    Status argmax_rows(const Tensor& out, const Tensor& logits) override {
        HELEXA_CUDA_REQUIRE(out.dtype == DType::kI32 && logits.dtype == DType::kF32 &&
                                logits.contiguous() && out.numel() == logits.rows,
                            "argmax_rows", "shape mismatch");
        return check(kernels::launch_argmax_rows(static_cast<const float*>(logits.data),
                                                 logits.rows, logits.cols,
                                                 static_cast<int32_t*>(out.data), stream_),
                     "argmax_rows");
    }

    // Top-p over the whole vocabulary is drawn here too (draw_rows.cu, nucleus_floor; the same
    // bits as the host rule: CudaOps.DrawRowsMatchTheHostRuleBitForBit).
    bool draws_whole_vocab_top_p() const override { return true; }
    Status draw_rows(const Tensor& out, const Tensor& logits, const Tensor& draws) override {
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

    // ---- graphs ---------------------------------------------------------------------------
    bool supports_graphs() const override { return true; }

    Result<int64_t> capture_graph(const std::function<Status()>& fn) override {
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

    Status replay_graph(int64_t id) override {
        HELEXA_TRY_STATUS(healthy());
        HELEXA_CUDA_REQUIRE(id >= 0 && id < static_cast<int64_t>(graphs_.size()) &&
                                graphs_[static_cast<size_t>(id)] != nullptr,
                            "replay_graph", "unknown graph");
        return check(cudaGraphLaunch(graphs_[static_cast<size_t>(id)], stream_), "graph launch");
    }

    void drop_graphs() override {
        for (auto g : graphs_) {
            if (g && !stale()) {
                cudaGraphExecDestroy(g);
            }
        }
        graphs_.clear();
    }

private:
    CudaBackend(const engine::BackendOptions& options, std::shared_ptr<DeviceWorker> worker)
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
        // o_proj and down at 9-64 rows instead of k_split_then_norm (A/B measurements).
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

    bool same_act(const Tensor& a, const Tensor& b, const Tensor& c) const {
        return a.dtype == act_ && b.dtype == act_ && c.dtype == act_;
    }

    // Whether the device was reset (after a fault) since this backend was made.
    bool stale() const { return worker_->generation() != generation_; }

    // A poisoned context fails every later call at once, with the same error; so does a device
    // another backend on it faulted (the context is shared) or one reset since.
    Status healthy() const {
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

    Status check(cudaError_t err, const std::string& what) {
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

    Status note(Status st) {
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

    DType act_;
    // The paged-attention launch arguments for a step, the split workspace grown to fit.
    Result<kernels::PagedAttentionArgs> attention_args(const Tensor& out, const Tensor& q,
                                                       const CudaKvCache& kv, int64_t layer,
                                                       const AttentionBatch& batch,
                                                       int64_t n_heads, float scale) {
        const auto& s = kv.shape();
        const size_t need = kernels::paged_attention_workspace_bytes(
            batch.n_seqs, batch.max_query_len, batch.max_context_len, n_heads, s.head_dim);
        // The split counters in it start at zero; every launch leaves them zero.
        HELEXA_TRY_STATUS(check(attention_workspace_.grow(need, /*zeroed=*/true, stream_),
                                "attention workspace"));
        kernels::PagedAttentionArgs a;
        a.out = out.data;
        a.out_stride = out.row_stride;
        a.q = q.data;
        a.q_stride = q.row_stride;
        a.k_pool = kv.k_pool(layer);
        a.v_pool = kv.v_pool(layer);
        a.layout = kv.layout();
        a.query_start = static_cast<const int32_t*>(batch.query_start.data);
        a.context_len = static_cast<const int32_t*>(batch.context_len.data);
        a.block_tables = static_cast<const int32_t*>(batch.block_tables.data);
        a.n_seqs = batch.n_seqs;
        a.max_blocks_per_seq = batch.max_blocks_per_seq;
        a.max_query_len = batch.max_query_len;
        a.max_context_len = batch.max_context_len;
        a.n_heads = n_heads;
        a.scale = scale;
        a.type = elem(act_);
        a.workspace = attention_workspace_.ptr;
        a.workspace_bytes = attention_workspace_.bytes;
        return a;
    }

    int64_t skinny_max_rows_ = 2;
    int64_t mma_max_rows_ = 0;
    bool mlp_chain_ = false;
    // Where run_chain takes the decode chain (decode_chain_links), and whether the attention
    // goes into it.
    enum class DecodeChain { kOff, kLongLinks, kAlways };
    DecodeChain decode_chain_ = DecodeChain::kLongLinks;
    bool chain_attention_ = false;
    bool k_split_ = true;
    std::shared_ptr<DeviceWorker> worker_;
    uint64_t generation_;
    cudaStream_t stream_ = nullptr;
    void* cublas_workspace_ = nullptr;
    void* mma_workspace_ = nullptr;  // kernels::skinny_mma_workspace_bytes(), zeroed
    kernels::DecodeChainWorkspace decode_chain_workspace_;  // decode_chain_workspace_bytes()
    std::unique_ptr<CublasLtMatmul> matmul_;
    GrownBuffer attention_workspace_;  // paged_attention_workspace_bytes() of the largest step
    GrownBuffer k_split_partials_;     // k_split_then_norm's f32 partials
    void* page_locked_ = nullptr;  // page_locked_floats()
    size_t page_locked_bytes_ = 0;
    std::unordered_map<void*, int64_t> allocations_;
    int64_t allocated_bytes_ = 0;
    bool poisoned_ = false;
    std::string poison_reason_;
    std::vector<cudaGraphExec_t> graphs_;
};

}  // namespace

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
            made = fail(ErrorCode::kCudaUnavailable, "CUDA device " +
                                                         std::to_string(options.device) +
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
