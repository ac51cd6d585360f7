// The operation set every model architecture is written against, once, for all backends.
// An architecture (src/models/) allocates tensors, uploads weights and calls these operations; it
// never touches memory directly, so the same model code drives the `cpu` backend today and a
// CUDA backend later (device pointers in Tensor::data, host-side planning of step metadata).
//
// Tensors are non-owning 2-D views (pointer + rows x cols + row stride + dtype) into memory the
// backend owns; higher-rank data is described by the operation's own parameters (e.g. rope takes
// n_heads and head_dim over a [tokens, n_heads * head_dim] view). A strided view lets q, k and v
// be column slices of one fused projection output without a copy.
//
// Activations are in the backend's activation_dtype(): f32 on the CPU backend (reference
// numerics), bf16 or f16 on CUDA (with f32 accumulation inside each operation). The model code
// allocates every activation with that dtype and asks for f32 only where it needs it (logits).
//
// Thread-safety: a Backend instance is driven by one thread. The CPU backend is driven by the
// model's scheduler thread and fans each operation out over its own thread pool; a backend whose
// device must be owned by one thread (CUDA) returns a DeviceExecutor, and everything that touches
// it (load, steps, destruction) runs through that executor (see load_model_runner).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "helexa/common/result.h"

namespace helexa::engine {

enum class DType { kF32, kF16, kBF16, kI32 };

// Bytes per element; "F32"/"F16"/"BF16"/"I32" as in safetensors headers.
int64_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);

// A view of backend memory: element (r, c) lives at data + (r * row_stride + c) * dtype_size.
struct Tensor {
    void* data = nullptr;
    DType dtype = DType::kF32;
    int64_t rows = 0;
    int64_t cols = 0;
    int64_t row_stride = 0;  // in elements; == cols when contiguous

    int64_t numel() const { return rows * cols; }
    bool contiguous() const { return row_stride == cols; }
    explicit operator bool() const { return data != nullptr; }
    // Rows [begin, begin + n) of this view.
    Tensor row_slice(int64_t begin, int64_t n) const;
    // Columns [begin, begin + n) of every row (a strided view).
    Tensor col_slice(int64_t begin, int64_t n) const;
    // The same contiguous memory seen as [rows, cols] (numel must match).
    Tensor reshaped(int64_t new_rows, int64_t new_cols) const;
};

// Rotary embedding, resolved from the config at load (llama3 scaling is folded into inv_freq):
// for dims i < rotary_dim / 2 of each head, pair (i, i + rotary_dim / 2) rotates by
// angle = pos * inv_freq[i] (neox / rotate_half style, as transformers' apply_rotary_pos_emb);
// dims >= rotary_dim pass through (partial rotary). cos/sin are multiplied by attention_scaling.
struct RopeTable {
    Tensor inv_freq;  // f32 [1, rotary_dim / 2]
    int64_t rotary_dim = 0;
    float attention_scaling = 1.0f;
};

// Per-step attention plan, built on the host by the model and uploaded (i32 tensors).
// Sequence s owns query rows [query_start[s], query_start[s + 1]) of the flattened batch; its
// first query row sits at absolute position context_len[s] - n_query(s); keys/values for
// positions [0, context_len[s]) are read from its block table, so a prefill chunk attends to the
// cached prefix and to itself (causally) and a decode token is simply a 1-row chunk.
struct AttentionBatch {
    int64_t n_seqs = 0;
    int64_t max_blocks_per_seq = 0;
    int64_t max_context_len = 0;
    int64_t max_query_len = 0;  // most query rows of any sequence (1 for a pure decode step)
    Tensor query_start;   // i32 [1, n_seqs + 1]
    Tensor context_len;   // i32 [1, n_seqs]
    Tensor block_tables;  // i32 [n_seqs, max_blocks_per_seq]
    // How unevenly the contexts are spread (context_spread() in models/step_plan.h): 1 when
    // even, up to 64 when one sequence is far longer than the rest. A device backend may split
    // the long contexts' work finer; results do not depend on it.
    int64_t context_spread = 1;
};

