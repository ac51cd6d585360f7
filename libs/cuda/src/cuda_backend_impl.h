// CudaBackend's declaration, shared by the files that define its operations (internal to
// libs/cuda): cuda_backend.cpp (memory, element-wise operations, sampling, graphs, faults, the
// factory), cuda_backend_linear.cpp (projections and the chain dispatch of Backend::run_chain)
// and cuda_backend_attention.cpp (the q/k/v epilogue and the paged attention). Every method runs
// on the device's worker thread.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cublaslt_matmul.h"
#include "cuda_status.h"
#include "device_worker.h"
#include "grown_buffer.h"
#include "helexa/cuda/cuda_backend.h"
#include "helexa/engine/draw_rule.h"
#include "helexa/kernels/attention.h"
#include "helexa/kernels/decode_chain.h"
#include "helexa/kernels/paged_kv.h"
#include "helexa/kernels/qkv_epilogue.h"
#include "helexa/kernels/skinny_matmul.h"
#include "upload_ring.h"

namespace helexa::cuda::backend_impl {

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

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

inline bool is_float(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

inline ElemType elem(DType t) {
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

inline cudaDataType_t cuda_type(DType t) {
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

inline kernels::SkinnyFusion::Output skinny_output(LinearFusion::Output o) {
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

// A projection link as the decode chain's kernel takes it (no checks: decode_chain_links and
// decode_chain_fits make them).
inline kernels::DecodeChainLink decode_chain_link(const engine::LinearLink& l) {
    kernels::DecodeChainLink c;
    c.out = l.out.data;
    c.out_stride = l.out.row_stride;
    c.x = l.x.data;
    c.x_stride = l.x.row_stride;
    c.w = l.w.data;
    c.bias = l.bias ? l.bias.data : nullptr;
    c.n = l.w.rows;
    c.k = l.w.cols;
    c.fusion.norm_weight = l.fusion.norm_weight ? l.fusion.norm_weight.data : nullptr;
    c.fusion.eps = l.fusion.eps;
    c.fusion.output = skinny_output(l.fusion.output);
    return c;
}

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
                                                       std::shared_ptr<DeviceWorker> worker);
    ~CudaBackend() override;

    std::string_view name() const override { return "cuda"; }
    DType activation_dtype() const override { return act_; }
    std::shared_ptr<engine::DeviceExecutor> executor() const override { return worker_; }
    std::optional<MemoryInfo> device_memory() const override;

    // ---- memory (cuda_backend.cpp) ----------------------------------------------------------
    Result<Tensor> alloc(DType dtype, int64_t rows, int64_t cols) override;
    void free(const Tensor& tensor) override;
    Result<Tensor> upload_weight(std::span<const std::byte> bytes, DType src_dtype, int64_t rows,
                                 int64_t cols) override;
    Status copy_from_host(const Tensor& dst, const void* host) override;
    Result<float*> page_locked_floats(int64_t n) override;
    Status copy_to_host(void* host, const Tensor& src) override;
    Result<std::unique_ptr<KvCache>> alloc_kv_cache(const KvCacheShape& shape) override;
    int64_t allocated_bytes() const override { return allocated_bytes_; }

    // ---- element-wise operations and sampling (cuda_backend.cpp) ----------------------------
    Status embedding(const Tensor& out, const Tensor& table, const Tensor& ids) override;
    Status rms_norm(const Tensor& out, const Tensor& x, const Tensor& weight,
                    float eps) override;
    Status add_rms_norm(const Tensor& out, const Tensor& residual, const Tensor& x,
                        const Tensor& weight, float eps) override;
    Status add(const Tensor& out, const Tensor& x, const Tensor& y) override;
    Status rms_norm_heads(const Tensor& x, int64_t n_heads, const Tensor& weight,
                          float eps) override;
    Status rope(const Tensor& x, int64_t n_heads, int64_t head_dim, const Tensor& positions,
                const RopeTable& table) override;
    Status silu_mul(const Tensor& out, const Tensor& gate_up) override;
    Status gather_rows(const Tensor& out, const Tensor& x, const Tensor& rows) override;
    Status argmax_rows(const Tensor& out, const Tensor& logits) override;
    // Top-p over the whole vocabulary is drawn here too (draw_rows.cu, nucleus_floor; the same
    // bits as the host rule: CudaOps.DrawRowsMatchTheHostRuleBitForBit).
    bool draws_whole_vocab_top_p() const override { return true; }
    Status draw_rows(const Tensor& out, const Tensor& logits, const Tensor& draws) override;
    // Overlapped steps: the feed as a kernel, the ids' reads into page-locked memory behind an
    // event each (so finish_read_ids waits for that copy, not for the stream's later work).
    Status feed_ids(const Tensor& ids, const Tensor& prev, const Tensor& map) override;
    Status feed_draws(const Tensor& draws, int64_t n_rows, const Tensor& prev,
                      const Tensor& map) override;
    Status start_read_ids(int slot, const Tensor& src) override;
    Result<std::span<const int32_t>> finish_read_ids(int slot) override;

    // ---- projections and chains (cuda_backend_linear.cpp) -----------------------------------
    Status linear(const Tensor& out, const Tensor& x, const Tensor& w,
                  const Tensor& bias) override;
    Status fused_linear(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                        const LinearFusion& fusion, const LinearScratch& scratch) override;
    Status run_chain(std::span<const engine::ChainLink> links) override;

    // ---- the attention block (cuda_backend_attention.cpp) -----------------------------------
    Status kv_write(KvCache& cache, int64_t layer, const Tensor& k, const Tensor& v,
                    const Tensor& slots) override;
    Status qkv_epilogue(const Tensor& qkv, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                        const Tensor& q_norm, const Tensor& k_norm, float eps,
                        const Tensor& positions, const RopeTable& rope_table, KvCache& cache,
                        int64_t layer, const Tensor& slots) override;
    Status attention(const Tensor& out, const Tensor& q, const KvCache& cache, int64_t layer,
                     const AttentionBatch& batch, int64_t n_heads, float scale) override;
    Status qkv_attention(const Tensor& out, const Tensor& qkv, int64_t n_heads, int64_t n_kv_heads,
                         int64_t head_dim, const Tensor& q_norm, const Tensor& k_norm, float eps,
                         const Tensor& positions, const RopeTable& rope_table, KvCache& cache,
                         int64_t layer, const Tensor& slots, const AttentionBatch& batch,
                         float scale) override;

    // ---- graphs (cuda_backend.cpp) ----------------------------------------------------------
    bool supports_graphs() const override { return true; }
    Result<int64_t> capture_graph(const std::function<Status()>& fn) override;
    Status replay_graph(int64_t id) override;
    void drop_graphs() override;

private:
    CudaBackend(const engine::BackendOptions& options, std::shared_ptr<DeviceWorker> worker);

    // ---- faults (cuda_backend.cpp) ----------------------------------------------------------
    // Whether the device was reset (after a fault) since this backend was made.
    bool stale() const { return worker_->generation() != generation_; }
    Status healthy() const;
    Status check(cudaError_t err, const std::string& what);
    Status note(Status st);
    bool same_act(const Tensor& a, const Tensor& b, const Tensor& c) const;

    // ---- chain dispatch (cuda_backend_linear.cpp) -------------------------------------------
    // The decode attention with its q/k/v epilogue done by the attention kernel
    // (kernels::FusedQkvEpilogue): its launch arguments, args.epilogue pointing at epilogue (so
    // a FusedAttention is used where it was filled, not copied).
    struct FusedAttention {
        kernels::PagedAttentionArgs args;
        kernels::FusedQkvEpilogue epilogue;
    };
    Status try_decode_chain(std::span<const engine::ChainLink> links, bool& launched);
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
                              std::vector<FusedAttention>& attention, int64_t& rows);
    bool mma_mlp_pair(const engine::LinearLink& a, const engine::LinearLink& b) const;
    Status mma_mlp(const engine::LinearLink& a, const engine::LinearLink& b);
    // Whether a (residual add, normalised projection of that residual) pair takes
    // k_split_then_norm: o_proj then the MLP's gate_up, down then the next layer's q/k/v, at
    // 3-64 rows on the cuBLASLt path. There, cuBLASLt splits the add's matmul over K and sums
    // the parts in a reduce kernel of its own, then the norm kernel runs: two small kernels
    // between the weight streams, where one does the same work. Measured on H200s (Qwen3-8B):
    // run 18, 32 streams +0.5 to +3.8%, 8 streams -0.4 to -2.6% with the sum kernel of then;
    // run 26a, with the sum's loads in one round, 4 and 8 streams +0.7% (32 unchanged). 1-2 rows
    // take the decode chain.
    static constexpr int64_t kKSplitMinRows = 3;
    static constexpr int64_t kKSplitMaxRows = 64;
    static constexpr int64_t kKSplitMaxParts = 8;
    // Up to this many rows gate_up takes the tensor-core kernel with SwiGLU fused (fused_linear;
    // HELEXA_CUDA_MMA_SWIGLU_MAX_ROWS overrides it): 8 streams +0.75% (run 27), +2.0% more with
    // run 29's kernel; at 16-32 rows flat to -0.4% (run 29, H200), where cuBLASLt's GEMM and the
    // SwiGLU kernel are still about as fast together.
    static constexpr int64_t kMmaSwiGluMaxRows = 8;
    bool k_split_pair(const engine::LinearLink& a, const engine::LinearLink& b) const;
    Status k_split_then_norm(const engine::LinearLink& a, const engine::LinearLink& b);

    // ---- attention arguments (cuda_backend_attention.cpp) -----------------------------------
    Status fused_attention(const engine::AttentionLink& l, FusedAttention& f, bool& fused);
    Result<kernels::PagedAttentionArgs> attention_args(const Tensor& out, const Tensor& q,
                                                       const CudaKvCache& kv, int64_t layer,
                                                       const AttentionBatch& batch,
                                                       int64_t n_heads, float scale);

    // ---- state ------------------------------------------------------------------------------
    DType act_;
    int64_t skinny_max_rows_ = 2;
    int64_t mma_max_rows_ = 0;
    int64_t mma_swiglu_max_rows_ = kMmaSwiGluMaxRows;  // HELEXA_CUDA_MMA_SWIGLU_MAX_ROWS
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
    std::unique_ptr<UploadRing> uploads_;  // copy_from_host's small copies
    void* page_locked_ = nullptr;  // page_locked_floats()
    size_t page_locked_bytes_ = 0;
    // start_read_ids' slots: page-locked ids, their count, and the event after their copy.
    struct IdsRead {
        int32_t* host = nullptr;
        int64_t capacity = 0;
        int64_t count = 0;
        cudaEvent_t done = nullptr;
    };
    IdsRead ids_reads_[2];
    std::unordered_map<void*, int64_t> allocations_;
    int64_t allocated_bytes_ = 0;
    bool poisoned_ = false;
    std::string poison_reason_;
    std::vector<cudaGraphExec_t> graphs_;
};

}  // namespace helexa::cuda::backend_impl
