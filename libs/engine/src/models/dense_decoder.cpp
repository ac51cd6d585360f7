// The dense pre-norm decoder (Qwen3, Llama, Qwen2), written once against the Backend operations.
// Per layer: h = norm(x); qkv = h W_qkv (+b); [q/k norm]; rope(q, k); write K/V to the paged
// cache; attention over cached prefix + chunk; x += o_proj(attn); h = norm(x);
// x += down(silu(gate(h)) * up(h)). q/k/v and gate/up are fused into single weights at load so
// each step issues one wide linear instead of three (better thread utilisation at decode).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <tuple>
#include <string>
#include <vector>

#include "architecture.h"
#include "step_plan.h"
#include "../runtime/executor_bound_runner.h"
#include "helexa/engine/cpu_backend.h"
#include "helexa/engine/generation_config.h"
#include "helexa/engine/model_runner.h"
#include "helexa/engine/row_draw.h"
#include "helexa/engine/weights.h"

namespace helexa::engine {
namespace {

using models::ArchTraits;
using models::StepPlan;

struct LayerWeights {
    Tensor input_norm;
    Tensor qkv;
    Tensor qkv_bias;
    Tensor o;
    Tensor o_bias;
    Tensor q_norm;
    Tensor k_norm;
    Tensor post_norm;
    Tensor gate_up;
    Tensor gate_up_bias;
    Tensor down;
    Tensor down_bias;
};

// A grow-only backend buffer: step shapes vary, memory is reallocated only when a step needs
// more than any step before it.
class Scratch {
public:
    // `generation` is bumped whenever the buffer moves (recorded graphs point at it); a slot's
    // first allocation moves nothing a graph could hold, so the graphs recorded so far stay (a
    // first sampled step no longer drops every decode graph the load warmed).
    Result<Tensor> get(Backend& backend, DType dtype, int64_t rows, int64_t cols,
                       int64_t& generation) {
        const int64_t need = std::max<int64_t>(1, rows * cols);
        if (need > capacity_) {
            if (tensor_) {
                ++generation;
                backend.free(tensor_);
            }
            auto t = backend.alloc(dtype, 1, std::max(need, capacity_ * 3 / 2));
            if (!t) {
                tensor_ = Tensor{};
                capacity_ = 0;
                return t;
            }
            tensor_ = *t;
            capacity_ = t->cols;
        }
        return tensor_.reshaped(rows, cols);
    }

private:
    Tensor tensor_;
    int64_t capacity_ = 0;
};

class DenseDecoder final : public CausalLmRunner {
public:
    DenseDecoder(std::unique_ptr<Backend> backend, ModelConfig config, GenerationDefaults gen,
                 const ArchTraits& traits)
        : backend_(std::move(backend)), config_(std::move(config)), gen_(std::move(gen)),
          traits_(traits) {}

    Status load(const WeightSet& weights, const ModelRunnerOptions& options);

    int64_t vocab_size() const override { return config_.vocab_size; }
    const KvLayout& kv_layout() const override { return layout_; }
    Status step(const StepBatch& batch, std::vector<float>& logits) override {
        return run_step(batch, StepOutput{.logits = &logits});
    }
    Status step_argmax(const StepBatch& batch, std::vector<int32_t>& tokens) override {
        return run_step(batch, StepOutput{.tokens = &tokens});
    }
    Status launch_argmax(const StepBatch& batch) override { return launch(batch, nullptr); }
    Status launch_sample(const StepBatch& batch, const DrawBatch& draws) override;
    Status finish_launched(std::vector<int32_t>& tokens) override;
    Status step_in_place(const StepBatch& batch, std::span<float>& rows) override {
        return run_step(batch, StepOutput{.rows = &rows});
    }
    Status step_sample(const StepBatch& batch, const DrawBatch& draws,
                       std::vector<int32_t>& tokens, std::span<float>& host_rows) override {
        return run_step(batch, StepOutput{.rows = &host_rows, .tokens = &tokens, .draws = &draws});
    }
    bool draws_whole_vocab_top_p() const override { return backend_->draws_whole_vocab_top_p(); }

