#include "helexa/node/engine_options.h"

#include <algorithm>

#include "helexa/node/model_source.h"

namespace helexa::node {

engine::LocalEngineOptions local_engine_options(const NeuronConfig& config) {
    engine::LocalEngineOptions options;
    options.scheduler.prefill_chunk_tokens = config.knobs.prefill_chunk_tokens;
    options.scheduler.sampling_threads = static_cast<int>(config.sampling_threads);
    options.scheduler.overlap_decode = config.knobs.overlap_decode;
    options.scheduler.prefix_cache.enabled = config.prefix_cache.enabled;
    if (config.prefix_cache.max_entries) {
        options.scheduler.prefix_cache.max_entries = *config.prefix_cache.max_entries;
    }
    if (config.prefix_cache.budget_mb) {
        // The prefix cache lives in the KV pool; its budget sizes the pool.
        options.runner.kv_memory_bytes =
            std::max<int64_t>(options.runner.kv_memory_bytes, *config.prefix_cache.budget_mb << 20);
    }
    options.scheduler.min_free_device_bytes = std::max<int64_t>(0, config.knobs.min_free_vram_mb)
                                              << 20;
    if (config.knobs.debug_poison && !config.knobs.debug_poison->empty()) {
        // The engine knows models by their registry key: "Qwen/X" and "huggingface:Qwen/X" both
        // name the model loaded as "Qwen/X".
        const std::string& requested = *config.knobs.debug_poison;
        auto id = parse_model_source_id(requested);
        options.debug_poison_model =
            id ? canonical_model_id(*id, config.default_source) : requested;
    }
    options.debug_device_lost = config.knobs.debug_device_lost;
    return options;
}

}  // namespace helexa::node
