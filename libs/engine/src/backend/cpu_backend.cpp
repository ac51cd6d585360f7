// The `cpu` backend: the operation set of backend.h over host memory, split across a thread pool.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <unordered_map>
#include <vector>

#include "helexa/engine/cpu_backend.h"
#include "helexa/engine/row_draw.h"

namespace helexa::engine {
namespace {

using cpu::ThreadPool;

constexpr size_t kAlign = 64;

Status shape_error(const char* op, const std::string& what) {
    return fail(ErrorCode::kInternal, std::string("cpu backend ") + op + ": " + what);
}

#define HELEXA_CPU_REQUIRE(cond, op, what) \
    do {                                   \
        if (!(cond)) {                     \
            return shape_error(op, what);  \
        }                                  \
    } while (false)

float* f32_row(const Tensor& t, int64_t r) {
    return static_cast<float*>(t.data) + r * t.row_stride;
}
const int32_t* i32_data(const Tensor& t) {
    return static_cast<const int32_t*>(t.data);
}

class CpuKvCache final : public KvCache {
public:
    explicit CpuKvCache(const KvCacheShape& shape) : shape_(shape) {
        per_layer_ = shape.n_blocks * shape.block_size * shape.n_kv_heads * shape.head_dim;
        k_.assign(static_cast<size_t>(per_layer_ * shape.n_layers), 0.0f);
        v_.assign(static_cast<size_t>(per_layer_ * shape.n_layers), 0.0f);
    }
    const KvCacheShape& shape() const override { return shape_; }
    int64_t bytes() const override {
        return static_cast<int64_t>((k_.size() + v_.size()) * sizeof(float));
    }
    // [n_layers][n_blocks][block_size][n_kv_heads][head_dim]; slot = block * block_size + off.
    float* k_slot(int64_t layer, int64_t slot) {
        return k_.data() + layer * per_layer_ + slot * shape_.n_kv_heads * shape_.head_dim;
    }
    float* v_slot(int64_t layer, int64_t slot) {
        return v_.data() + layer * per_layer_ + slot * shape_.n_kv_heads * shape_.head_dim;
    }
    const float* k_slot(int64_t layer, int64_t slot) const {
        return const_cast<CpuKvCache*>(this)->k_slot(layer, slot);
    }
    const float* v_slot(int64_t layer, int64_t slot) const {
        return const_cast<CpuKvCache*>(this)->v_slot(layer, slot);
    }

private:
    KvCacheShape shape_;
    int64_t per_layer_ = 0;
    std::vector<float> k_;
    std::vector<float> v_;
};

class CpuBackend final : public Backend {
public:
    explicit CpuBackend(int n_threads) : pool_(n_threads) {}
    ~CpuBackend() override {
        for (auto& [ptr, bytes] : allocations_) {
            ::operator delete(ptr, std::align_val_t(kAlign));
        }
    }

    std::string_view name() const override { return "cpu"; }
    DType activation_dtype() const override { return DType::kF32; }

    Result<Tensor> alloc(DType dtype, int64_t rows, int64_t cols) override {
        if (rows < 0 || cols < 0) {
            return fail(ErrorCode::kInternal, "cpu backend alloc: negative shape");
        }
        const auto bytes = static_cast<size_t>(std::max<int64_t>(1, rows * cols) *
                                               dtype_size(dtype));
        void* ptr = ::operator new(bytes, std::align_val_t(kAlign), std::nothrow);
        if (ptr == nullptr) {
            return fail(ErrorCode::kInternal,
                        "cpu backend: out of memory allocating " + std::to_string(bytes) +
                            " bytes");
        }
        allocations_[ptr] = bytes;
        allocated_bytes_ += static_cast<int64_t>(bytes);
        return Tensor{ptr, dtype, rows, cols, cols};
    }

    void free(const Tensor& tensor) override {
        auto it = allocations_.find(tensor.data);
        if (it == allocations_.end()) {
            return;
        }
        allocated_bytes_ -= static_cast<int64_t>(it->second);
        ::operator delete(it->first, std::align_val_t(kAlign));
        allocations_.erase(it);
    }