// What a linear does around its product (fused_linear). At decode a projection is a weight
// stream, and the operations a pre-norm decoder puts around it (the input RMSNorm, the residual
// add, SwiGLU) cost almost no bandwidth but a kernel launch each when run separately; the model
// states the whole operation and a device backend fuses what it can.
struct LinearFusion {
    // Non-empty: x is first replaced by rms_norm(x) * norm_weight ([1, K], eps).
    Tensor norm_weight;
    float eps = 0.0f;
    enum class Output {
        kStore,       // out = x w^T (+ bias)
        kAccumulate,  // out += x w^T (+ bias): the residual add
        // w holds I gate rows then I up rows (N = 2I); out [T, I] = silu_mul of the product.
        kSwiGlu,
    };
    Output output = Output::kStore;
};

// Where the unfused composition keeps its intermediates: normed [T, K] (when norm_weight is
// set) and product [T, N] (when output is not kStore), in the activation dtype. A backend that
// fuses may leave them untouched, so nothing may read them afterwards.
struct LinearScratch {
    Tensor normed;
    Tensor product;
};

// One fused_linear call of a chain (Backend::run_chain).
struct LinearLink {
    Tensor out;
    Tensor x;
    Tensor w;
    Tensor bias;
    LinearFusion fusion;
    LinearScratch scratch;
};

struct KvCacheShape {
    DType dtype = DType::kF32;  // the backend's activation dtype
    int64_t n_layers = 0;
    int64_t n_kv_heads = 0;
    int64_t head_dim = 0;
    int64_t block_size = 16;
    int64_t n_blocks = 0;
};

// Opaque paged K/V storage owned by a backend.
class KvCache {
public:
    virtual ~KvCache() = default;
    virtual const KvCacheShape& shape() const = 0;
    virtual int64_t bytes() const = 0;
};

// One qkv_attention call of a chain (Backend::run_chain); rope, cache and batch must outlive it.
struct AttentionLink {
    Tensor out;
    Tensor qkv;
    int64_t n_heads = 0;
    int64_t n_kv_heads = 0;
    int64_t head_dim = 0;
    Tensor q_norm;
    Tensor k_norm;
    float eps = 0.0f;
    Tensor positions;
    const RopeTable* rope = nullptr;
    KvCache* cache = nullptr;
    int64_t layer = 0;
    Tensor slots;
    const AttentionBatch* batch = nullptr;
    float scale = 1.0f;
};

// A link of Backend::run_chain: a projection or an attention block.
using ChainLink = std::variant<LinearLink, AttentionLink>;

struct BackendOptions {
    std::string kind = "cpu";  // "cpu", or "cuda" in a build whose app registered it
    int n_threads = 0;         // cpu: 0 = every hardware thread
    int device = 0;            // cuda: device ordinal
    // cuda: the activation (and KV) dtype, kBF16 or kF16; weights are converted to it at upload.
    DType activation_dtype = DType::kBF16;
};

// The thread that owns a backend's device. run() executes fn there and returns when it is done;
// nothing crosses it as an exception (fn reports through what it captures).
// Thread-safety: run() may be called from any thread; calls are serialised on the owner.
class DeviceExecutor {
public:
    virtual ~DeviceExecutor() = default;
    virtual void run(const std::function<void()>& fn) = 0;
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string_view name() const = 0;
    // The dtype of activations and of the KV cache on this backend.
    virtual DType activation_dtype() const = 0;
    // The owner thread every call must run on, or null when any single thread may drive it.
    virtual std::shared_ptr<DeviceExecutor> executor() const { return nullptr; }

