#include "neuron_daemon.h"

#include <spdlog/spdlog.h>

#include "helexa/common/logging.h"

#include "../common/shutdown_signal.h"
#include "process_restart.h"
#include "helexa/common/config.h"
#include "helexa/engine/local_engine.h"
#include "helexa/node/config.h"
#include "helexa/node/engine_options.h"
#include "helexa/node/neuron_server.h"
#ifdef HELEXA_WITH_CUDA
#include "helexa/cuda/cuda_backend.h"
#endif

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#include <fmt/ranges.h>

namespace helexa::apps {

namespace {

// The engine's knobs from neuron.toml (`[harness.candle.prefix_cache]`, NEURON_*), including
// NEURON_MIN_FREE_VRAM_MB and NEURON_DEBUG_POISON (docs/design/fault-recovery.md).
// NEURON_BACKEND = auto (default: cuda when this build has it and a device is visible, else
// cpu) | cuda | cpu. On cuda the KV pool takes NEURON_GPU_MEMORY_UTILIZATION (default 0.9) of the
// card, minus weights and a step workspace (vLLM's gpu_memory_utilization).
std::string choose_backend() {
    const char* env = std::getenv("NEURON_BACKEND");
    const std::string want = env != nullptr ? env : "auto";
    if (want != "auto" && want != "cuda" && want != "cpu") {
        throw ConfigError("NEURON_BACKEND: '" + want + "' is not one of auto, cuda, cpu");
    }
#ifdef HELEXA_WITH_CUDA
    cuda::register_cuda_backend();
    if (want == "cpu" || want == "cuda") {
        return want;
    }
    return cuda::list_devices().empty() ? "cpu" : "cuda";
#else
    if (want == "cuda") {
        log::get("neuron")->warn("NEURON_BACKEND=cuda: this build has no CUDA backend; using cpu");
    }
    return "cpu";
#endif
}

engine::LocalEngineOptions engine_options(const node::NeuronConfig& config) {
    engine::LocalEngineOptions options = node::local_engine_options(config);
    options.runner.backend.kind = choose_backend();
    if (options.runner.backend.kind == "cuda") {
        options.runner.memory_utilization = 0.9;
        if (const char* util = std::getenv("NEURON_GPU_MEMORY_UTILIZATION"); util != nullptr) {
            char* end = nullptr;
            const double v = std::strtod(util, &end);
            if (end == util || *end != '\0' || !(v > 0.0 && v <= 1.0)) {
                throw ConfigError("NEURON_GPU_MEMORY_UTILIZATION: '" + std::string(util) +
                                  "' is not a number in (0, 1]");
            }
            options.runner.memory_utilization = v;
        }
        options.runner.max_full_context_seqs = 0;  // the fraction sizes the pool
    }
    log::get("neuron")->info("engine backend: {}", options.runner.backend.kind);
    if (options.debug_poison_model) {
        log::get("neuron")->warn("NEURON_DEBUG_POISON: the first step of {} will fail as a device "
                                 "fault, once", *options.debug_poison_model);
    }
    return options;
}

// After a restart (process_restart.h): the handed-over models join the default models (those
// not configured already), and the debug fault rehearsal stays off so it cannot loop.
void adopt_restart(node::NeuronConfig& config) {
    const int restarts = restart_count();
    auto restored = take_restored_models();
    if (restarts == 0 && restored.empty()) {
        return;
    }
    if (config.knobs.debug_poison || config.knobs.debug_device_lost) {
        config.knobs.debug_poison.reset();
        config.knobs.debug_device_lost = false;
        log::get("neuron")->warn("restart {}: NEURON_DEBUG_POISON / NEURON_DEBUG_DEVICE_LOST "
                                 "fire once per neuron lifetime; off now", restarts);
    }
    int64_t added = 0;
    for (auto& spec : restored) {
        const bool configured =
            std::any_of(config.default_models.begin(), config.default_models.end(),
                        [&](const wire::ModelSpec& m) { return m.model_id == spec.model_id; });
        if (!configured) {
            config.default_models.push_back(std::move(spec));
            ++added;
        }
    }
    log::get("neuron")->warn("restart {} after a device loss: restoring {} model(s) beside the "
                             "{} configured", restarts, added,
                             config.default_models.size() - static_cast<size_t>(added));
}

}  // namespace

int run_neuron(const std::string& config_path, bool config_given,
               const std::vector<std::string>& argv) {
    ConfigReader reader = config_given ? ConfigReader::from_file(config_path, "NEURON_")
                                       : ConfigReader::from_optional_file(config_path, "NEURON_");
    node::NeuronConfig config = node::load_neuron_config(reader, process_environment());
    for (const auto& key : reader.unknown_keys()) {
        log::get("neuron")->warn("{}: unknown key '{}' ignored", config_path, key);
    }
    adopt_restart(config);

    // A device that does not come back after a fault (engine on_device_lost, on its recovery
    // thread) wakes the main thread, which restarts the process.
    std::atomic<bool> device_lost{false};
    engine::LocalEngineOptions options = engine_options(config);
    options.on_device_lost = [&device_lost](std::vector<std::string> ids) {
        log::get("neuron")->error("the device of {} did not come back after a fault; restarting "
                                  "the neuron to recover it", fmt::join(ids, ", "));
        device_lost.store(true);
    };
    auto engine = std::make_shared<engine::LocalEngine>(std::move(options));
    // main blocked SIGINT/SIGTERM in every thread and waits for them here (one way for both
    // daemons), so the server does not install its own handler.
    node::NeuronServer server(node::NeuronServerDeps{.handle_signals = false});
    if (auto started = server.start(config, engine); !started) {
        log::get("neuron")->error("{}", started.error().full_message());
        return started.error().code() == ErrorCode::kConfig ? config_exit_code() : 1;
    }
    const int sig = wait_for_shutdown_signal_or(device_lost);
    if (sig == 0) {
        const auto models = server.model_specs();
        log::get("neuron")->warn("restarting: {} model(s) to restore", models.size());
        server.stop();
        const std::string why = restart_process(argv, models);
        log::get("neuron")->error("restart failed: {}", why);
        return 1;
    }
    log::get("neuron")->info("signal {}: shutting down", sig);
    server.stop();
    if (server.models_left_loaded() > 0) {
        log::get("neuron")->warn("{} model(s) could not be unloaded before exit",
                                 server.models_left_loaded());
    }
    return 0;
}

}  // namespace helexa::apps