    Result<Tensor> upload_weight(std::span<const std::byte> bytes, DType src_dtype, int64_t rows,
                                 int64_t cols) override {
        if (static_cast<int64_t>(bytes.size()) != rows * cols * dtype_size(src_dtype)) {
            return fail(ErrorCode::kInternal, "cpu backend upload_weight: size mismatch");
        }
        // Vectors (norm weights, biases) are tiny and read by elementwise ops: widen once.
        const DType dtype = rows == 1 ? DType::kF32 : src_dtype;
        auto t = alloc(dtype, rows, cols);
        if (!t) {
            return t;
        }
        if (dtype == src_dtype) {
            std::memcpy(t->data, bytes.data(), bytes.size());
        } else {
            cpu::to_f32(static_cast<float*>(t->data), bytes.data(), src_dtype, rows * cols);
        }
        return t;
    }

    Status copy_from_host(const Tensor& dst, const void* host) override {
        HELEXA_CPU_REQUIRE(dst.contiguous(), "copy_from_host", "strided destination");
        std::memcpy(dst.data, host, static_cast<size_t>(dst.numel() * dtype_size(dst.dtype)));
        return ok();
    }

    Status copy_to_host(void* host, const Tensor& src) override {
        const int64_t row_bytes = src.cols * dtype_size(src.dtype);
        for (int64_t r = 0; r < src.rows; ++r) {
            std::memcpy(static_cast<std::byte*>(host) + r * row_bytes,
                        static_cast<const std::byte*>(src.data) +
                            r * src.row_stride * dtype_size(src.dtype),
                        static_cast<size_t>(row_bytes));
        }
        return ok();
    }

    Result<std::unique_ptr<KvCache>> alloc_kv_cache(const KvCacheShape& shape) override {
        if (shape.n_layers <= 0 || shape.n_kv_heads <= 0 || shape.head_dim <= 0 ||
            shape.block_size <= 0 || shape.n_blocks <= 0 || shape.dtype != DType::kF32) {
            return fail(ErrorCode::kInvalidRequest, "cpu backend: invalid KV cache shape");
        }
        try {
            return std::unique_ptr<KvCache>(std::make_unique<CpuKvCache>(shape));
        } catch (const std::bad_alloc&) {
            return fail(ErrorCode::kInsufficientVram, "cpu backend: KV cache does not fit");
        }
    }

    int64_t allocated_bytes() const override { return allocated_bytes_; }

    Status embedding(const Tensor& out, const Tensor& table, const Tensor& ids) override {
        HELEXA_CPU_REQUIRE(out.dtype == DType::kF32 && ids.dtype == DType::kI32 &&
                               out.rows == ids.numel() && out.cols == table.cols,
                           "embedding", "shape mismatch");
        const int32_t* id = i32_data(ids);
        for (int64_t t = 0; t < out.rows; ++t) {
            if (id[t] < 0 || id[t] >= table.rows) {
                return fail(ErrorCode::kInvalidRequest,
                            "token id " + std::to_string(id[t]) + " outside the vocabulary (" +
                                std::to_string(table.rows) + ")");
            }
        }
        const int64_t es = dtype_size(table.dtype);
        pool_.parallel_for(out.rows, 4, [&](int64_t t0, int64_t t1, int) {
            for (int64_t t = t0; t < t1; ++t) {
                cpu::to_f32(f32_row(out, t),
                            static_cast<const std::byte*>(table.data) +
                                id[t] * table.row_stride * es,
                            table.dtype, table.cols);
            }
        });
        return ok();
    }

    Status rms_norm(const Tensor& out, const Tensor& x, const Tensor& weight,
                    float eps) override {
        HELEXA_CPU_REQUIRE(weight.dtype == DType::kF32 && x.cols == weight.cols &&
                               out.cols == x.cols && out.rows == x.rows,
                           "rms_norm", "shape mismatch");
        pool_.parallel_for(x.rows, 8, [&](int64_t r0, int64_t r1, int) {
            for (int64_t r = r0; r < r1; ++r) {
                norm_row(f32_row(out, r), f32_row(x, r), static_cast<const float*>(weight.data),
                         x.cols, eps);
            }
        });
        return ok();
    }

