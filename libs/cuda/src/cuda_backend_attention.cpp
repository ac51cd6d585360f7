// CudaBackend's attention block (cuda_backend_impl.h): the KV write, the q/k/v epilogue, the
// paged attention and, on decode steps, the two as one kernel (fused_attention).

#include <cstdlib>
#include <string_view>
#include <utility>

#include "cuda_backend_impl.h"

namespace helexa::cuda::backend_impl {

Status CudaBackend::kv_write(KvCache& cache, int64_t layer, const Tensor& k, const Tensor& v,
                             const Tensor& slots) {
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

Status CudaBackend::qkv_epilogue(const Tensor& qkv, int64_t n_heads, int64_t n_kv_heads,
                                 int64_t head_dim, const Tensor& q_norm, const Tensor& k_norm,
                                 float eps, const Tensor& positions, const RopeTable& rope_table,
                                 KvCache& cache, int64_t layer, const Tensor& slots) {
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

Status CudaBackend::attention(const Tensor& out, const Tensor& q, const KvCache& cache,
                              int64_t layer, const AttentionBatch& batch, int64_t n_heads,
                              float scale) {
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
Status CudaBackend::qkv_attention(const Tensor& out, const Tensor& qkv, int64_t n_heads,
                                  int64_t n_kv_heads, int64_t head_dim, const Tensor& q_norm,
                                  const Tensor& k_norm, float eps, const Tensor& positions,
                                  const RopeTable& rope_table, KvCache& cache, int64_t layer,
                                  const Tensor& slots, const AttentionBatch& batch, float scale) {
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
Status CudaBackend::fused_attention(const engine::AttentionLink& l, FusedAttention& f,
                                    bool& fused) {
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

// The paged-attention launch arguments for a step, the split workspace grown to fit.
Result<kernels::PagedAttentionArgs> CudaBackend::attention_args(const Tensor& out, const Tensor& q,
                                                                const CudaKvCache& kv,
                                                                int64_t layer,
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
    a.context_spread = batch.context_spread;
    a.n_heads = n_heads;
    a.scale = scale;
    a.type = elem(act_);
    a.workspace = attention_workspace_.ptr;
    a.workspace_bytes = attention_workspace_.bytes;
    return a;
}

}  // namespace helexa::cuda::backend_impl
