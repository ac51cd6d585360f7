// Tensor view helpers, dtype names and the backend factory.
#include "helexa/engine/backend.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>

#include "helexa/engine/cpu_backend.h"
#include "helexa/engine/row_draw.h"

namespace helexa::engine {

int64_t dtype_size(DType dtype) {
    switch (dtype) {
        case DType::kF32:
            return 4;
        case DType::kF16:
            return 2;
        case DType::kBF16:
            return 2;
        case DType::kI32:
            return 4;
    }
    return 4;
}

std::string_view dtype_name(DType dtype) {
    switch (dtype) {
        case DType::kF32:
            return "F32";
        case DType::kF16:
            return "F16";
        case DType::kBF16:
            return "BF16";
        case DType::kI32:
            return "I32";
    }
    return "?";
}

Tensor Tensor::row_slice(int64_t begin, int64_t n) const {
    Tensor t = *this;
    t.data = static_cast<std::byte*>(data) + begin * row_stride * dtype_size(dtype);
    t.rows = n;
    return t;
}

Tensor Tensor::col_slice(int64_t begin, int64_t n) const {
    Tensor t = *this;
    t.data = static_cast<std::byte*>(data) + begin * dtype_size(dtype);
    t.cols = n;
    return t;
}

Tensor Tensor::reshaped(int64_t new_rows, int64_t new_cols) const {
    Tensor t = *this;
    t.rows = new_rows;
    t.cols = new_cols;
    t.row_stride = new_cols;
    return t;
}

Status Backend::qkv_epilogue(const Tensor& qkv, int64_t n_heads, int64_t n_kv_heads,
                             int64_t head_dim, const Tensor& q_norm, const Tensor& k_norm,
                             float eps, const Tensor& positions, const RopeTable& rope_table,
                             KvCache& cache, int64_t layer, const Tensor& slots) {
    const Tensor q = qkv.col_slice(0, n_heads * head_dim);
    const Tensor k = qkv.col_slice(n_heads * head_dim, n_kv_heads * head_dim);
    const Tensor v = qkv.col_slice((n_heads + n_kv_heads) * head_dim, n_kv_heads * head_dim);
    if (q_norm && k_norm) {
        HELEXA_TRY_STATUS(rms_norm_heads(q, n_heads, q_norm, eps));
        HELEXA_TRY_STATUS(rms_norm_heads(k, n_kv_heads, k_norm, eps));
    }
    HELEXA_TRY_STATUS(rope(q, n_heads, head_dim, positions, rope_table));
    HELEXA_TRY_STATUS(rope(k, n_kv_heads, head_dim, positions, rope_table));
    return kv_write(cache, layer, k, v, slots);
}

Status Backend::qkv_attention(const Tensor& out, const Tensor& qkv, int64_t n_heads,
                              int64_t n_kv_heads, int64_t head_dim, const Tensor& q_norm,
                              const Tensor& k_norm, float eps, const Tensor& positions,
                              const RopeTable& rope_table, KvCache& cache, int64_t layer,
                              const Tensor& slots, const AttentionBatch& batch, float scale) {
    HELEXA_TRY_STATUS(qkv_epilogue(qkv, n_heads, n_kv_heads, head_dim, q_norm, k_norm, eps,
                                   positions, rope_table, cache, layer, slots));
    return attention(out, qkv.col_slice(0, n_heads * head_dim), cache, layer, batch, n_heads,
                     scale);
}

Status compose_fused_linear(Backend& backend, const Tensor& out, const Tensor& x, const Tensor& w,
                            const Tensor& bias, const LinearFusion& fusion,
                            const LinearScratch& scratch) {
    using Output = LinearFusion::Output;
    if (x.rows == 0) {
        return ok();
    }
    Tensor in = x;
    if (fusion.norm_weight) {
        if (!scratch.normed || scratch.normed.rows < x.rows || scratch.normed.cols != x.cols) {
            return fail(ErrorCode::kInternal, "fused_linear: normed scratch does not fit the input");
        }
        in = scratch.normed.row_slice(0, x.rows);
        HELEXA_TRY_STATUS(backend.rms_norm(in, x, fusion.norm_weight, fusion.eps));
    }
    if (fusion.output == Output::kStore) {
        return backend.linear(out, in, w, bias);
    }
    if (!scratch.product || scratch.product.rows < x.rows || scratch.product.cols != w.rows) {
        return fail(ErrorCode::kInternal, "fused_linear: product scratch does not fit the output");
    }
    const Tensor product = scratch.product.row_slice(0, x.rows);
    HELEXA_TRY_STATUS(backend.linear(product, in, w, bias));
    if (fusion.output == Output::kAccumulate) {
        return backend.add(out, out, product);
    }
    return backend.silu_mul(out, product);
}

Status Backend::fused_linear(const Tensor& out, const Tensor& x, const Tensor& w,
                             const Tensor& bias, const LinearFusion& fusion,
                             const LinearScratch& scratch) {
    return compose_fused_linear(*this, out, x, w, bias, fusion, scratch);
}

Status Backend::run_chain(std::span<const ChainLink> links) {
    for (const ChainLink& link : links) {
        if (const auto* l = std::get_if<LinearLink>(&link)) {
            HELEXA_TRY_STATUS(fused_linear(l->out, l->x, l->w, l->bias, l->fusion, l->scratch));
        } else {
            HELEXA_TRY_STATUS(run_attention_link(std::get<AttentionLink>(link)));
        }
    }
    return ok();
}

Status Backend::feed_ids(const Tensor& ids, const Tensor& prev, const Tensor& map) {
    if (ids.dtype != DType::kI32 || prev.dtype != DType::kI32 || map.dtype != DType::kI32 ||
        ids.rows != 1 || prev.rows != 1 || map.rows != 1 || map.cols != ids.cols) {
        return fail(ErrorCode::kInternal, "feed_ids: shape mismatch");
    }
    std::vector<int32_t> out(static_cast<size_t>(ids.cols));
    std::vector<int32_t> from(static_cast<size_t>(prev.cols));
    std::vector<int32_t> where(static_cast<size_t>(map.cols));
    HELEXA_TRY_STATUS(copy_to_host(out.data(), ids));
    HELEXA_TRY_STATUS(copy_to_host(from.data(), prev));
    HELEXA_TRY_STATUS(copy_to_host(where.data(), map));
    for (size_t i = 0; i < out.size(); ++i) {
        if (where[i] >= 0) {
            if (static_cast<size_t>(where[i]) >= from.size()) {
                return fail(ErrorCode::kInternal, "feed_ids: index past the previous step's ids");
            }
            // A broken row's -1 (its sequence fails when its tokens are read) feeds id 0, so
            // the step its neighbours share still runs (the device's embedding writes zeros
            // for it instead, and the row's result is dropped either way).
            out[i] = std::max(from[static_cast<size_t>(where[i])], 0);
        }
    }
    return copy_from_host(ids, out.data());
}

Status Backend::feed_draws(const Tensor& draws, int64_t n_rows, const Tensor& prev,
                           const Tensor& map) {
    if (draws.dtype != DType::kI32 || prev.dtype != DType::kI32 || map.dtype != DType::kI32 ||
        draws.rows != 1 || prev.rows != 1 || map.rows != 1 || map.cols != n_rows ||
        draws.cols < n_rows * kRowDrawWords) {
        return fail(ErrorCode::kInternal, "feed_draws: shape mismatch");
    }
    std::vector<int32_t> words(static_cast<size_t>(draws.cols));
    std::vector<int32_t> from(static_cast<size_t>(prev.cols));
    std::vector<int32_t> where(static_cast<size_t>(map.cols));
    HELEXA_TRY_STATUS(copy_to_host(words.data(), draws));
    HELEXA_TRY_STATUS(copy_to_host(from.data(), prev));
    HELEXA_TRY_STATUS(copy_to_host(where.data(), map));
    // Copied out and back (not cast in place): the words are only int32s.
    constexpr auto kEntryWords = static_cast<int64_t>(sizeof(draw::PenaltyEntry) / sizeof(int32_t));
    std::vector<draw::RowDraw> rows(static_cast<size_t>(n_rows));
    std::vector<draw::PenaltyEntry> entries(
        static_cast<size_t>((draws.cols - n_rows * kRowDrawWords) / kEntryWords));
    std::byte* packed = reinterpret_cast<std::byte*>(words.data());
    const size_t row_bytes = rows.size() * sizeof(draw::RowDraw);
    std::memcpy(rows.data(), packed, row_bytes);
    std::memcpy(entries.data(), packed + row_bytes, entries.size() * sizeof(draw::PenaltyEntry));
    for (size_t r = 0; r < where.size(); ++r) {
        if (where[r] < 0) {
            continue;
        }
        if (static_cast<size_t>(where[r]) >= from.size() ||
            rows[r].first_entry + rows[r].n_entries > entries.size()) {
            return fail(ErrorCode::kInternal, "feed_draws: index past the previous step's ids "
                                              "or the step's entries");
        }
        feed_row_draw(rows[r], entries, from[static_cast<size_t>(where[r])]);
    }
    std::memcpy(packed + row_bytes, entries.data(), entries.size() * sizeof(draw::PenaltyEntry));
    return copy_from_host(draws, words.data());
}

Status Backend::start_read_ids(int slot, const Tensor& src) {
    if (slot < 0 || slot > 1 || src.dtype != DType::kI32 || src.rows != 1) {
        return fail(ErrorCode::kInternal, "start_read_ids: bad slot or tensor");
    }
    auto& dst = read_ids_[slot];
    dst.resize(static_cast<size_t>(src.cols));
    return src.cols > 0 ? copy_to_host(dst.data(), src) : ok();
}

Result<std::span<const int32_t>> Backend::finish_read_ids(int slot) {
    if (slot < 0 || slot > 1) {
        return fail(ErrorCode::kInternal, "finish_read_ids: bad slot");
    }
    return std::span<const int32_t>(read_ids_[slot]);
}

Status Backend::run_attention_link(const AttentionLink& a) {
    return qkv_attention(a.out, a.qkv, a.n_heads, a.n_kv_heads, a.head_dim, a.q_norm, a.k_norm,
                         a.eps, a.positions, *a.rope, *a.cache, a.layer, a.slots, *a.batch,
                         a.scale);
}

namespace {

struct BackendRegistry {
    std::mutex mutex;
    std::map<std::string, BackendFactory> factories;
};

BackendRegistry& registry() {
    static BackendRegistry r;
    return r;
}

}  // namespace

void register_backend(const std::string& kind, BackendFactory factory) {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    r.factories[kind] = std::move(factory);
}

Result<std::unique_ptr<Backend>> make_backend(const BackendOptions& options) {
    if (options.kind == "cpu") {
        return std::unique_ptr<Backend>(make_cpu_backend(options.n_threads));
    }
    BackendFactory factory;
    std::string supported = "cpu";
    {
        auto& r = registry();
        std::lock_guard lock(r.mutex);
        if (auto it = r.factories.find(options.kind); it != r.factories.end()) {
            factory = it->second;
        }
        for (const auto& [kind, f] : r.factories) {
            supported += ", " + kind;
        }
    }
    if (factory) {
        return factory(options);
    }
    if (options.kind == "cuda") {
        return fail(ErrorCode::kCudaUnavailable,
                    "the cuda backend is not available in this build (supported: " + supported +
                        ")");
    }
    return fail(ErrorCode::kInvalidRequest,
                "unknown backend '" + options.kind + "' (supported: " + supported + ")");
}

}  // namespace helexa::engine
