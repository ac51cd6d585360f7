// NeuronServer: the neuron daemon — binds the HTTP API first, then pre-warms the default models
// sequentially in the background (reported through /health.activation), serves
//   GET  /discovery /health /models /models/{id*}/endpoint /version
//   POST /models/load /models/unload /tokenize /detokenize
//   POST /v1/chat/completions /v1/completions /v1/responses
// over an engine::Engine, and shuts down gracefully: stop accepting, drain in-flight requests,
// unload every model with a per-model timeout (logging what stays loaded).
//
// Use (apps/neuron/main.cpp):
//   auto cfg = node::load_neuron_config(reader, env);
//   node::NeuronServer server;
//   if (auto st = server.start(cfg, engine); !st) { log; return 1; }
//   server.wait();            // returns after SIGTERM/SIGINT (or stop()) and the shutdown
//   return 0;
// A null engine is allowed: the management API answers, loads and inference get 503.
// Thread-safety: start/stop/wait/port may be called from any non-I/O thread; stop is idempotent.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "helexa/common/result.h"
#include "helexa/engine/serving.h"
#include "helexa/net/client.h"
#include "helexa/node/config.h"
#include "helexa/node/discovery.h"

namespace helexa::node {

// Seams for tests (and for main to override): the GPU monitor and the hub client's options.
struct NeuronServerDeps {
    std::unique_ptr<GpuMonitor> gpu;  // null -> NVML via dlopen (config.nvml_library)
    net::ClientOptions hub_client;
    bool handle_signals = true;  // wait() also returns on SIGTERM/SIGINT
};

class NeuronServer {
public:
    explicit NeuronServer(NeuronServerDeps deps = {});
    ~NeuronServer();  // stop() if still running
    NeuronServer(const NeuronServer&) = delete;
    NeuronServer& operator=(const NeuronServer&) = delete;

    // Discovers the hardware, binds the listener, starts the I/O threads and the background
    // activation. kIo / kConfig when the bind fails.
    Status start(const NeuronConfig& config, std::shared_ptr<engine::Engine> engine);

    // The bound port (0 before start).
    uint16_t port() const;

    // Graceful shutdown (drain, unload with timeouts). Blocks until done; idempotent.
    void stop();

    // Blocks until a shutdown signal (when handle_signals) or stop(), then until the shutdown
    // has finished.
    void wait();

    // Number of models that could not be unloaded within the timeout at the last shutdown.
    int64_t models_left_loaded() const;

    // The specs of every model loading or loaded now (recovering included): what a restarted
    // process must load to serve the same models.
    std::vector<wire::ModelSpec> model_specs() const;

    struct State;

private:
    NeuronServerDeps deps_;
    std::shared_ptr<State> state_;
};

}  // namespace helexa::node
