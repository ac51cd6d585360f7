#include "helexa/node/neuron_server.h"

#include <future>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <fmt/format.h>

#include "server_state.h"

namespace helexa::node {

namespace {

// Default models load one after another (VRAM contention makes parallel loads risky); a failure
// is recorded and the next entry is still tried.
asio::awaitable<void> activate(std::shared_ptr<State> state) {
    for (const auto& spec : state->config.default_models) {
        state->activation.started(spec.model_id);
        auto outcome = co_await load_model(state, spec);
        if (outcome.ok()) {
            state->activation.completed(spec.model_id);
        } else if (outcome.preflight) {
            state->activation.failed(spec.model_id,
                                     fmt::format("reason={} detail={}",
                                                 outcome.preflight->error.kind,
                                                 outcome.preflight->detail));
        } else {
            state->activation.failed(spec.model_id, outcome.error->full_message());
        }
    }
    state->log->info("activation finished: {} loaded, {} failed",
                     state->activation.snapshot().completed.size(),
                     state->activation.snapshot().failed.size());
}

// Unloads every model, each bounded by the timeout; returns how many stayed loaded.
int64_t unload_all(State& state) {
    int64_t left = 0;
    for (const auto& h : state.registry.list()) {
        auto removed = state.registry.remove_loaded(h.id);
        if (!removed || !state.engine) {
            continue;
        }
        auto done = std::make_shared<std::promise<Status>>();
        auto future = done->get_future();
        // A detached thread: a wedged unload (stuck device) must not hold the exit hostage.
        std::thread([engine = state.engine, id = h.id, done] {
            done->set_value(engine->unload(id));
        }).detach();
        if (future.wait_for(std::chrono::seconds(state.config.unload_timeout_secs)) !=
            std::future_status::ready) {
            state.log->error("unload of {} did not finish within {} s", h.id,
                             state.config.unload_timeout_secs);
            ++left;
            continue;
        }
        if (auto st = future.get(); !st) {
            state.log->error("unload of {} failed: {}", h.id, st.error().full_message());
            ++left;
        } else {
            state.log->info("unloaded {}", h.id);
        }
    }
    if (left > 0) {
        state.log->error("leaving {} model(s) loaded", left);
    }
    return left;
}

}  // namespace

NeuronServer::NeuronServer(NeuronServerDeps deps) : deps_(std::move(deps)) {}

NeuronServer::~NeuronServer() { stop(); }

uint16_t NeuronServer::port() const {
    return state_ ? state_->port : 0;
}

int64_t NeuronServer::models_left_loaded() const {
    return state_ ? state_->left_loaded.load() : 0;
}

std::vector<wire::ModelSpec> NeuronServer::model_specs() const {
    std::vector<wire::ModelSpec> out;
    if (state_) {
        for (const auto& h : state_->registry.list()) {
            out.push_back(h.spec);
        }
    }
    return out;
}

Status NeuronServer::start(const NeuronConfig& config, std::shared_ptr<engine::Engine> engine) {
    if (state_) {
        return fail(ErrorCode::kInternal, "neuron server already started");
    }
    auto state = std::make_shared<State>(config);
    state->engine = std::move(engine);
    state->gpu = deps_.gpu ? std::move(deps_.gpu) : make_nvml_monitor(config.nvml_library);
    state->discovery = state->gpu->discover();
    state->cuda_reason = cuda_unavailable_reason(state->discovery);
    state->hostname = host_name();
    state->os = os_description();
    switch (state->discovery.status) {
        case GpuStatus::kAbsent:
            break;  // CPU-only host: nothing to say
        case GpuStatus::kOk:
            state->log->info("discovered {} GPU(s), driver {}, CUDA {}",
                             state->discovery.devices.size(),
                             state->discovery.driver_version.value_or("?"),
                             state->discovery.cuda_version.value_or("?"));
            break;
        case GpuStatus::kVersionMismatch:
            state->log->error("CUDA UNAVAILABLE: {}", state->cuda_reason.value_or(""));
            break;
        case GpuStatus::kFailed:
            state->log->warn("GPU discovery failed: {}", state->discovery.error);
            break;
    }

    state->io = std::make_unique<net::IoPool>(static_cast<int>(config.io_threads));
    state->load_pool = std::make_unique<asio::thread_pool>(1);
    state->cpu_pool = std::make_unique<asio::thread_pool>(2);
    state->hub = std::make_unique<HubClient>(state->io->context().get_executor(), deps_.hub_client);
    state->tasks = std::make_unique<net::TaskGroup>(state->io->context().get_executor());

    net::Router router;
    add_management_routes(router, state);
    add_inference_routes(router, state);
    net::ServerOptions options;
    options.listen = config.listen.to_string();
    options.drain_timeout = std::chrono::seconds(config.drain_timeout_secs);
    options.server_name = "neuron";
    options.log_component = "neuron::http";
    // Long generations stream for minutes; only a client that stops reading is cut off.
    options.write_timeout = std::chrono::seconds(120);
    state->server = std::make_unique<net::Server>(*state->io, options, std::move(router));
    if (auto st = state->server->start(); !st) {
        state->server.reset();  // the handlers hold `state`
        state->load_pool->join();
        state->cpu_pool->join();
        return st;
    }
    state->port = state->server->port();
    state->io->start();
    state->log->info("neuron listening on {}", state->server->local_address());

    // The listener is up: now pre-warm the default models in the background.
    std::vector<std::string> ids;
    for (const auto& m : config.default_models) {
        ids.push_back(m.model_id);
    }
    state->activation.begin(ids);
    if (!ids.empty()) {
        if (state->cuda_reason) {
            for (const auto& id : ids) {
                state->activation.failed(id, *state->cuda_reason);
            }
            state->log->error("skipping {} default model load(s): CUDA is unavailable",
                              ids.size());
        } else {
            state->tasks->spawn(activate(state));
        }
    }
    if (deps_.handle_signals) {
        asio::co_spawn(
            state->io->context(),
            [weak = std::weak_ptr<State>(state)]() -> asio::awaitable<void> {
                int sig = co_await net::wait_for_shutdown_signal();
                if (auto s = weak.lock()) {
                    s->log->info("signal {} received: shutting down", sig);
                    std::lock_guard lock(s->stop_mutex);
                    s->stop_requested = true;
                    s->stop_cv.notify_all();
                }
            },
            asio::detached);
    }
    state_ = std::move(state);
    return ok();
}

void NeuronServer::stop() {
    auto state = state_;
    if (!state) {
        return;
    }
    {
        std::lock_guard lock(state->stop_mutex);
        if (state->stopped) {
            return;
        }
        state->stopped = true;  // a concurrent stop() returns at once; wait() waits below
        state->stop_requested = true;
    }
    state->log->info("shutting down: draining in-flight requests");
    state->tasks->cancel_all();
    state->server->stop();  // stop accepting, drain, cancel the rest (bounded)
    state->server.reset();  // while the I/O threads still run; frees the handlers' State refs
    {
        auto tasks = state->tasks.get();
        auto drained = std::make_shared<std::promise<void>>();
        auto f = drained->get_future();
        asio::co_spawn(
            state->io->context(),
            [tasks, drained]() -> asio::awaitable<void> {
                (void)co_await tasks->wait(std::chrono::seconds(2));
                drained->set_value();
            },
            asio::detached);
        f.wait_for(std::chrono::seconds(3));
    }
    state->left_loaded = unload_all(*state);
    state->io->stop();
    state->io->join();
    state->load_pool->stop();
    state->cpu_pool->stop();
    state->load_pool->join();
    state->cpu_pool->join();
    state->log->info("neuron stopped");
    std::lock_guard lock(state->stop_mutex);
    state->finished = true;
    state->stop_cv.notify_all();
}

void NeuronServer::wait() {
    auto state = state_;
    if (!state) {
        return;
    }
    {
        std::unique_lock lock(state->stop_mutex);
        state->stop_cv.wait(lock, [&] { return state->stop_requested; });
    }
    stop();
    // If another thread is running the shutdown, wait for it to finish.
    std::unique_lock lock(state->stop_mutex);
    state->stop_cv.wait(lock, [&] { return state->finished; });
}

}  // namespace helexa::node
