// A Backend that forwards every call to a CPU backend through two hooks, for tests that need a
// backend with different ownership or recording behaviour (owner-thread and graph tests).
// memory(): allocation and host copies, run at once. op(fn): compute operations; the default
// runs fn now, a recording backend may keep it to replay later.
#pragma once

#include <functional>
#include <memory>

#include "helexa/engine/backend.h"
#include "helexa/engine/cpu_backend.h"

namespace helexa::engine::testing {

class ForwardingBackend : public Backend {
public:
    ForwardingBackend() : cpu_(make_cpu_backend(1)) {}

    std::string_view name() const override { return "forwarding"; }
    DType activation_dtype() const override { return DType::kF32; }
    Result<Tensor> alloc(DType d, int64_t r, int64_t c) override {
        return (memory(), cpu_->alloc(d, r, c));
    }
    void free(const Tensor& t) override {
        memory();
        cpu_->free(t);
    }
    Result<Tensor> upload_weight(std::span<const std::byte> b, DType d, int64_t r,
                                 int64_t c) override {
        return (memory(), cpu_->upload_weight(b, d, r, c));
    }
    Status copy_from_host(const Tensor& d, const void* h) override {
        return (memory(), cpu_->copy_from_host(d, h));
    }
    Status copy_to_host(void* h, const Tensor& s) override {
        return (memory(), cpu_->copy_to_host(h, s));
    }
    Result<std::unique_ptr<KvCache>> alloc_kv_cache(const KvCacheShape& s) override {
        return (memory(), cpu_->alloc_kv_cache(s));
    }
    int64_t allocated_bytes() const override { return cpu_->allocated_bytes(); }
    Status embedding(const Tensor& o, const Tensor& t, const Tensor& i) override {
        return op([=, this] { return cpu_->embedding(o, t, i); });
    }
    Status rms_norm(const Tensor& o, const Tensor& x, const Tensor& w, float e) override {
        return op([=, this] { return cpu_->rms_norm(o, x, w, e); });
    }
    Status add_rms_norm(const Tensor& o, const Tensor& r, const Tensor& x, const Tensor& w,
                        float e) override {
        return op([=, this] { return cpu_->add_rms_norm(o, r, x, w, e); });
    }
    Status add(const Tensor& o, const Tensor& x, const Tensor& y) override {
        return op([=, this] { return cpu_->add(o, x, y); });
    }
    Status linear(const Tensor& o, const Tensor& x, const Tensor& w, const Tensor& b) override {
        return op([=, this] { return cpu_->linear(o, x, w, b); });
    }
    Status rms_norm_heads(const Tensor& x, int64_t n, const Tensor& w, float e) override {
        return op([=, this] { return cpu_->rms_norm_heads(x, n, w, e); });
    }
    Status rope(const Tensor& x, int64_t n, int64_t hd, const Tensor& p,
                const RopeTable& t) override {
        return op([=, this] { return cpu_->rope(x, n, hd, p, t); });
    }
    Status silu_mul(const Tensor& o, const Tensor& g) override {
        return op([=, this] { return cpu_->silu_mul(o, g); });
    }
    Status kv_write(KvCache& c, int64_t l, const Tensor& k, const Tensor& v,
                    const Tensor& s) override {
        KvCache* cache = &c;
        return op([=, this] { return cpu_->kv_write(*cache, l, k, v, s); });
    }
    Status attention(const Tensor& o, const Tensor& q, const KvCache& c, int64_t l,
                     const AttentionBatch& b, int64_t n, float s) override {
        const KvCache* cache = &c;
        return op([=, this] { return cpu_->attention(o, q, *cache, l, b, n, s); });
    }
    Status gather_rows(const Tensor& o, const Tensor& x, const Tensor& r) override {
        return op([=, this] { return cpu_->gather_rows(o, x, r); });
    }
    Status argmax_rows(const Tensor& o, const Tensor& l) override {
        return op([=, this] { return cpu_->argmax_rows(o, l); });
    }
    Status draw_rows(const Tensor& o, const Tensor& l, const Tensor& d) override {
        return op([=, this] { return cpu_->draw_rows(o, l, d); });
    }

protected:
    virtual void memory() {}
    virtual Status op(std::function<Status()> fn) { return fn(); }

    std::unique_ptr<Backend> cpu_;
};

}  // namespace helexa::engine::testing
