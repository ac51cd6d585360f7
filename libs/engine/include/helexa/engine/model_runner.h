// Loading a model for the step engine: parse config.json (and generation_config.json), map the
// safetensors, upload the weights to a backend, size the paged KV pool, and return a runner that
// implements ModelRunner::step (step.h) for the architecture named by model_type.
// Every activation has a stable name so a debug hook can dump it and diff it layer by layer
// against transformers:
//   embed | layers.<i>.{input_norm,q,k,v,attn_out,attn_proj,post_norm,mlp_out,out} |
//   final_norm (rows needing logits) | logits
// (q and k after q/k norm and RoPE; `out` is the residual stream after layer i, as
// transformers' hidden_states[i + 1].)
// Thread-safety: like every ModelRunner, driven by one thread; config()/limits are immutable.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "helexa/common/result.h"
#include "helexa/engine/backend.h"
#include "helexa/engine/model_config.h"
#include "helexa/engine/sampling_config.h"
#include "helexa/engine/step.h"

namespace helexa::engine {

struct ModelRunnerOptions {
    BackendOptions backend;
    int64_t block_size = 16;
    // KV pool size: n_blocks when > 0, else as many blocks as fit kv_memory_bytes, but no more
    // than max_full_context_seqs whole-context sequences need (0 = no such cap).
    int64_t n_blocks = 0;
    int64_t kv_memory_bytes = int64_t{512} << 20;
    int64_t max_full_context_seqs = 8;
    // Device backends (vLLM's gpu_memory_utilization): the KV pool takes what is left of
    // total * memory_utilization after weights and a step workspace reserve, instead of
    // kv_memory_bytes (still capped by max_full_context_seqs). 0 = use kv_memory_bytes.
    double memory_utilization = 0.0;
    int64_t workspace_reserve_bytes = int64_t{1} << 30;
    // Backends with decode graphs: at load, one decode step per graph bucket of up to this
    // many sequences runs on padding sequences, so the matmul tuning of each batch size (60-120
    // ms of cuBLASLt candidate timing for an 8B model) and its graph recording happen before
    // the first request rather than stalling every running stream the first time that many
    // sequences share a step. Larger batches are tuned when they first run. 0 = no warm-up.
    int64_t warm_up_max_seqs = 64;
};

// Called with each named activation (host f32 copy, [rows, cols] row-major) when set.
using ActivationHook =
    std::function<void(std::string_view name, std::span<const float> data, int64_t rows,
                       int64_t cols)>;

class CausalLmRunner : public ModelRunner {
public:
    virtual const ModelConfig& config() const = 0;
    // generation_config.json values, eos ids merged with config.json's.
    virtual const GenerationDefaults& generation_defaults() const = 0;
    // Longest sequence this runner can hold: min(max_position_embeddings, KV pool tokens).
    virtual int64_t max_context_tokens() const = 0;
    virtual int64_t weight_bytes() const = 0;
    virtual int64_t kv_cache_bytes() const = 0;
    virtual std::string_view backend_name() const = 0;
    // Installs (or clears, with an empty function) the activation dump hook. Slows steps down.
    virtual void set_activation_hook(ActivationHook hook) = 0;
    // Free and total device memory of the runner's backend (Backend::device_memory), nullopt on
    // host memory. Call it from the thread that drives step() (the scheduler asks before a
    // request starts, for NEURON_MIN_FREE_VRAM_MB).
    virtual std::optional<Backend::MemoryInfo> device_memory() const { return std::nullopt; }
};

// Errors: kInvalidRequest (unsupported model_type naming the supported set, bad config, missing
// or mis-shaped tensor), kIo (files), kCudaUnavailable (backend), kInsufficientVram (KV pool).
Result<std::unique_ptr<CausalLmRunner>> load_model_runner(
    const std::filesystem::path& snapshot_dir, const ModelRunnerOptions& options);

// KV bytes one token costs for `config` with K and V of `kv_dtype`, every layer.
int64_t kv_bytes_per_token(const ModelConfig& config, DType kv_dtype = DType::kF32);

}  // namespace helexa::engine