    const ModelConfig& config() const override { return config_; }
    const GenerationDefaults& generation_defaults() const override { return gen_; }
    int64_t max_context_tokens() const override {
        return std::min(config_.max_position_embeddings, layout_.n_blocks * layout_.block_size);
    }
    int64_t weight_bytes() const override { return weight_bytes_; }
    int64_t kv_cache_bytes() const override { return kv_->bytes(); }
    std::string_view backend_name() const override { return backend_->name(); }
    std::optional<Backend::MemoryInfo> device_memory() const override {
        return backend_->device_memory();
    }
    void set_activation_hook(ActivationHook hook) override { hook_ = std::move(hook); }

private:
    Result<Tensor> upload(const TensorInfo& info, int64_t rows, int64_t cols);
    // Uploads the row-wise concatenation of `parts` (same dtype, same column count).
    Result<Tensor> upload_concat(const std::vector<const TensorInfo*>& parts, int64_t cols);
    Result<Tensor> buf(size_t slot, DType dtype, int64_t rows, int64_t cols) {
        if (scratch_.size() <= slot) {
            scratch_.resize(slot + 1);
        }
        return scratch_[slot].get(*backend_, dtype, rows, cols, scratch_generation_);
    }
    Status emit(const std::string& name, const Tensor& t);
    // backend_->fused_linear, or its composition while the activation hook wants the
    // intermediates (normed input, product) materialised.
    Status project(const Tensor& out, const Tensor& x, const Tensor& w, const Tensor& bias,
                   const LinearFusion& fusion, const LinearScratch& scratch);
    // Where a step's results go: one of logits, rows and tokens; tokens and rows with draws.
    struct StepOutput {
        std::vector<float>* logits = nullptr;    // step(): a copy in the caller's vector
        std::span<float>* rows = nullptr;        // step_in_place(): the runner's memory
        std::vector<int32_t>* tokens = nullptr;  // step_argmax(): the argmax of each row
        const DrawBatch* draws = nullptr;  // step_sample(): tokens drawn, rows for host rows
        // launch(): per input token, the previous step's row it is fed from or -1 (empty:
        // none); per logits row, the same for the row's draw (launch_sample: its in-flight
        // entry, draw::feed_in_flight); and the read slot the tokens go to instead of `tokens`.
        const std::vector<int32_t>* feed = nullptr;
        const std::vector<int32_t>* row_feed = nullptr;
        int read_slot = -1;
    };
    Status run_step(const StepBatch& batch, const StepOutput& out);
    // launch_argmax (draws null) and launch_sample.
    Status launch(const StepBatch& batch, const DrawBatch* draws);
    // ModelRunnerOptions::warm_up_max_seqs: an argmax decode step of every graph bucket that
    // batches of 1..max_seqs sequences pad to, each sequence one token at position 0 of pool
    // block 0 (nothing lives in the pool at load, and a sequence writes each slot before it
    // reads it), results dropped.
    Status warm_up_decode(int64_t max_seqs);
    // Copies logits rows [0, n_real) of the step to where `out` wants them (step's vector, or
    // page-locked memory for rows).
    Status copy_rows_out(const StepOutput& out, int64_t n_rows, int64_t n_real);
    // What a step leaves on the device for the host to copy: logits rows, or one id a row
    // (the argmax, or the draw rule's token: then the step's packed draws are in kDraws).
    enum class StepEnd { kLogits, kArgmax, kDraw };
    // The step's operations over its packed metadata (recordable: no host copies, no
    // allocation once the buffers have been sized by an earlier identical step).
    Status forward(const StepPlan& plan, const Tensor& meta, StepEnd end);
    Status run_layers(int64_t n_tokens, const AttentionBatch& attn, const Tensor& ids,
                      const Tensor& positions, const Tensor& slots, Tensor& x, Tensor& last);