    // ---- memory ---------------------------------------------------------------------------
    // Allocates a contiguous [rows, cols] tensor (contents unspecified); freed by free() or
    // with the backend. Errors: kInsufficientVram / kInternal when memory runs out.
    virtual Result<Tensor> alloc(DType dtype, int64_t rows, int64_t cols) = 0;
    virtual void free(const Tensor& tensor) = 0;
    // Copies host bytes of `src_dtype` into a new tensor. The backend may keep the source
    // dtype or convert (the CPU backend keeps bf16/f16/f32 as stored and converts on the fly).
    virtual Result<Tensor> upload_weight(std::span<const std::byte> bytes, DType src_dtype,
                                         int64_t rows, int64_t cols) = 0;
    // Host <-> backend copies; `host` holds numel elements of the tensor's dtype, packed row by
    // row. copy_to_host honours the source's row stride (a column slice copies just its
    // columns); copy_from_host needs a contiguous destination.
    virtual Status copy_from_host(const Tensor& dst, const void* host) = 0;
    virtual Status copy_to_host(void* host, const Tensor& src) = 0;
    virtual Result<std::unique_ptr<KvCache>> alloc_kv_cache(const KvCacheShape& shape) = 0;
    // Bytes held in weights and workspace tensors (not counting KV caches).
    virtual int64_t allocated_bytes() const = 0;
    // Free and total bytes of the backend's device memory, or nullopt for host memory (the KV
    // pool is then sized from ModelRunnerOptions::kv_memory_bytes alone).
    struct MemoryInfo {
        int64_t free_bytes = 0;
        int64_t total_bytes = 0;
    };
    virtual std::optional<MemoryInfo> device_memory() const { return std::nullopt; }

