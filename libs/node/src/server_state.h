// Private: the state every neuron handler shares, and the helpers the handler files use.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>

#include "helexa/common/logging.h"
#include "helexa/net/channel.h"
#include "helexa/net/server.h"
#include "helexa/net/task_group.h"
#include "helexa/node/discovery.h"
#include "helexa/node/hub_client.h"
#include "helexa/node/neuron_server.h"
#include "helexa/node/preflight.h"
#include "helexa/node/registry.h"

namespace helexa::node {

namespace asio = boost::asio;

struct NeuronServer::State {
    explicit State(const NeuronConfig& cfg) : config(cfg), registry(cfg.admission) {}

    NeuronConfig config;
    std::shared_ptr<engine::Engine> engine;
    std::unique_ptr<GpuMonitor> gpu;
    GpuDiscovery discovery;
    std::optional<std::string> cuda_reason;
    std::string hostname;
    std::string os;
    ModelRegistry registry;
    ActivationTracker activation;
    std::shared_ptr<spdlog::logger> log = log::get("neuron::api");

    std::unique_ptr<net::IoPool> io;
    // The router's handlers hold this State: stop() destroys the server to break the cycle.
    std::unique_ptr<net::Server> server;
    uint16_t port = 0;  // bound port, kept after the server is gone
    std::unique_ptr<HubClient> hub;
    std::unique_ptr<net::TaskGroup> tasks;
    // Blocking engine work (loads, unloads, tokenization) never runs on an I/O thread.
    std::unique_ptr<asio::thread_pool> load_pool;  // 1 thread: loads are sequential anyway
    std::unique_ptr<asio::thread_pool> cpu_pool;   // tokenization, template rendering

    std::mutex stop_mutex;
    std::condition_variable stop_cv;
    bool stop_requested = false;
    bool stopped = false;   // a shutdown has begun
    bool finished = false;  // ... and completed
    std::atomic<int64_t> left_loaded{0};
};

using State = NeuronServer::State;

template <typename T>
asio::awaitable<T> receive_result(std::shared_ptr<net::Channel<T>> ch) {
    auto value = co_await ch->receive();
    if (!value) {
        co_return T(tl::unexpected(Error(ErrorCode::kCancelled, "cancelled")));
    }
    co_return std::move(*value);
}

// Runs `fn` (returning a Result) on `pool`; the returned awaitable yields its result without
// blocking the awaiting thread.
// NOTE: deliberately not a coroutine itself. GCC 12 copies closure-type coroutine parameters
// bitwise, which corrupts captured std::strings (ASan: free of a non-malloc'ed address); the
// closure therefore only ever crosses a plain function call.
template <typename F>
asio::awaitable<std::invoke_result_t<F>> run_blocking(asio::thread_pool& pool,
                                                       asio::any_io_executor executor, F fn) {
    using T = std::invoke_result_t<F>;
    auto ch = std::make_shared<net::Channel<T>>(std::move(executor));
    asio::post(pool, [ch, fn = std::move(fn)]() mutable { ch->push(fn()); });
    return receive_result<T>(std::move(ch));
}

struct LoadOutcome {
    bool already_loaded = false;
    std::string model_id;  // canonical
    std::optional<PreflightRejection> preflight;
    std::optional<Error> error;
    bool ok() const { return !preflight && !error; }
};

// The whole load path: harness and CUDA checks, id parsing, registry, source resolution and
// preflight (local cache first, else the hub), downloads, engine load.
asio::awaitable<LoadOutcome> load_model(std::shared_ptr<State> state, wire::ModelSpec spec);

// The canonical registry key for a requested model name (falls back to the name itself).
std::string registry_key(const State& state, const std::string& requested);

// The prompt cap a model enforces: its advertised input limit, clamped by max_prompt_tokens.
int64_t effective_input_limit(const State& state, const engine::ModelDescriptor& d);

void add_management_routes(net::Router& router, std::shared_ptr<State> state);
void add_inference_routes(net::Router& router, std::shared_ptr<State> state);

// The same render + tokenize path inference uses (chat form of /tokenize shares it).
struct PromptTokens {
    std::vector<int32_t> tokens;
    bool starts_in_reasoning = false;
};
asio::awaitable<Result<PromptTokens>> build_chat_prompt(std::shared_ptr<State> state,
                                                        std::shared_ptr<engine::LoadedModel> model,
                                                        engine::ChatRenderInput input,
                                                        bool has_tools);

}  // namespace helexa::node
