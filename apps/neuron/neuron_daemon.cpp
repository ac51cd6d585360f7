#include "neuron_daemon.h"

#include <spdlog/spdlog.h>

#include "helexa/common/logging.h"

#include "../common/shutdown_signal.h"
#include "helexa/common/config.h"
#include "helexa/engine/local_engine.h"
#include "helexa/node/config.h"
#include "helexa/node/neuron_server.h"

namespace helexa::apps {

namespace {

// The engine's knobs from neuron.toml (`[harness.candle.prefix_cache]`, NEURON_*).
engine::LocalEngineOptions engine_options(const node::NeuronConfig& config) {
    engine::LocalEngineOptions options;
    options.runner.backend.kind = "cpu";
    options.scheduler.prefill_chunk_tokens = config.knobs.prefill_chunk_tokens;
    options.scheduler.prefix_cache.enabled = config.prefix_cache.enabled;
    if (config.prefix_cache.max_entries) {
        options.scheduler.prefix_cache.max_entries = *config.prefix_cache.max_entries;
    }
    if (config.prefix_cache.budget_mb) {
        // The prefix cache lives in the KV pool; its budget sizes the pool.
        options.runner.kv_memory_bytes =
            std::max<int64_t>(options.runner.kv_memory_bytes, *config.prefix_cache.budget_mb << 20);
    }
    return options;
}

}  // namespace

int run_neuron(const std::string& config_path, bool config_given) {
    ConfigReader reader = config_given ? ConfigReader::from_file(config_path, "NEURON_")
                                       : ConfigReader::from_optional_file(config_path, "NEURON_");
    node::NeuronConfig config = node::load_neuron_config(reader, process_environment());
    for (const auto& key : reader.unknown_keys()) {
        log::get("neuron")->warn("{}: unknown key '{}' ignored", config_path, key);
    }

    auto engine = std::make_shared<engine::LocalEngine>(engine_options(config));
    // main blocked SIGINT/SIGTERM in every thread and waits for them here (one way for both
    // daemons), so the server does not install its own handler.
    node::NeuronServer server(node::NeuronServerDeps{.handle_signals = false});
    if (auto started = server.start(config, engine); !started) {
        log::get("neuron")->error("{}", started.error().full_message());
        return started.error().code() == ErrorCode::kConfig ? config_exit_code() : 1;
    }
    int sig = wait_for_shutdown_signal();
    log::get("neuron")->info("signal {}: shutting down", sig);
    server.stop();
    if (server.models_left_loaded() > 0) {
        log::get("neuron")->warn("{} model(s) could not be unloaded before exit",
                                 server.models_left_loaded());
    }
    return 0;
}

}  // namespace helexa::apps