    // ---- operations (activations in activation_dtype(); weights as uploaded) ---------------
    // out[t, :] = table[ids[t], :]. ids: i32 [1, T]; out: [T, H]. Out-of-range ids fail.
    virtual Status embedding(const Tensor& out, const Tensor& table, const Tensor& ids) = 0;
    // out[r] = x[r] / rms(x[r]) * weight, per row of length weight.cols. out may alias x.
    virtual Status rms_norm(const Tensor& out, const Tensor& x, const Tensor& weight,
                            float eps) = 0;
    // residual += x; out = rms_norm(residual) * weight (the pre-norm decoder's add + norm).
    virtual Status add_rms_norm(const Tensor& out, const Tensor& residual, const Tensor& x,
                                const Tensor& weight, float eps) = 0;
    // out = x (+)= y elementwise over [rows, cols].
    virtual Status add(const Tensor& out, const Tensor& x, const Tensor& y) = 0;
    // out[T, N] = x[T, K] * w[N, K]^T (+ bias[1, N]). bias may be an empty Tensor. out is in the
    // activation dtype or f32 (logits).
    virtual Status linear(const Tensor& out, const Tensor& x, const Tensor& w,
                          const Tensor& bias) = 0;
    // linear with the operations around it (LinearFusion). The default is
    // compose_fused_linear (rms_norm, linear, add, silu_mul through the scratch tensors); a
    // device backend fuses it where that pays. The two agree up to where f32 results are
    // rounded: a fused accumulate or SwiGLU may round the product once instead of twice.
    virtual Status fused_linear(const Tensor& out, const Tensor& x, const Tensor& w,
                                const Tensor& bias, const LinearFusion& fusion,
                                const LinearScratch& scratch);
    // Consecutive fused_linear and qkv_attention calls, link i free to read what links before it
    // wrote (the decoder's work from one attention to the next q/k/v projection: the attention,
    // the output projection + residual, the MLP's gate_up + SwiGLU and down + residual, the next
    // layer's norm + q/k/v). The default is exactly those calls in order; a device backend may
    // run them as one launch (CUDA at 1-2 rows: one persistent kernel that streams the next
    // link's weights while the grid waits between links, the attention run inside it; at 3-64
    // rows with HELEXA_CUDA_MLP_CHAIN=1 the MLP's pair chained on the tensor-core path), with
    // the calls' numerics up to the f32 summation order.
    virtual Status run_chain(std::span<const ChainLink> links);
    // qkv_attention with a link's arguments.
    Status run_attention_link(const AttentionLink& a);
    // Per-head RMSNorm: x viewed as [T, n_heads, head_dim], normalised per head in place with
    // weight [1, head_dim] (Qwen3's q_norm / k_norm).
    virtual Status rms_norm_heads(const Tensor& x, int64_t n_heads, const Tensor& weight,
                                  float eps) = 0;
    // Rotates x viewed as [T, n_heads, head_dim] in place; positions: i32 [1, T].
    virtual Status rope(const Tensor& x, int64_t n_heads, int64_t head_dim,
                        const Tensor& positions, const RopeTable& table) = 0;
    // out[T, I] = silu(gate_up[:, :I]) * gate_up[:, I:] (SwiGLU over a fused gate/up output).
    virtual Status silu_mul(const Tensor& out, const Tensor& gate_up) = 0;
    // Writes k/v [T, n_kv_heads * head_dim] of `layer` at flat slots (block * block_size +
    // offset); slots: i32 [1, T].
    virtual Status kv_write(KvCache& cache, int64_t layer, const Tensor& k, const Tensor& v,
                            const Tensor& slots) = 0;
    // The attention block's prologue after the fused q/k/v projection, as one operation:
    // qkv [T, (n_heads + 2 n_kv_heads) head_dim] holds q | k | v per row; q and k get per-head
    // RMSNorm (when q_norm / k_norm are non-empty, Qwen3) and the rotary embedding in place,
    // then k and v are written to `layer` of the cache at `slots` (i32 [1, T]). Backends may
    // fuse it (one launch instead of five on CUDA); the default composes rms_norm_heads, rope
    // and kv_write, so the numerics are the same either way.
    virtual Status qkv_epilogue(const Tensor& qkv, int64_t n_heads, int64_t n_kv_heads,
                                int64_t head_dim, const Tensor& q_norm, const Tensor& k_norm,
                                float eps, const Tensor& positions, const RopeTable& rope,
                                KvCache& cache, int64_t layer, const Tensor& slots);
    // qkv_epilogue, then attention on qkv's q columns, as one operation (the attention block
    // between the fused q/k/v projection and the output projection). Backends may fuse it (CUDA:
    // one kernel for decode steps); the default composes the two, so the numerics are the same
    // either way, except that a fused backend may leave qkv's q and k columns as they were.
    virtual Status qkv_attention(const Tensor& out, const Tensor& qkv, int64_t n_heads,
                                 int64_t n_kv_heads, int64_t head_dim, const Tensor& q_norm,
                                 const Tensor& k_norm, float eps, const Tensor& positions,
                                 const RopeTable& rope, KvCache& cache, int64_t layer,
                                 const Tensor& slots, const AttentionBatch& batch, float scale);
    // Causal GQA attention over the paged cache (see AttentionBatch). q: [T, n_heads * head_dim]
    // (may be strided); out: [T, n_heads * head_dim]; n_heads % n_kv_heads == 0.
    virtual Status attention(const Tensor& out, const Tensor& q, const KvCache& cache,
                             int64_t layer, const AttentionBatch& batch, int64_t n_heads,
                             float scale) = 0;
    // out[r, :] = x[rows[r], :]; rows: i32 [1, R].
    virtual Status gather_rows(const Tensor& out, const Tensor& x, const Tensor& rows) = 0;
    // out[0, r] = argmax of logits row r (f32 [R, V]); ties go to the lowest index, NaN never
    // wins; a row with no finite value, or with +inf, gives -1 (the caller fails that request:
    // the logits are broken; the same rule as the sampler's greedy path).
    virtual Status argmax_rows(const Tensor& out, const Tensor& logits) = 0;
    // out[0, r] = the token the draw rule (draw_rule.h) draws from logits row r (f32 [R, V],
    // contiguous, penalised in place); draws: i32 [1, n] holding R RowDraw then their
    // PenaltyEntry array (DrawBatch::packed). -1 for a broken row (as argmax_rows), -2 for a
    // kDrawHost row (its logits are left as they were). V <= draw::kMaxVocab.
    virtual Status draw_rows(const Tensor& out, const Tensor& logits, const Tensor& draws) = 0;
    // Whether the runner should send draw_rows rows with top-p over the whole vocabulary
    // (ModelRunner::draws_whole_vocab_top_p). draw_rows draws them on every backend, but on the
    // host the host Sampler is the faster way (~0.15 ms a 152k row against the rule's ~2 ms,
    // draw_rule_bench), so host backends say no.
    virtual bool draws_whole_vocab_top_p() const { return false; }

