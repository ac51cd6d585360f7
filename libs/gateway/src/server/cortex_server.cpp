#include "helexa/gateway/server.h"

#include <future>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_future.hpp>
#include <fmt/format.h>

#include "helexa/gateway/ledger.h"
#include "internal.h"

namespace helexa::gateway {

struct CortexServer::Impl {
    std::unique_ptr<net::IoPool> io;
    std::unique_ptr<detail::GatewayState> state;
    std::unique_ptr<net::TaskGroup> tasks;
    std::unique_ptr<net::Server> api;
    std::unique_ptr<net::Server> metrics;
    bool running = false;
};

CortexServer::CortexServer() : impl_(std::make_unique<Impl>()) {}

CortexServer::~CortexServer() {
    stop();
}

Status CortexServer::start(const CortexConfig& config) {
    CortexOptions options;
    options.config = config;
    return start(std::move(options));
}

Status CortexServer::start(CortexOptions options) {
    if (impl_->running) {
        return fail(ErrorCode::kInternal, "cortex server already started");
    }
    Catalogue catalogue;
    if (options.catalogue) {
        catalogue = std::move(*options.catalogue);
    } else {
        bool missing = false;
        auto loaded = load_catalogue(options.config.models_config, &missing);
        if (!loaded) {
            return tl::unexpected(std::move(loaded).error());
        }
        catalogue = std::move(*loaded);
        if (missing) {
            log::get("cortex::gateway")
                ->warn("model catalogue {} not found; serving only what neurons report",
                       options.config.models_config);
        }
    }
    auto clock = options.clock ? options.clock : std::make_shared<SystemClock>();
    std::shared_ptr<EntitlementProvider> provider = options.provider;
    if (!provider) {
        std::unique_ptr<Ledger> ledger;
        if (!options.config.entitlements.keys.empty()) {
            auto opened = SqliteLedger::open_in(options.config.gateway.state_dir);
            if (!opened) {
                return tl::unexpected(std::move(opened).error());
            }
            ledger = std::move(*opened);
        }
        auto local = LocalEntitlementProvider::create(options.config.entitlements,
                                                      std::move(ledger), clock);
        if (!local) {
            return tl::unexpected(std::move(local).error());
        }
        provider = std::shared_ptr<EntitlementProvider>(std::move(*local));
    }

    impl_->io = std::make_unique<net::IoPool>(std::max(1, options.io_threads));
    auto& io = impl_->io->context();
    net::ClientOptions client_options;
    client_options.connect_timeout = std::chrono::seconds(3);
    client_options.read_timeout = std::chrono::seconds(300);
    client_options.user_agent = "cortex";
    impl_->state = std::make_unique<detail::GatewayState>(options.config, std::move(catalogue),
                                                          io.get_executor(), client_options);
    auto& state = *impl_->state;
    state.provider = provider;
    state.created = clock->now_unix_secs();
    impl_->tasks = std::make_unique<net::TaskGroup>(io.get_executor());
    state.tasks = impl_->tasks.get();

    net::Router api_router;
    detail::register_middleware(api_router, state);
    detail::register_routes(api_router, state);
    net::ServerOptions api_options;
    api_options.listen = state.config.gateway.listen;
    api_options.max_body_bytes = state.config.gateway.max_request_body_bytes;
    api_options.server_name = "cortex";
    api_options.log_component = "cortex::http";
    impl_->api = std::make_unique<net::Server>(*impl_->io, api_options,
                                               std::move(api_router));

    net::Router metrics_router;
    detail::register_metrics_routes(metrics_router, state);
    net::ServerOptions metrics_options;
    metrics_options.listen = state.config.gateway.metrics_listen;
    metrics_options.server_name = "cortex";
    metrics_options.log_component = "cortex::metrics";
    impl_->metrics = std::make_unique<net::Server>(*impl_->io, metrics_options,
                                                   std::move(metrics_router));

    HELEXA_TRY_STATUS(impl_->api->start());
    HELEXA_TRY_STATUS(impl_->metrics->start());
    impl_->io->start();
    impl_->running = true;
    if (options.initial_poll) {
        poll_now();
    }
    for (const auto& node : state.config.neurons) {
        impl_->tasks->spawn(detail::poll_loop(state, node.name));
    }
    state.log->info("cortex listening on {} (metrics {}), {} neurons, {} catalogue models",
                    impl_->api->local_address(), impl_->metrics->local_address(),
                    state.config.neurons.size(), state.catalogue.models.size());
    return ok();
}

uint16_t CortexServer::port() const {
    return impl_->api ? impl_->api->port() : 0;
}

uint16_t CortexServer::metrics_port() const {
    return impl_->metrics ? impl_->metrics->port() : 0;
}

void CortexServer::poll_now() {
    if (!impl_->running) {
        return;
    }
    auto done = boost::asio::co_spawn(impl_->io->context(), detail::poll_all(*impl_->state),
                                      boost::asio::use_future);
    done.wait();
}

void CortexServer::stop() {
    if (!impl_->running) {
        return;
    }
    impl_->running = false;
    impl_->api->stop();
    impl_->metrics->stop();
    impl_->tasks->cancel_all();
    auto waited = boost::asio::co_spawn(
        impl_->io->context(),
        [tasks = impl_->tasks.get()]() -> boost::asio::awaitable<bool> {
            co_return co_await tasks->wait(std::chrono::seconds(5));
        },
        boost::asio::use_future);
    waited.wait();
    impl_->io->stop();
    impl_->io->join();
    impl_->api.reset();
    impl_->metrics.reset();
    impl_->tasks.reset();
    impl_->state.reset();
    impl_->io.reset();
}

std::shared_ptr<const FleetSnapshot> CortexServer::fleet() const {
    return impl_->state ? impl_->state->fleet->snapshot() : nullptr;
}

std::shared_ptr<EntitlementProvider> CortexServer::entitlements() const {
    return impl_->state ? impl_->state->provider : nullptr;
}

}  // namespace helexa::gateway