    Status add_rms_norm(const Tensor& out, const Tensor& residual, const Tensor& x,
                        const Tensor& weight, float eps) override {
        HELEXA_CPU_REQUIRE(weight.dtype == DType::kF32 && x.cols == weight.cols &&
                               residual.cols == x.cols && residual.rows == x.rows &&
                               out.rows == x.rows && out.cols == x.cols,
                           "add_rms_norm", "shape mismatch");
        pool_.parallel_for(x.rows, 8, [&](int64_t r0, int64_t r1, int) {
            for (int64_t r = r0; r < r1; ++r) {
                float* res = f32_row(residual, r);
                const float* xr = f32_row(x, r);
                for (int64_t c = 0; c < x.cols; ++c) {
                    res[c] += xr[c];
                }
                norm_row(f32_row(out, r), res, static_cast<const float*>(weight.data), x.cols,
                         eps);
            }
        });
        return ok();
    }

    Status add(const Tensor& out, const Tensor& x, const Tensor& y) override {
        HELEXA_CPU_REQUIRE(x.rows == y.rows && x.cols == y.cols && out.rows == x.rows &&
                               out.cols == x.cols,
                           "add", "shape mismatch");
        pool_.parallel_for(x.rows, 8, [&](int64_t r0, int64_t r1, int) {
            for (int64_t r = r0; r < r1; ++r) {
                float* o = f32_row(out, r);
                const float* a = f32_row(x, r);
                const float* b = f32_row(y, r);
                for (int64_t c = 0; c < x.cols; ++c) {
                    o[c] = a[c] + b[c];
                }
            }
        });
        return ok();
    }

    Status linear(const Tensor& out, const Tensor& x, const Tensor& w,
                  const Tensor& bias) override {
        HELEXA_CPU_REQUIRE(x.dtype == DType::kF32 && out.dtype == DType::kF32 &&
                               w.contiguous() && x.cols == w.cols && out.rows == x.rows &&
                               out.cols == w.rows,
                           "linear",
                           "shape mismatch x[" + std::to_string(x.rows) + "," +
                               std::to_string(x.cols) + "] w[" + std::to_string(w.rows) + "," +
                               std::to_string(w.cols) + "] out[" + std::to_string(out.rows) +
                               "," + std::to_string(out.cols) + "]");
        cpu::matmul(pool_, static_cast<float*>(out.data), out.row_stride,
                    static_cast<const float*>(x.data), x.row_stride, w.data, w.dtype, x.rows,
                    w.rows, w.cols);
        if (bias) {
            HELEXA_CPU_REQUIRE(bias.dtype == DType::kF32 && bias.numel() == out.cols, "linear",
                               "bias shape");
            const auto* b = static_cast<const float*>(bias.data);
            for (int64_t r = 0; r < out.rows; ++r) {
                float* o = f32_row(out, r);
                for (int64_t c = 0; c < out.cols; ++c) {
                    o[c] += b[c];
                }
            }
        }
        return ok();
    }

    Status rms_norm_heads(const Tensor& x, int64_t n_heads, const Tensor& weight,
                          float eps) override {
        const int64_t hd = weight.cols;
        HELEXA_CPU_REQUIRE(weight.dtype == DType::kF32 && x.cols == n_heads * hd,
                           "rms_norm_heads", "shape mismatch");
        pool_.parallel_for(x.rows, 8, [&](int64_t r0, int64_t r1, int) {
            for (int64_t r = r0; r < r1; ++r) {
                for (int64_t h = 0; h < n_heads; ++h) {
                    float* p = f32_row(x, r) + h * hd;
                    norm_row(p, p, static_cast<const float*>(weight.data), hd, eps);
                }
            }
        });
        return ok();
    }

