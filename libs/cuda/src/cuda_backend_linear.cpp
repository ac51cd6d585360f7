// CudaBackend's projections (cuda_backend_impl.h): the linear and its fusions on the skinny,
// tensor-core or cuBLASLt path by row count, and Backend::run_chain's dispatch of a chain of
// links: the persistent decode chain at 1-2 rows, the K-split residual add at 3-64 rows, the
// chained MLP where switched on, else each link alone.

#include <algorithm>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "cuda_backend_impl.h"
#include "helexa/kernels/norm.h"
#include "helexa/kernels/pointwise.h"
#include "helexa/kernels/skinny_mma_matmul.h"

namespace helexa::cuda::backend_impl {

Status CudaBackend::linear(const Tensor& out, const Tensor& x, const Tensor& w,
                           const Tensor& bias) {
    return fused_linear(out, x, w, bias, LinearFusion{}, LinearScratch{});
}

// Up to skinny_max_rows_ rows: one skinny-matmul kernel with the norm, residual add or
// SwiGLU fused in. Up to mma_max_rows_ (SwiGLU: mma_swiglu_max_rows_ too): the norm kernel
// into scratch, then the tensor-core skinny matmul with the residual add or SwiGLU fused in.
// Above: the norm kernel, cuBLASLt (the residual add as its beta = 1 accumulation into out),
// then SwiGLU as its own kernel.
Status CudaBackend::fused_linear(const Tensor& out, const Tensor& x, const Tensor& w,
                                 const Tensor& bias, const LinearFusion& fusion,
                                 const LinearScratch& scratch) {
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
    if (x.rows <= std::max(mma_max_rows_, swiglu ? mma_swiglu_max_rows_ : 0) &&
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

// At 1-2 rows (where each projection alone would be a skinny matmul) every link in one
// persistent launch (kernels::launch_decode_chain), the attention included, when all of
// them fit it. Otherwise each attention alone (qkv_attention) and each run of projections
// between them as one decode chain when it fits, else each projection alone, except the
// MLP's pair where both would take the tensor-core path and mlp_chain_ is on: chained in one
// launch (kernels::launch_skinny_mma_mlp, the same bits as the two), and each residual add
// followed by a normalised projection at 3-64 rows (k_split_pair): the add's matmul split
// over K, its parts summed into the residual by the norm kernel (k_split_then_norm).
Status CudaBackend::run_chain(std::span<const engine::ChainLink> links) {
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
Status CudaBackend::try_decode_chain(std::span<const engine::ChainLink> links, bool& launched) {
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

Status CudaBackend::decode_chain_links(std::span<const engine::ChainLink> links,
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
        chain.push_back(decode_chain_link(l));
    }
    if (kernels::decode_chain_fits(chain.data(), static_cast<int>(chain.size()), T)) {
        rows = T;
    }
    return ok();
}

// Whether links (a, b) are the MLP's gate_up (+ norm, SwiGLU) and down (+ residual) at rows
// where both would take the tensor-core path, and mlp_chain_ is on.
bool CudaBackend::mma_mlp_pair(const engine::LinearLink& a, const engine::LinearLink& b) const {
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
Status CudaBackend::mma_mlp(const engine::LinearLink& a, const engine::LinearLink& b) {
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

bool CudaBackend::k_split_pair(const engine::LinearLink& a, const engine::LinearLink& b) const {
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
Status CudaBackend::k_split_then_norm(const engine::LinearLink& a, const engine::LinearLink& b) {
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

}  // namespace helexa::cuda::backend_impl