    // Page-locked host memory for n floats that the backend owns, so a copy out of the device
    // runs at full PCIe rate (device backends); valid until the next call, which may move it.
    // Null when the backend has none (host backends: the caller's own memory serves as well).
    virtual Result<float*> page_locked_floats(int64_t n) {
        (void)n;
        return nullptr;
    }

    // ---- overlapped steps (ModelRunner::launch_argmax) ---------------------------------------
    // ids[0, i] = prev[0, map[0, i]] where map[0, i] >= 0, else left as it is (i32 rows of one
    // length for ids and map; every index below prev's length): the step's input ids that are
    // the previous step's tokens, still where that step left them. The default goes through
    // host memory.
    virtual Status feed_ids(const Tensor& ids, const Tensor& prev, const Tensor& map);
    // The same for drawn rows (ModelRunner::launch_sample): `draws` is a step's packed draws
    // (DrawBatch::packed(n_rows), i32, one row), and each row r < n_rows with map[0, r] >= 0
    // gets draw::feed_in_flight(row, entries, prev[0, map[0, r]]) (map: n_rows i32; every
    // index below prev's length). The default goes through host memory.
    virtual Status feed_draws(const Tensor& draws, int64_t n_rows, const Tensor& prev,
                              const Tensor& map);
    // A copy of src (i32, one row) into host memory the backend owns, begun now and ended by
    // finish_read_ids(slot) (slot 0 or 1: one step's tokens may be on their way while the
    // previous step's are read); the span is valid until the slot's next start. The default
    // copies at once.
    virtual Status start_read_ids(int slot, const Tensor& src);
    virtual Result<std::span<const int32_t>> finish_read_ids(int slot);

    // ---- graphs (device backends): record a fixed sequence of operations once, replay it
    // with new contents in the same tensors. Operations recorded must not allocate or copy
    // from the host; tensors they touch must outlive the graph.
    virtual bool supports_graphs() const { return false; }
    // Runs fn in recording mode and returns the graph's id.
    virtual Result<int64_t> capture_graph(const std::function<Status()>& fn) {
        (void)fn;
        return fail(ErrorCode::kInternal, std::string(name()) + " backend has no graphs");
    }
    virtual Status replay_graph(int64_t id) {
        (void)id;
        return fail(ErrorCode::kInternal, std::string(name()) + " backend has no graphs");
    }
    virtual void drop_graphs() {}

private:
    std::vector<int32_t> read_ids_[2];  // the default start_read_ids' copies
};

// fused_linear as separate operations of `backend`, materialising the intermediates in scratch
// (what the default does, and what a caller uses when it wants to read them).
Status compose_fused_linear(Backend& backend, const Tensor& out, const Tensor& x, const Tensor& w,
                            const Tensor& bias, const LinearFusion& fusion,
                            const LinearScratch& scratch);

// Creates the backend named by options.kind. Errors: kCudaUnavailable for "cuda" when no CUDA
// backend is registered (a build without it), kInvalidRequest for an unknown kind.
Result<std::unique_ptr<Backend>> make_backend(const BackendOptions& options);

// Makes `kind` available to make_backend. The engine knows only "cpu"; a library that
// implements another backend (libs/cuda) registers it from the app's start-up, so the engine
// never links CUDA. Registering a kind again replaces it. Thread-safe.
using BackendFactory = std::function<Result<std::unique_ptr<Backend>>(const BackendOptions&)>;
void register_backend(const std::string& kind, BackendFactory factory);

}  // namespace helexa::engine