    Status rope(const Tensor& x, int64_t n_heads, int64_t head_dim, const Tensor& positions,
                const RopeTable& table) override {
        const int64_t half = table.rotary_dim / 2;
        HELEXA_CPU_REQUIRE(x.cols == n_heads * head_dim && positions.numel() == x.rows &&
                               table.rotary_dim <= head_dim && table.rotary_dim % 2 == 0 &&
                               table.inv_freq.numel() == half,
                           "rope", "shape mismatch");
        const auto* inv_freq = static_cast<const float*>(table.inv_freq.data);
        const int32_t* pos = i32_data(positions);
        pool_.parallel_for(x.rows, 4, [&](int64_t r0, int64_t r1, int) {
            std::vector<float> cs(static_cast<size_t>(2 * half));
            for (int64_t r = r0; r < r1; ++r) {
                const auto p = static_cast<float>(pos[r]);
                for (int64_t i = 0; i < half; ++i) {
                    const float angle = p * inv_freq[i];  // f32 product, as transformers does
                    cs[i] = std::cos(angle) * table.attention_scaling;
                    cs[half + i] = std::sin(angle) * table.attention_scaling;
                }
                for (int64_t h = 0; h < n_heads; ++h) {
                    float* v = f32_row(x, r) + h * head_dim;
                    for (int64_t i = 0; i < half; ++i) {
                        const float a = v[i];
                        const float b = v[i + half];
                        v[i] = a * cs[i] - b * cs[half + i];
                        v[i + half] = b * cs[i] + a * cs[half + i];
                    }
                }
            }
        });
        return ok();
    }

    Status silu_mul(const Tensor& out, const Tensor& gate_up) override {
        const int64_t n = out.cols;
        HELEXA_CPU_REQUIRE(gate_up.cols == 2 * n && gate_up.rows == out.rows, "silu_mul",
                           "shape mismatch");
        pool_.parallel_for(out.rows, 4, [&](int64_t r0, int64_t r1, int) {
            for (int64_t r = r0; r < r1; ++r) {
                const float* g = f32_row(gate_up, r);
                const float* u = g + n;
                float* o = f32_row(out, r);
                for (int64_t c = 0; c < n; ++c) {
                    o[c] = g[c] / (1.0f + std::exp(-g[c])) * u[c];
                }
            }
        });
        return ok();
    }

    Status kv_write(KvCache& cache, int64_t layer, const Tensor& k, const Tensor& v,
                    const Tensor& slots) override {
        auto& kv = static_cast<CpuKvCache&>(cache);
        const auto& s = kv.shape();
        const int64_t width = s.n_kv_heads * s.head_dim;
        HELEXA_CPU_REQUIRE(k.cols == width && v.cols == width && k.rows == v.rows &&
                               slots.numel() == k.rows && layer >= 0 && layer < s.n_layers,
                           "kv_write", "shape mismatch");
        const int32_t* slot = i32_data(slots);
        const int64_t n_slots = s.n_blocks * s.block_size;
        for (int64_t t = 0; t < k.rows; ++t) {
            if (slot[t] < 0 || slot[t] >= n_slots) {
                return fail(ErrorCode::kInternal, "kv_write: slot outside the KV pool");
            }
            std::memcpy(kv.k_slot(layer, slot[t]), f32_row(k, t),
                        static_cast<size_t>(width) * 4);
            std::memcpy(kv.v_slot(layer, slot[t]), f32_row(v, t),
                        static_cast<size_t>(width) * 4);
        }
        return ok();
    }

    Status attention(const Tensor& out, const Tensor& q, const KvCache& cache, int64_t layer,
                     const AttentionBatch& batch, int64_t n_heads, float scale) override;

