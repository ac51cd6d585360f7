// neuron.toml: the per-host daemon's configuration, compatible with the Rust original's file
// (`port`, `listen`, `[[harnesses]]`, `[harness.candle]` with its sources / admission /
// prefix_cache / context_limit blocks, `[[default_models]]`) plus the NEURON_* knobs of the spec
// (features §8.3), which map onto top-level keys through ConfigReader's environment override
// (prefill_chunk_tokens <- NEURON_PREFILL_CHUNK_TOKENS, ...). neuron.example.toml documents each.
//
// Use: main builds a ConfigReader (prefix "NEURON_") from /etc/neuron/neuron.toml (a missing file
// is fine) and calls load_neuron_config; ConfigError is caught there (exit 2).
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "helexa/common/config.h"
#include "helexa/wire/neuron_protocol.h"

namespace helexa::node {

inline constexpr uint16_t kDefaultPort = 13131;
inline constexpr int64_t kMaxSamplingThreads = 256;  // `sampling_threads` beyond this is a typo
inline constexpr std::string_view kHuggingFaceScheme = "huggingface";
inline constexpr std::string_view kHuggingFaceEndpoint = "https://huggingface.co";

// One `[harness.candle.sources.<scheme>]` entry, with its secret and cache resolved at start-up.
struct SourceConfig {
    std::string scheme;
    std::string endpoint;                 // HF-compatible hub base URL
    std::optional<std::string> auth_env;  // name of the variable holding the token
    std::optional<std::string> token;     // its value, read at start-up (never logged)
    std::string cache_dir;                // resolved HF-layout cache root ("<dir>/models--o--n")
};

// `[harness.candle.admission]`: per-model bounded scheduler (features §5.11). The original
// served one request at a time (max_in_flight 1, 8 queued, 2 per principal); this engine batches
// every running request into each step (continuous batching), so by default up to 64 run at once
// (the decode graph buckets' range), 256 wait, and one principal (an agent fanning out) may hold
// half the running slots. The keys are the original's; a file that sets them keeps its values.
struct AdmissionConfig {
    int64_t max_in_flight = 64;
    int64_t max_queue_depth = 256;
    int64_t max_wait_secs = 30;
    int64_t max_per_principal = 32;  // 0 disables the per-principal cap
};

// `[harness.candle.prefix_cache]` (D15); handed to the engine by main.
struct PrefixCacheConfig {
    bool enabled = true;
    std::optional<int64_t> budget_mb;
    std::optional<int64_t> max_entries;
};

// `[harness.candle.context_limit]` (D16); handed to the engine by main.
struct ContextLimitConfig {
    std::optional<double> target_prefill_latency_secs;
    std::optional<double> bootstrap_prefill_tok_per_sec;
    std::optional<int64_t> activation_headroom_mb;
    std::optional<int64_t> min_free_floor_mb;
    std::optional<int64_t> output_reserve_tokens;
};

// NEURON_* knobs (features §8.3). Only the ones the node itself acts on change behaviour here;
// the rest are carried for the engine.
struct EngineKnobs {
    int64_t prefill_chunk_tokens = 512;
    std::optional<int64_t> max_prompt_tokens;  // optional clamp, only when set
    int64_t min_free_vram_mb = 1500;
    bool use_chat_template = true;
    bool mrope = true;
    bool gdn_chunked = true;
    int64_t tp_step_timeout_s = 120;
    std::optional<std::string> debug_poison;
    bool debug_device_lost = false;  // with debug_poison: the reload fails as a lost device
    // helexa's: each greedy decode step launched before the last one's tokens are read
    // (engine::SchedulerOptions::overlap_decode).
    bool overlap_decode = true;
};

struct NeuronConfig {
    ListenAddress listen{"0.0.0.0", kDefaultPort};
    std::vector<std::string> harnesses{"candle"};
    std::string default_source{kHuggingFaceScheme};
    std::map<std::string, SourceConfig, std::less<>> sources;  // always has the default source
    AdmissionConfig admission;
    PrefixCacheConfig prefix_cache;
    ContextLimitConfig context_limit;
    EngineKnobs knobs;
    std::vector<wire::ModelSpec> default_models;
    int64_t unload_timeout_secs = 20;   // per model, at shutdown
    int64_t drain_timeout_secs = 30;    // in-flight requests at shutdown
    int64_t io_threads = 2;
    // Host threads sampling a step's rows (0: min(8, hardware threads); at most
    // kMaxSamplingThreads); a step of 32 sampled streams is ~32 rows x 0.05-0.25 ms of host work
    // (docs/perf/host-sampler.md).
    int64_t sampling_threads = 0;
    std::string nvml_library = "libnvidia-ml.so.1";
};

// Reads every key (unknown ones stay unread so main can warn about them). `env` supplies
// HF_HUB_CACHE, HF_HOME, HOME and the sources' auth_env variables. Throws ConfigError.
NeuronConfig load_neuron_config(const ConfigReader& reader, const Environment& env);

// The HF hub cache for the huggingface scheme when no cache_dir is configured:
// hf_cache -> HF_HUB_CACHE -> $HF_HOME/hub -> $HOME/.cache/huggingface/hub.
std::string default_hf_cache(const std::optional<std::string>& hf_cache, const Environment& env);

}  // namespace helexa::node