    std::unique_ptr<Backend> backend_;
    ModelConfig config_;
    GenerationDefaults gen_;
    const ArchTraits& traits_;
    KvLayout layout_;
    std::unique_ptr<KvCache> kv_;
    Tensor embed_;
    Tensor final_norm_;
    Tensor lm_head_;
    std::vector<LayerWeights> layers_;
    RopeTable rope_;
    int64_t weight_bytes_ = 0;
    std::vector<Scratch> scratch_;
    int64_t scratch_generation_ = 0;
    ActivationHook hook_;
    // Recorded decode graphs, per bucket and output kind; valid while no buffer has moved.
    struct GraphKey {
        models::GraphBucket bucket;  // sequences, block-table width, context spread
        StepEnd end;
        bool operator<(const GraphKey& o) const {
            return bucket < o.bucket || (!(o.bucket < bucket) && end < o.end);
        }
    };
    struct RecordedGraph {
        int64_t id;
        int64_t generation;
        void* meta;
    };
    std::map<GraphKey, RecordedGraph> graphs_;
    int64_t generation_seen_ = 0;
    // NEURON_CUDA_GRAPHS=0 turns graphs off (a debugging aid; also what the benchmark compares).
    bool graphs_enabled_ = true;
    // A KV block outside the scheduler's pool that graph padding sequences write into.
    int32_t trash_block_ = -1;
    // Launched steps not yet finished: the read slot and real rows of each, oldest
    // first; the rows of the last launched step (what fed rows index; -1 before any).
    struct Launched {
        int slot;
        int64_t rows;
    };
    std::deque<Launched> launched_;
    int64_t last_launched_rows_ = -1;
    int next_read_slot_ = 0;
};

Result<Tensor> DenseDecoder::upload(const TensorInfo& info, int64_t rows, int64_t cols) {
    weight_bytes_ += static_cast<int64_t>(info.bytes.size());
    return backend_->upload_weight(info.bytes, info.dtype, rows, cols);
}

Result<Tensor> DenseDecoder::upload_concat(const std::vector<const TensorInfo*>& parts,
                                           int64_t cols) {
    std::vector<std::byte> joined;
    int64_t rows = 0;
    const DType dtype = parts.front()->dtype;
    for (const auto* p : parts) {
        if (p->dtype != dtype) {
            return fail(ErrorCode::kInvalidRequest,
                        "tensors fused at load have different dtypes ('" + parts.front()->name +
                            "' vs '" + p->name + "')");
        }
        joined.insert(joined.end(), p->bytes.begin(), p->bytes.end());
        rows += p->numel() / cols;
    }
    weight_bytes_ += static_cast<int64_t>(joined.size());
    return backend_->upload_weight(joined, dtype, rows, cols);
}

Status DenseDecoder::load(const WeightSet& w, const ModelRunnerOptions& options) {
    const ModelConfig& c = config_;
    const int64_t H = c.hidden_size;
    const int64_t I = c.intermediate_size;
    const int64_t hd = c.head_dim;
    const int64_t q_width = c.num_attention_heads * hd;
    const int64_t kv_width = c.num_key_value_heads * hd;

#define HELEXA_REQ(var, name, ...)                          \
    auto var##_r = w.require(name, {__VA_ARGS__});          \
    if (!var##_r) {                                         \
        return tl::unexpected(std::move(var##_r).error());  \
    }                                                       \
    const TensorInfo* var = *var##_r
#define HELEXA_SET(dst, expr)                          \
    do {                                               \
        auto r_ = (expr);                              \
        if (!r_) {                                     \
            return tl::unexpected(std::move(r_).error()); \
        }                                              \
        dst = *r_;                                     \
    } while (false)

    HELEXA_REQ(embed, "model.embed_tokens.weight", c.vocab_size, H);
    HELEXA_SET(embed_, upload(*embed, c.vocab_size, H));
    HELEXA_REQ(norm, "model.norm.weight", H);
    HELEXA_SET(final_norm_, upload(*norm, 1, H));
    const TensorInfo* head = w.find("lm_head.weight");
    if (c.tie_word_embeddings || head == nullptr) {
        if (!c.tie_word_embeddings) {
            return fail(ErrorCode::kInvalidRequest,
                        "missing tensor 'lm_head.weight' (tie_word_embeddings is false)");
        }
        lm_head_ = embed_;
    } else {
        HELEXA_REQ(lm, "lm_head.weight", c.vocab_size, H);
        HELEXA_SET(lm_head_, upload(*lm, c.vocab_size, H));
    }
    const bool qkv_bias = traits_.qkv_bias_always || c.attention_bias;
    const bool o_bias = traits_.o_bias_follows_config && c.attention_bias;
    const bool mlp_bias = traits_.mlp_bias_follows_config && c.mlp_bias;
    layers_.resize(static_cast<size_t>(c.num_hidden_layers));
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
        LayerWeights& L = layers_[static_cast<size_t>(i)];
        const std::string p = "model.layers." + std::to_string(i) + ".";
        HELEXA_REQ(in_norm, p + "input_layernorm.weight", H);
        HELEXA_SET(L.input_norm, upload(*in_norm, 1, H));
        HELEXA_REQ(post, p + "post_attention_layernorm.weight", H);
        HELEXA_SET(L.post_norm, upload(*post, 1, H));
        HELEXA_REQ(q, p + "self_attn.q_proj.weight", q_width, H);
        HELEXA_REQ(k, p + "self_attn.k_proj.weight", kv_width, H);
        HELEXA_REQ(v, p + "self_attn.v_proj.weight", kv_width, H);
        HELEXA_SET(L.qkv, upload_concat({q, k, v}, H));
        HELEXA_REQ(o, p + "self_attn.o_proj.weight", H, q_width);
        HELEXA_SET(L.o, upload(*o, H, q_width));
        if (qkv_bias) {
            HELEXA_REQ(qb, p + "self_attn.q_proj.bias", q_width);
            HELEXA_REQ(kb, p + "self_attn.k_proj.bias", kv_width);
            HELEXA_REQ(vb, p + "self_attn.v_proj.bias", kv_width);
            // A bias is one row: upload_concat with cols = total width gives [1, q + 2kv].
            std::vector<std::byte> joined;
            for (const auto* b : {qb, kb, vb}) {
                if (b->dtype != qb->dtype) {
                    return fail(ErrorCode::kInvalidRequest, "q/k/v biases differ in dtype");
                }
                joined.insert(joined.end(), b->bytes.begin(), b->bytes.end());
            }
            weight_bytes_ += static_cast<int64_t>(joined.size());
            HELEXA_SET(L.qkv_bias,
                       backend_->upload_weight(joined, qb->dtype, 1, q_width + 2 * kv_width));
        }
        if (o_bias) {
            HELEXA_REQ(ob, p + "self_attn.o_proj.bias", H);
            HELEXA_SET(L.o_bias, upload(*ob, 1, H));
        }
        if (traits_.qk_norm) {
            HELEXA_REQ(qn, p + "self_attn.q_norm.weight", hd);
            HELEXA_REQ(kn, p + "self_attn.k_norm.weight", hd);
            HELEXA_SET(L.q_norm, upload(*qn, 1, hd));
            HELEXA_SET(L.k_norm, upload(*kn, 1, hd));
        }
        HELEXA_REQ(gate, p + "mlp.gate_proj.weight", I, H);
        HELEXA_REQ(up, p + "mlp.up_proj.weight", I, H);
        HELEXA_SET(L.gate_up, upload_concat({gate, up}, H));
        HELEXA_REQ(down, p + "mlp.down_proj.weight", H, I);
        HELEXA_SET(L.down, upload(*down, H, I));
        if (mlp_bias) {
            HELEXA_REQ(gb, p + "mlp.gate_proj.bias", I);
            HELEXA_REQ(ub, p + "mlp.up_proj.bias", I);
            std::vector<std::byte> joined(gb->bytes.begin(), gb->bytes.end());
            joined.insert(joined.end(), ub->bytes.begin(), ub->bytes.end());
            HELEXA_SET(L.gate_up_bias, backend_->upload_weight(joined, gb->dtype, 1, 2 * I));
            HELEXA_REQ(db, p + "mlp.down_proj.bias", H);
            HELEXA_SET(L.down_bias, upload(*db, 1, H));
        }
    }
#undef HELEXA_REQ
#undef HELEXA_SET

    const auto inv_freq = rope_inv_freq(c);
    auto inv = backend_->alloc(DType::kF32, 1, static_cast<int64_t>(inv_freq.size()));
    if (!inv) {
        return tl::unexpected(std::move(inv).error());
    }
    HELEXA_TRY_STATUS(backend_->copy_from_host(*inv, inv_freq.data()));
    rope_ = RopeTable{*inv, c.rotary_dim(), 1.0f};

    layout_.n_layers = c.num_hidden_layers;
    layout_.n_kv_heads = c.num_key_value_heads;
    layout_.head_dim = hd;
    layout_.block_size = options.block_size;
    if (options.block_size <= 0) {
        return fail(ErrorCode::kInvalidRequest, "KV block_size must be positive");
    }
    layout_.n_blocks = options.n_blocks;
    const DType kv_dtype = backend_->activation_dtype();
    if (layout_.n_blocks <= 0) {
        int64_t kv_budget = options.kv_memory_bytes;
        const auto mem = backend_->device_memory();
        if (mem && options.memory_utilization > 0) {
            // What the card may hold in all, minus what it already holds (weights, other
            // models), minus the step workspace still to be allocated.
            const auto allowed = static_cast<int64_t>(
                static_cast<double>(mem->total_bytes) * options.memory_utilization);
            const int64_t used = mem->total_bytes - mem->free_bytes;
            kv_budget = allowed - used - options.workspace_reserve_bytes;
        }
        layout_.n_blocks =
            std::max<int64_t>(0, kv_budget) / (kv_bytes_per_token(c, kv_dtype) * options.block_size);
        // No more than max_full_context_seqs sequences of the model's whole context: a small
        // model should not take the whole budget for blocks it can never fill.
        if (options.max_full_context_seqs > 0 && c.max_position_embeddings > 0) {
            const int64_t blocks_per_seq =
                (c.max_position_embeddings + options.block_size - 1) / options.block_size;
            layout_.n_blocks =
                std::min(layout_.n_blocks, blocks_per_seq * options.max_full_context_seqs);
        }
    }
    if (layout_.n_blocks <= 0) {
        return fail(ErrorCode::kInsufficientVram,
                    "KV memory budget of " + std::to_string(options.kv_memory_bytes) +
                        " bytes holds no block of " + std::to_string(options.block_size) +
                        " tokens");
    }
    // One block more than the scheduler sees: graph padding writes there (step_plan.h).
    auto kv = backend_->alloc_kv_cache(KvCacheShape{kv_dtype, layout_.n_layers, layout_.n_kv_heads,
                                                    layout_.head_dim, layout_.block_size,
                                                    layout_.n_blocks + 1});
    trash_block_ = static_cast<int32_t>(layout_.n_blocks);
    if (const char* g = std::getenv("NEURON_CUDA_GRAPHS"); g != nullptr && std::string(g) == "0") {
        graphs_enabled_ = false;
    }
    if (!kv) {
        return tl::unexpected(std::move(kv).error());
    }
    kv_ = std::move(*kv);
    if (options.warm_up_max_seqs > 0 && backend_->supports_graphs() && graphs_enabled_) {
        return warm_up_decode(options.warm_up_max_seqs);
    }
    return ok();
}

Status DenseDecoder::warm_up_decode(int64_t max_seqs) {
    const std::vector<int32_t> table{0};
    const std::vector<int32_t> token{0};
    // The smallest batch of each bucket, then the steps from the largest bucket down: the first
    // step sizes every scratch buffer, so no later one moves a buffer (which would drop the
    // graphs already recorded).
    std::vector<int64_t> firsts;
    StepBatch batch;
    int64_t last_bucket = 0;
    for (int64_t n = 1; n <= std::min(max_seqs, models::kMaxGraphSeqs); ++n) {
        batch.seqs.push_back({static_cast<uint64_t>(n), token, 0, table, true});
        const auto bucket = models::graph_bucket(batch, layout_);
        if (bucket && bucket->seqs != last_bucket) {
            last_bucket = bucket->seqs;
            firsts.push_back(n);
        }
    }
    std::vector<int32_t> ids;
    for (auto it = firsts.rbegin(); it != firsts.rend(); ++it) {
        batch.seqs.resize(static_cast<size_t>(*it));
        if (Status st = run_step(batch, StepOutput{.tokens = &ids}); !st) {
            return fail(std::move(st.error())
                            .with_context("warming up decode steps of " + std::to_string(*it) +
                                          " sequences"));
        }
    }
    return ok();
}

Status DenseDecoder::project(const Tensor& out, const Tensor& x, const Tensor& w,
                             const Tensor& bias, const LinearFusion& fusion,
                             const LinearScratch& scratch) {
    if (hook_) {
        return compose_fused_linear(*backend_, out, x, w, bias, fusion, scratch);
    }
    return backend_->fused_linear(out, x, w, bias, fusion, scratch);
}

Status DenseDecoder::emit(const std::string& name, const Tensor& t) {
    if (!hook_) {
        return ok();
    }
    std::vector<std::byte> raw(static_cast<size_t>(t.numel() * dtype_size(t.dtype)));
    HELEXA_TRY_STATUS(backend_->copy_to_host(raw.data(), t));
    std::vector<float> host(static_cast<size_t>(t.numel()));
    cpu::to_f32(host.data(), raw.data(), t.dtype, t.numel());
    hook_(name, host, t.rows, t.cols);
    return ok();
}

}  // namespace
}  // namespace helexa::engine

namespace helexa::engine {
namespace {

// Penalty entries a row of the packed draws has room for before the buffer must grow: the
// default repetition window (64 ids) with room to spare.
constexpr int64_t kDrawEntriesPerRow = 256;

enum Slot : size_t {
    kIds,
    kPositions,
    kSlots,
    kQueryStart,
    kContextLen,
    kTables,
    kRows,
    kX,
    kH,
    kQkv,
    kAttn,
    kProj,
    kGateUp,
    kAct,
    kGathered,
    kNormed,
    kLogits,
    kArgmax,
    kDraws,
    kMeta,
    kFeed,
};

#define HELEXA_BUF(var, slot, dtype, rows, cols)           \
    auto var##_r = buf(slot, dtype, rows, cols);           \
    if (!var##_r) {                                        \
        return tl::unexpected(std::move(var##_r).error()); \
    }                                                      \
    Tensor var = *var##_r

Status DenseDecoder::run_layers(int64_t T, const AttentionBatch& attn_batch, const Tensor& ids,
                                const Tensor& positions, const Tensor& slots, Tensor& x,
                                Tensor& last) {
    const ModelConfig& c = config_;
    const int64_t H = c.hidden_size;
    const int64_t hd = c.head_dim;
    const int64_t nh = c.num_attention_heads;
    const int64_t nkv = c.num_key_value_heads;
    const auto eps = static_cast<float>(c.rms_norm_eps);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const DType a = backend_->activation_dtype();
    HELEXA_BUF(h, kH, a, T, H);
    HELEXA_BUF(qkv, kQkv, a, T, (nh + 2 * nkv) * hd);
    HELEXA_BUF(attn, kAttn, a, T, nh * hd);
    HELEXA_BUF(proj, kProj, a, T, H);
    HELEXA_BUF(gu, kGateUp, a, T, 2 * c.intermediate_size);
    HELEXA_BUF(act, kAct, a, T, c.intermediate_size);
    Backend& b = *backend_;

    using Output = LinearFusion::Output;
    // x is the residual stream: the o and down projections add into it, and the next
    // projection normalises it on the way in (fused into one kernel per projection on CUDA).
    // The work from one attention to the next q/k/v projection (the attention, o_proj, the
    // MLP's two, the next layer's q/k/v) goes to the backend as one chain, which CUDA runs as
    // one launch at 1-2 rows (the attention inside it or, by default, as its own kernel before
    // it); while the activation hook wants the outputs, each link runs alone and is emitted
    // (the attention as its epilogue then the attention, to show q, k and v).
    std::vector<ChainLink> chain;
    chain.reserve(5);
    auto add_link = [&](const std::string& name, const Tensor& shown,
                        LinearLink link) -> Status {
        if (!hook_) {
            chain.emplace_back(std::move(link));
            return ok();
        }
        HELEXA_TRY_STATUS(project(link.out, link.x, link.w, link.bias, link.fusion, link.scratch));
        return emit(name, shown);
    };
    auto run_chain = [&]() -> Status {
        if (chain.empty()) {
            return ok();
        }
        Status st = b.run_chain(chain);
        chain.clear();
        return st;
    };
    HELEXA_TRY_STATUS(b.embedding(x, embed_, ids));
    HELEXA_TRY_STATUS(emit("embed", x));
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
        const LayerWeights& L = layers_[static_cast<size_t>(l)];
        const std::string p = "layers." + std::to_string(l) + ".";
        HELEXA_TRY_STATUS(add_link(p + "input_norm", h,
                                   {qkv, x, L.qkv, L.qkv_bias,
                                    LinearFusion{L.input_norm, eps, Output::kStore}, {h, {}}}));
        HELEXA_TRY_STATUS(run_chain());
        // q/k norm (Qwen3: L.q_norm / L.k_norm set), rope, KV write, attention: one op (the
        // next chain's first link: one kernel for CUDA decode steps, or inside the chain's
        // launch), or two while the activation hook wants q, k and v.
        if (hook_) {
            HELEXA_TRY_STATUS(b.qkv_epilogue(qkv, nh, nkv, hd, L.q_norm, L.k_norm, eps,
                                             positions, rope_, *kv_, l, slots));
            const Tensor q = qkv.col_slice(0, nh * hd);
            HELEXA_TRY_STATUS(emit(p + "q", q));
            HELEXA_TRY_STATUS(emit(p + "k", qkv.col_slice(nh * hd, nkv * hd)));
            HELEXA_TRY_STATUS(emit(p + "v", qkv.col_slice((nh + nkv) * hd, nkv * hd)));
            HELEXA_TRY_STATUS(b.attention(attn, q, *kv_, l, attn_batch, nh, scale));
        } else {
            chain.emplace_back(AttentionLink{attn, qkv, nh, nkv, hd, L.q_norm, L.k_norm, eps,
                                             positions, &rope_, kv_.get(), l, slots, &attn_batch,
                                             scale});
        }
        HELEXA_TRY_STATUS(emit(p + "attn_out", attn));
        const LinearFusion accumulate{Tensor{}, 0.0f, Output::kAccumulate};
        HELEXA_TRY_STATUS(
            add_link(p + "attn_proj", proj, {x, attn, L.o, L.o_bias, accumulate, {{}, proj}}));
        HELEXA_TRY_STATUS(add_link(p + "post_norm", h,
                                   {act, x, L.gate_up, L.gate_up_bias,
                                    LinearFusion{L.post_norm, eps, Output::kSwiGlu}, {h, gu}}));
        HELEXA_TRY_STATUS(
            add_link(p + "mlp_out", proj, {x, act, L.down, L.down_bias, accumulate, {{}, proj}}));
        HELEXA_TRY_STATUS(emit(p + "out", x));
    }
    HELEXA_TRY_STATUS(run_chain());
    last = x;
    return ok();
}

Status DenseDecoder::forward(const StepPlan& plan, const Tensor& meta, StepEnd end) {
    auto view = [&](int64_t offset, int64_t rows, int64_t cols) {
        Tensor t = meta;
        t.data = static_cast<std::byte*>(meta.data) + offset * 4;
        t.rows = rows;
        t.cols = cols;
        t.row_stride = cols;
        return t;
    };
    const Tensor ids_t = view(plan.ids, 1, plan.n_tokens);
    const Tensor pos_t = view(plan.positions, 1, plan.n_tokens);
    const Tensor slots_t = view(plan.slots, 1, plan.n_tokens);
    const Tensor rows_t = view(plan.rows, 1, plan.n_rows);
    AttentionBatch attn{plan.n_seqs,
                        plan.max_blocks,
                        plan.max_context,
                        plan.max_query,
                        view(plan.query_start, 1, plan.n_seqs + 1),
                        view(plan.context_len, 1, plan.n_seqs),
                        view(plan.tables, plan.n_seqs, plan.max_blocks),
                        plan.context_spread};
    const int64_t T = plan.n_tokens;
    const int64_t R = plan.n_rows;
    HELEXA_BUF(x, kX, backend_->activation_dtype(), T, config_.hidden_size);
    Tensor last;
    HELEXA_TRY_STATUS(run_layers(T, attn, ids_t, pos_t, slots_t, x, last));
    if (R == 0) {
        return ok();
    }
    HELEXA_BUF(gathered, kGathered, backend_->activation_dtype(), R, config_.hidden_size);
    HELEXA_BUF(normed, kNormed, backend_->activation_dtype(), R, config_.hidden_size);
    HELEXA_BUF(out, kLogits, DType::kF32, R, config_.vocab_size);
    HELEXA_TRY_STATUS(backend_->gather_rows(gathered, last, rows_t));
    HELEXA_TRY_STATUS(project(out, gathered, lm_head_, Tensor{},
                              LinearFusion{final_norm_, static_cast<float>(config_.rms_norm_eps),
                                           LinearFusion::Output::kStore},
                              {normed, {}}));
    HELEXA_TRY_STATUS(emit("final_norm", normed));
    HELEXA_TRY_STATUS(emit("logits", out));
    if (end == StepEnd::kArgmax) {
        HELEXA_BUF(tokens, kArgmax, DType::kI32, 1, R);
        HELEXA_TRY_STATUS(backend_->argmax_rows(tokens, out));
    } else if (end == StepEnd::kDraw) {
        // The draws were copied in before the step (run_step); only their base is read here, so
        // a recorded graph replays with each step's own draws.
        HELEXA_BUF(tokens, kArgmax, DType::kI32, 1, R);
        HELEXA_BUF(draws, kDraws, DType::kI32, 1, R * kRowDrawWords);
        HELEXA_TRY_STATUS(backend_->draw_rows(tokens, out, draws));
    }
    return ok();
}

Status DenseDecoder::run_step(const StepBatch& batch, const StepOutput& out) {
    if (out.read_slot < 0 && !launched_.empty()) {
        // Its scratch (and the argmax a later launch feeds from) belongs to those steps.
        return fail(ErrorCode::kInvalidRequest, "step: launched steps are not finished");
    }
    // Decode steps replay a CUDA graph per (sequence bucket, block-table width) when the backend
    // has graphs: hundreds of small launches per step become one. Not while dumping activations
    // (the hook copies to the host mid-step).
    std::optional<models::GraphBucket> bucket;
    if (backend_->supports_graphs() && !hook_ && graphs_enabled_) {
        bucket = models::graph_bucket(batch, layout_);
    }
    auto planned = models::plan_step(batch, layout_, config_.vocab_size, bucket, trash_block_);
    if (!planned) {
        return tl::unexpected(std::move(planned).error());
    }
    const StepPlan& plan = *planned;
    const StepEnd end = out.draws != nullptr                            ? StepEnd::kDraw
                        : out.tokens != nullptr || out.read_slot >= 0 ? StepEnd::kArgmax
                                                                        : StepEnd::kLogits;
    if (plan.n_tokens == 0) {
        if (out.logits) {
            out.logits->clear();
        }
        if (out.rows) {
            *out.rows = {};
        }
        if (out.tokens) {
            out.tokens->clear();
        }
        return ok();
    }
    // All of the step's metadata in one copy.
    HELEXA_BUF(meta, kMeta, DType::kI32, 1, static_cast<int64_t>(plan.packed.size()));
    HELEXA_TRY_STATUS(backend_->copy_from_host(meta, plan.packed.data()));
    // The feed's maps in one copy: per token, then (drawn rows) per logits row.
    const bool fed = out.feed != nullptr && !out.feed->empty();
    const bool rows_fed = fed && out.row_feed != nullptr && !out.row_feed->empty();
    Tensor token_map;
    Tensor row_map;
    if (fed) {
        // Fed ids from the previous step's tokens, before this step's own can overwrite them
        // (kArgmax holds at least that step's rows: buf() does not move it here). A graph
        // bucket's padding tokens and rows, after the batch's own, keep what the host gave.
        const int64_t row_cols = rows_fed ? plan.n_rows : 0;
        std::vector<int32_t> maps(*out.feed);
        maps.resize(static_cast<size_t>(plan.n_tokens), -1);
        if (rows_fed) {
            maps.insert(maps.end(), out.row_feed->begin(), out.row_feed->end());
            maps.resize(static_cast<size_t>(plan.n_tokens + row_cols), -1);
        }
        HELEXA_BUF(feed, kFeed, DType::kI32, 1, plan.n_tokens + row_cols);
        HELEXA_TRY_STATUS(backend_->copy_from_host(feed, maps.data()));
        token_map = feed.col_slice(0, plan.n_tokens);
        row_map = feed.col_slice(plan.n_tokens, row_cols);
        HELEXA_BUF(prev, kArgmax, DType::kI32, 1, last_launched_rows_);
        Tensor ids = meta;
        ids.data = static_cast<std::byte*>(meta.data) + plan.ids * 4;
        ids.cols = plan.n_tokens;
        ids.row_stride = plan.n_tokens;
        HELEXA_TRY_STATUS(backend_->feed_ids(ids, prev, token_map));
    }
    if (end == StepEnd::kDraw) {
        if (static_cast<int64_t>(out.draws->rows.size()) != plan.n_real_rows) {
            return fail(ErrorCode::kInternal,
                        "step_sample: " + std::to_string(out.draws->rows.size()) +
                            " draws for " + std::to_string(plan.n_real_rows) + " rows");
        }
        // Padding rows of a graph bucket draw nothing (kDrawHost).
        const std::vector<int32_t> packed = out.draws->packed(plan.n_rows);
        const auto n_words = static_cast<int64_t>(packed.size());
        // Room for kDrawEntriesPerRow entries a row from the start: the buffer growing while
        // repetition windows fill would move it, and every recorded graph with it.
        HELEXA_BUF(draws, kDraws, DType::kI32, 1,
                   std::max(n_words, plan.n_rows * (kRowDrawWords + 4 * kDrawEntriesPerRow)));
        HELEXA_TRY_STATUS(backend_->copy_from_host(draws.reshaped(1, n_words), packed.data()));
        if (rows_fed) {
            // The fed rows' draws take their token in flight where the feed above found it.
            HELEXA_BUF(prev, kArgmax, DType::kI32, 1, last_launched_rows_);
            HELEXA_TRY_STATUS(
                backend_->feed_draws(draws.reshaped(1, n_words), plan.n_rows, prev, row_map));
        }
    }

    if (bucket) {
        const GraphKey key{*bucket, end};
        auto it = graphs_.find(key);
        if (it != graphs_.end() && it->second.generation == scratch_generation_ &&
            it->second.meta == meta.data) {
            HELEXA_TRY_STATUS(backend_->replay_graph(it->second.id));
        } else {
            // First step of this shape: run it for real (sizing every buffer), then record it.
            HELEXA_TRY_STATUS(forward(plan, meta, end));
            if (generation_seen_ != scratch_generation_) {
                // A buffer moved: every recorded graph points at freed memory.
                backend_->drop_graphs();
                graphs_.clear();
                generation_seen_ = scratch_generation_;
            }
            auto id = backend_->capture_graph([&] { return forward(plan, meta, end); });
            if (!id) {
                return tl::unexpected(std::move(id).error());
            }
            if (generation_seen_ != scratch_generation_) {
                return fail(ErrorCode::kInternal, "step: a buffer grew while recording a graph");
            }
            graphs_[key] = RecordedGraph{*id, scratch_generation_, meta.data};
        }
    } else {
        HELEXA_TRY_STATUS(forward(plan, meta, end));
    }

    const int64_t R = plan.n_real_rows;
    if (end == StepEnd::kLogits) {
        return copy_rows_out(out, plan.n_rows, R);
    }
    HELEXA_BUF(ids, kArgmax, DType::kI32, 1, plan.n_rows);
    if (out.read_slot >= 0) {
        return backend_->start_read_ids(out.read_slot, ids.col_slice(0, R));
    }
    out.tokens->assign(static_cast<size_t>(R), -1);
    if (R > 0) {
        HELEXA_TRY_STATUS(backend_->copy_to_host(out.tokens->data(), ids.col_slice(0, R)));
    }
    if (end == StepEnd::kDraw) {
        *out.rows = {};
        if (out.draws->any_host_row()) {
            return copy_rows_out(out, plan.n_rows, R);
        }
    }
    return ok();
}

Status DenseDecoder::launch_sample(const StepBatch& batch, const DrawBatch& draws) {
    if (draws.any_host_row()) {
        return fail(ErrorCode::kInvalidRequest,
                    "launch_sample: a row left to the host sampler cannot be launched ahead");
    }
    return launch(batch, &draws);
}

Status DenseDecoder::launch(const StepBatch& batch, const DrawBatch* draws) {
    if (launched_.size() >= 2) {
        return fail(ErrorCode::kInvalidRequest,
                    "launch: two steps are outstanding already (finish one first)");
    }
    // The feed: per input token (in plan_step's order: each slice's tokens in batch order),
    // the previous launched step's row it takes, or -1; and the same per logits row.
    std::vector<int32_t> feed;
    std::vector<int32_t> row_feed;
    int64_t rows = 0;
    for (const SequenceSlice& s : batch.seqs) {
        rows += s.need_logits ? 1 : 0;
        if (s.fed_row < 0) {
            continue;
        }
        if (s.tokens.size() != 1 || s.fed_row >= last_launched_rows_) {
            return fail(ErrorCode::kInvalidRequest,
                        "launch: sequence " + std::to_string(s.seq_id) + " is fed row " +
                            std::to_string(s.fed_row) + " of a step with " +
                            std::to_string(std::max<int64_t>(last_launched_rows_, 0)) +
                            " rows");
        }
    }
    const bool fed = std::any_of(batch.seqs.begin(), batch.seqs.end(),
                                 [](const SequenceSlice& s) { return s.fed_row >= 0; });
    for (const SequenceSlice& s : batch.seqs) {
        if (!fed) {
            break;
        }
        if (s.fed_row >= 0) {
            feed.push_back(s.fed_row);
        } else {
            feed.insert(feed.end(), s.tokens.size(), -1);
        }
        if (draws != nullptr && s.need_logits) {
            row_feed.push_back(s.fed_row);
        }
    }
    const int slot = next_read_slot_;
    const Status st = run_step(
        batch, StepOutput{.draws = draws, .feed = &feed, .row_feed = &row_feed, .read_slot = slot});
    if (!st) {
        last_launched_rows_ = -1;  // its tokens may be half written: nothing feeds from them
        return st;
    }
    next_read_slot_ ^= 1;
    launched_.push_back({slot, rows});
    last_launched_rows_ = rows;
    return ok();
}

Status DenseDecoder::finish_launched(std::vector<int32_t>& tokens) {
    if (launched_.empty()) {
        return fail(ErrorCode::kInvalidRequest, "finish_launched: no step was launched");
    }
    const Launched l = launched_.front();
    launched_.pop_front();
    tokens.assign(static_cast<size_t>(l.rows), -1);
    if (l.rows == 0) {
        return ok();
    }
    auto read = backend_->finish_read_ids(l.slot);
    if (!read) {
        return tl::unexpected(std::move(read).error());
    }
    if (static_cast<int64_t>(read->size()) != l.rows) {
        return fail(ErrorCode::kInternal, "finish_launched: " + std::to_string(read->size()) +
                                              " tokens for " + std::to_string(l.rows) + " rows");
    }
    std::copy(read->begin(), read->end(), tokens.begin());
    return ok();
}

Status DenseDecoder::copy_rows_out(const StepOutput& out, int64_t n_rows, int64_t R) {
    // Sized, not cleared: the copy below overwrites every element, and clearing 32 rows of a
    // 152k vocabulary would write 19 MB per step for nothing.
    const auto n = static_cast<size_t>(R * config_.vocab_size);
    float* dst = nullptr;
    if (out.rows) {
        auto page_locked = backend_->page_locked_floats(static_cast<int64_t>(n));
        if (!page_locked) {
            return tl::unexpected(std::move(page_locked).error());
        }
        dst = *page_locked;
        if (dst == nullptr) {
            in_place_rows_.resize(n);
            dst = in_place_rows_.data();
        }
        *out.rows = std::span<float>(dst, n);
    } else {
        out.logits->resize(n);
        dst = out.logits->data();
    }
    if (R > 0) {
        HELEXA_BUF(logits, kLogits, DType::kF32, n_rows, config_.vocab_size);
        HELEXA_TRY_STATUS(backend_->copy_to_host(dst, logits.row_slice(0, R)));
    }
    return ok();
}

#undef HELEXA_BUF

}  // namespace

int64_t kv_bytes_per_token(const ModelConfig& config, DType kv_dtype) {
    return 2 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim *
           dtype_size(kv_dtype);
}

Result<std::unique_ptr<CausalLmRunner>> load_model_runner(
    const std::filesystem::path& snapshot_dir, const ModelRunnerOptions& options) {
    auto config = load_model_config(snapshot_dir);
    if (!config) {
        return tl::unexpected(std::move(config).error());
    }
    const auto* traits = models::find_arch_traits(config->model_type);
    if (traits == nullptr) {  // parse_model_config already checks; keep the two lists honest
        return fail(ErrorCode::kInternal, "no implementation for model_type " + config->model_type);
    }
    auto gen = load_generation_config(snapshot_dir, *config);
    if (!gen) {
        return tl::unexpected(std::move(gen).error());
    }
    auto weights = WeightSet::open(snapshot_dir);
    if (!weights) {
        return tl::unexpected(std::move(weights).error());
    }
    auto backend = make_backend(options.backend);
    if (!backend) {
        return tl::unexpected(std::move(backend).error());
    }
    std::shared_ptr<DeviceExecutor> executor = (*backend)->executor();
    auto runner = std::make_unique<DenseDecoder>(std::move(*backend), std::move(*config),
                                                 std::move(*gen), *traits);
    Status st = ok();
    if (executor) {
        // Upload, KV allocation and (on failure) the frees happen on the device's owner thread.
        executor->run([&] {
            st = runner->load(*weights, options);
            if (!st) {
                runner.reset();
            }
        });
    } else {
        st = runner->load(*weights, options);
    }
    if (!st) {
        return fail(std::move(st.error()).with_context("loading " + snapshot_dir.string()));
    }
    if (executor) {
        return bind_to_executor(std::move(runner), std::move(executor));
    }
    return std::unique_ptr<CausalLmRunner>(std::move(runner));
}

}  // namespace helexa::engine