    Status gather_rows(const Tensor& out, const Tensor& x, const Tensor& rows) override {
        HELEXA_CPU_REQUIRE(out.rows == rows.numel() && out.cols == x.cols &&
                               out.dtype == x.dtype,
                           "gather_rows", "shape mismatch");
        const int32_t* idx = i32_data(rows);
        const int64_t es = dtype_size(x.dtype);
        for (int64_t r = 0; r < out.rows; ++r) {
            HELEXA_CPU_REQUIRE(idx[r] >= 0 && idx[r] < x.rows, "gather_rows", "row index");
            std::memcpy(static_cast<std::byte*>(out.data) + r * out.row_stride * es,
                        static_cast<const std::byte*>(x.data) + idx[r] * x.row_stride * es,
                        static_cast<size_t>(x.cols * es));
        }
        return ok();
    }

    Status argmax_rows(const Tensor& out, const Tensor& logits) override {
        HELEXA_CPU_REQUIRE(out.dtype == DType::kI32 && logits.dtype == DType::kF32 &&
                               out.numel() == logits.rows,
                           "argmax_rows", "shape mismatch");
        auto* ids = static_cast<int32_t*>(out.data);
        for (int64_t r = 0; r < logits.rows; ++r) {
            const float* row = f32_row(logits, r);
            int32_t best = -1;
            bool inf = false;
            for (int64_t c = 0; c < logits.cols; ++c) {
                inf = inf || (std::isinf(row[c]) && row[c] > 0);
                if (std::isfinite(row[c]) && (best < 0 || row[c] > row[best])) {
                    best = static_cast<int32_t>(c);
                }
            }
            ids[r] = inf ? -1 : best;
        }
        return ok();
    }

    Status draw_rows(const Tensor& out, const Tensor& logits, const Tensor& draws) override {
        const int64_t row_words = logits.rows * static_cast<int64_t>(sizeof(draw::RowDraw) / 4);
        HELEXA_CPU_REQUIRE(out.dtype == DType::kI32 && logits.dtype == DType::kF32 &&
                               draws.dtype == DType::kI32 && logits.contiguous() &&
                               out.numel() == logits.rows && draws.numel() >= row_words &&
                               (draws.numel() - row_words) % 4 == 0,
                           "draw_rows", "shape mismatch");
        const auto* rows = static_cast<const draw::RowDraw*>(draws.data);
        const std::span<const draw::PenaltyEntry> entries(
            reinterpret_cast<const draw::PenaltyEntry*>(rows + logits.rows),
            static_cast<size_t>((draws.numel() - row_words) / 4));
        auto* ids = static_cast<int32_t*>(out.data);
        // Rows are independent: each reads its own logits and entries.
        pool_.parallel_for(logits.rows, 1, [&](int64_t r0, int64_t r1, int /*chunk*/) {
            for (int64_t r = r0; r < r1; ++r) {
                const draw::RowDraw& d = rows[r];
                ids[r] = d.mode == draw::kDrawHost
                             ? -2
                             : draw_row(std::span<float>(f32_row(logits, r),
                                                         static_cast<size_t>(logits.cols)),
                                        d, entries);
            }
        });
        return ok();
    }

private:
    static void norm_row(float* out, const float* x, const float* w, int64_t n, float eps) {
        double ss = 0;
        for (int64_t c = 0; c < n; ++c) {
            ss += static_cast<double>(x[c]) * x[c];
        }
        const auto inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
        for (int64_t c = 0; c < n; ++c) {
            out[c] = w[c] * (x[c] * inv);
        }
    }

