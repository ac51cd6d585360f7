// Shared state and helpers of the cortex HTTP layer (not public API).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include "helexa/common/logging.h"
#include "helexa/common/metrics.h"
#include "helexa/gateway/clock.h"
#include "helexa/gateway/config.h"
#include "helexa/gateway/entitlements.h"
#include "helexa/gateway/fleet.h"
#include "helexa/gateway/router.h"
#include "helexa/net/client.h"
#include "helexa/net/channel.h"
#include "helexa/net/server.h"
#include "helexa/net/task_group.h"

namespace helexa::gateway::detail {

namespace asio = boost::asio;

// The wire surface, for logs and metric labels.
enum class Surface { kChat, kCompletions, kResponses, kAnthropic, kCountTokens, kModels, kOther };
std::string_view surface_name(Surface surface);
Surface surface_of_path(std::string_view path);

struct GatewayMetrics {
    explicit GatewayMetrics(metrics::Registry& registry);

    metrics::HistogramFamily& ttft;               // {model,node}
    metrics::HistogramFamily& tokens_per_second;  // {model,node}
    metrics::CounterFamily& prompt_tokens;        // {model,node}
    metrics::CounterFamily& completion_tokens;    // {model,node}
    metrics::CounterFamily& requests;             // {surface,status}
    metrics::HistogramFamily& request_duration;   // {surface}
    metrics::CounterFamily& spend;                // {account,key}
    metrics::CounterFamily& spend_prompt;         // {account,key}
    metrics::CounterFamily& spend_completion;     // {account,key}
    metrics::CounterFamily& cold_loads;           // {model,node,outcome}
    metrics::CounterFamily& evictions;            // {model,node}
    metrics::GaugeFamily& node_healthy;           // {node}
};

struct GatewayState {
    CortexConfig config;
    Catalogue catalogue;
    std::shared_ptr<FleetState> fleet;
    LruTracker lru;
    std::shared_ptr<EntitlementProvider> provider;
    net::Client client;
    net::TaskGroup* tasks = nullptr;  // background work (cold loads, poll loops); owned by server
    metrics::Registry registry;
    GatewayMetrics metrics{registry};
    int64_t created = 0;  // unix seconds at start, the `created` of /v1/models entries
    std::shared_ptr<spdlog::logger> log = helexa::log::get("cortex::gateway");

    GatewayState(CortexConfig cfg, Catalogue cat, asio::any_io_executor executor,
                 net::ClientOptions client_options)
        : config(std::move(cfg)), catalogue(std::move(cat)),
          fleet(std::make_shared<FleetState>(config.neurons)),
          client(std::move(executor), std::move(client_options)) {}
};

// ---- poller (poller.cpp) ----
// Polls one node once (discovery when unknown, /models, /health, new endpoints) and publishes.
asio::awaitable<void> poll_node(GatewayState& state, std::string node_name);
asio::awaitable<void> poll_all(GatewayState& state);
// Loops poll_node for one node every poll_interval_secs until cancelled.
asio::awaitable<void> poll_loop(GatewayState& state, std::string node_name);

// ---- proxy helpers (proxy.cpp) ----
// Copies client headers for the upstream request: drops hop-by-hop, Host, Content-Length,
// Authorization, x-api-key and every x-helexa-*; stamps the principal when there is one.
net::Headers upstream_request_headers(const net::Headers& client,
                                      const std::optional<Principal>& principal);
// Copies upstream response headers for the client: drops hop-by-hop and Content-Length (the
// body is re-framed as chunks) and every x-helexa-* the upstream did not mean for clients.
net::Headers client_response_headers(const net::Headers& upstream);

// The principal the auth middleware attached, if any.
std::optional<Principal> principal_of(const net::Request& request);
inline constexpr std::string_view kPrincipalLocal = "helexa.principal";
inline constexpr std::string_view kRequestLogLocal = "helexa.request_log";
RequestLog request_log_of(const net::Request& request, const GatewayState& state);

// Executes a cold-load plan: evictions if VRAM is tight, POST /models/load (bounded by
// cold_load_timeout_secs), then records the model as loaded on the node. Returns the route.
asio::awaitable<Result<RouteTarget>> execute_cold_load(GatewayState& state,
                                                       const RouteDecision& decision,
                                                       const RequestLog& rlog);

// Keeps a streaming client alive while a cold load runs: `start` opens the stream (once, only
// when the wait gets long), `ping` sends one keep-alive. Both return false once the client is gone.
struct KeepAlive {
    std::function<asio::awaitable<bool>()> start;
    std::function<asio::awaitable<bool>()> ping;
};
inline constexpr std::chrono::milliseconds kKeepAliveFirst{2000};
inline constexpr std::chrono::milliseconds kKeepAliveEvery{5000};
// Runs the cold load as a task and waits for it, pinging through `keepalive` (null for
// non-streaming requests). nullopt: the client hung up. `stream_started` tells whether
// keepalive->start() ran (the caller then owes the client an in-stream answer).
asio::awaitable<std::optional<Result<RouteTarget>>> wait_for_cold_load(
    GatewayState& state, const RouteDecision& decision, const RequestLog& rlog,
    net::ResponseWriter& writer, const KeepAlive* keepalive, bool& stream_started);

// The OpenAI surfaces: /v1/chat/completions, /v1/completions, /v1/responses.
asio::awaitable<net::Response> proxy_openai(GatewayState& state, net::Request& request,
                                            net::ResponseWriter& writer, Surface surface,
                                            std::string upstream_path);

// ---- anthropic.cpp ----
asio::awaitable<net::Response> handle_messages(GatewayState& state, net::Request& request,
                                               net::ResponseWriter& writer);
asio::awaitable<net::Response> handle_count_tokens(GatewayState& state, net::Request& request);
net::Response anthropic_error_response(const Error& error);

// ---- handlers.cpp ----
void register_routes(net::Router& router, GatewayState& state);
void register_middleware(net::Router& router, GatewayState& state);
void register_metrics_routes(net::Router& router, GatewayState& state);

// Settles (or releases) a reservation and records spend + per-request token metrics.
struct Outcome {
    std::string model;
    std::string node;
    std::optional<TokenUsage> usage;
    std::optional<double> ttft_secs;
    std::optional<double> stream_secs;  // first → last chunk (or total for one chunk)
};
void finish_metering(GatewayState& state, ReservationGuard& guard,
                     const std::optional<Principal>& principal, const Outcome& outcome,
                     const RequestLog& rlog);

}  // namespace helexa::gateway::detail