    ThreadPool pool_;
    std::unordered_map<void*, size_t> allocations_;
    int64_t allocated_bytes_ = 0;
};

Status CpuBackend::attention(const Tensor& out, const Tensor& q, const KvCache& cache,
                             int64_t layer, const AttentionBatch& batch, int64_t n_heads,
                             float scale) {
    const auto& kv = static_cast<const CpuKvCache&>(cache);
    const auto& s = kv.shape();
    const int64_t hd = s.head_dim;
    HELEXA_CPU_REQUIRE(n_heads % s.n_kv_heads == 0 && q.cols == n_heads * hd &&
                           out.cols == q.cols && out.rows == q.rows && layer >= 0 &&
                           layer < s.n_layers,
                       "attention", "shape mismatch");
    const int32_t* qstart = i32_data(batch.query_start);
    const int32_t* ctx = i32_data(batch.context_len);
    const int32_t* tables = i32_data(batch.block_tables);
    HELEXA_CPU_REQUIRE(qstart[0] == 0 && qstart[batch.n_seqs] == q.rows, "attention",
                       "query_start does not cover the batch");
    // Tasks: (sequence, head, block of query rows), so one long prefill still fills the pool.
    constexpr int64_t kQueryBlock = 16;
    struct Task {
        int64_t seq;
        int64_t head;
        int64_t q0;
        int64_t q1;
    };
    std::vector<Task> tasks;
    for (int64_t i = 0; i < batch.n_seqs; ++i) {
        const int64_t nq = qstart[i + 1] - qstart[i];
        HELEXA_CPU_REQUIRE(nq >= 0 && ctx[i] >= nq && ctx[i] <= batch.max_context_len &&
                               (ctx[i] + s.block_size - 1) / s.block_size <=
                                   batch.max_blocks_per_seq,
                           "attention", "sequence metadata out of range");
        for (int64_t b = 0; b < (ctx[i] + s.block_size - 1) / s.block_size; ++b) {
            const int32_t id = tables[i * batch.max_blocks_per_seq + b];
            HELEXA_CPU_REQUIRE(id >= 0 && id < s.n_blocks, "attention", "block id out of range");
        }
        for (int64_t h = 0; h < n_heads; ++h) {
            for (int64_t q0 = 0; q0 < nq; q0 += kQueryBlock) {
                tasks.push_back({i, h, q0, std::min(nq, q0 + kQueryBlock)});
            }
        }
    }
    const int64_t group = n_heads / s.n_kv_heads;
    pool_.parallel_for(static_cast<int64_t>(tasks.size()), 1, [&](int64_t a, int64_t b, int) {
        std::vector<float> scores(static_cast<size_t>(std::max<int64_t>(1, batch.max_context_len)));
        for (int64_t ti = a; ti < b; ++ti) {
            const Task& task = tasks[static_cast<size_t>(ti)];
            const int64_t nq = qstart[task.seq + 1] - qstart[task.seq];
            const int64_t first_pos = ctx[task.seq] - nq;
            const int32_t* table = tables + task.seq * batch.max_blocks_per_seq;
            const int64_t kvh = task.head / group;
            for (int64_t qi = task.q0; qi < task.q1; ++qi) {
                const int64_t row = qstart[task.seq] + qi;
                const float* qv = f32_row(q, row) + task.head * hd;
                const int64_t n_keys = first_pos + qi + 1;  // causal: keys [0, pos]
                float max_score = -INFINITY;
                for (int64_t j = 0; j < n_keys; ++j) {
                    const int64_t slot = table[j / s.block_size] * s.block_size + j % s.block_size;
                    const float sc = cpu::dot_f32(qv, kv.k_slot(layer, slot) + kvh * hd, hd) * scale;
                    scores[static_cast<size_t>(j)] = sc;
                    max_score = std::max(max_score, sc);
                }
                double denom = 0;
                for (int64_t j = 0; j < n_keys; ++j) {
                    const float e = std::exp(scores[static_cast<size_t>(j)] - max_score);
                    scores[static_cast<size_t>(j)] = e;
                    denom += e;
                }
                float* o = f32_row(out, row) + task.head * hd;
                std::fill(o, o + hd, 0.0f);
                const auto inv = static_cast<float>(1.0 / denom);
                for (int64_t j = 0; j < n_keys; ++j) {
                    const int64_t slot = table[j / s.block_size] * s.block_size + j % s.block_size;
                    const float* vv = kv.v_slot(layer, slot) + kvh * hd;
                    const float p = scores[static_cast<size_t>(j)] * inv;
                    for (int64_t d = 0; d < hd; ++d) {
                        o[d] += p * vv[d];
                    }
                }
            }
        }
    });
    return ok();
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int n_threads) {
    return std::make_unique<CpuBackend>(n_threads);
}

}  // namespace helexa::engine
