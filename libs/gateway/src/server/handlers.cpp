// Routes and middleware of the cortex API listener (trace → CORS → auth → handlers) and the
// metrics listener.
#include <chrono>

#include <fmt/format.h>

#include "helexa/common/build_info.h"
#include "helexa/common/error_envelope.h"
#include "helexa/gateway/models_listing.h"
#include "internal.h"

namespace helexa::gateway::detail {
namespace {

using SteadyClock = std::chrono::steady_clock;

bool is_public_path(std::string_view path) {
    return path == "/" || path == "/health";
}

bool is_anthropic_path(std::string_view path) {
    return path.rfind("/v1/messages", 0) == 0;
}

// The API key from `Authorization: Bearer <key>` or Anthropic's `x-api-key`; empty when absent
// or malformed.
std::string api_key_of(const net::Request& request) {
    if (auto auth = request.header("authorization")) {
        std::string_view v = *auth;
        constexpr std::string_view kBearer = "bearer ";
        if (v.size() > kBearer.size() && net::iequals(v.substr(0, kBearer.size()), kBearer)) {
            v.remove_prefix(kBearer.size());
            while (!v.empty() && v.front() == ' ') {
                v.remove_prefix(1);
            }
            while (!v.empty() && v.back() == ' ') {
                v.remove_suffix(1);
            }
            if (!v.empty()) {
                return std::string(v);
            }
        }
    }
    if (auto key = request.header("x-api-key")) {
        return std::string(*key);
    }
    return {};
}

nlohmann::json fleet_json(const FleetSnapshot& fleet) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const auto& n : fleet.nodes) {
        nlohmann::json devices = nlohmann::json::array();
        if (n.discovery) {
            for (const auto& d : n.discovery->devices) {
                devices.push_back(
                    {{"index", d.index}, {"name", d.name}, {"vram_total_mb", d.vram_total_mb}});
            }
        }
        nlohmann::json models = nlohmann::json::array();
        for (const auto& m : n.models) {
            auto load = n.load_of(m.id);
            models.push_back({{"id", m.id},
                              {"status", to_string(m.status)},
                              {"in_flight", load.in_flight},
                              {"queue_depth", load.queue_depth}});
        }
        nodes.push_back({{"name", n.name},
                         {"endpoint", n.endpoint},
                         {"healthy", n.healthy},
                         {"consecutive_failures", n.consecutive_failures},
                         {"devices", devices},
                         {"models", models},
                         {"vram_free_mb", n.vram_free_mb ? nlohmann::json(*n.vram_free_mb)
                                                         : nlohmann::json(nullptr)},
                         {"activation", n.activation ? nlohmann::json(n.activation->state)
                                                     : nlohmann::json(nullptr)}});
    }
    return {{"nodes", nodes}};
}

}  // namespace

GatewayMetrics::GatewayMetrics(metrics::Registry& r)
    : ttft(r.histogram("cortex_time_to_first_token_seconds",
                       "Time from dispatch to the first upstream body chunk", {"model", "node"},
                       {0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60})),
      tokens_per_second(r.histogram("cortex_tokens_per_second",
                                    "Completion tokens per second over the streamed window",
                                    {"model", "node"},
                                    {1, 5, 10, 20, 40, 60, 80, 120, 200, 400})),
      prompt_tokens(r.counter("cortex_prompt_tokens_total", "Prompt tokens reported by neurons",
                              {"model", "node"})),
      completion_tokens(r.counter("cortex_completion_tokens_total",
                                  "Completion tokens reported by neurons", {"model", "node"})),
      requests(r.counter("cortex_requests_total", "Requests by wire surface and HTTP status",
                         {"surface", "status"})),
      request_duration(r.histogram("cortex_request_duration_seconds",
                                   "Request duration, first byte in to last byte out",
                                   {"surface"},
                                   {0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300})),
      spend(r.counter("cortex_spend_tokens_total", "Tokens charged per key", {"account", "key"})),
      spend_prompt(r.counter("cortex_spend_prompt_tokens_total", "Prompt tokens charged per key",
                             {"account", "key"})),
      spend_completion(r.counter("cortex_spend_completion_tokens_total",
                                 "Completion tokens charged per key", {"account", "key"})),
      cold_loads(r.counter("cortex_cold_loads_total", "Cold loads by outcome",
                           {"model", "node", "outcome"})),
      evictions(r.counter("cortex_evictions_total", "Models unloaded by the evictor",
                          {"model", "node"})),
      node_healthy(r.gauge("cortex_node_healthy", "1 when the neuron is healthy", {"node"})) {}

void register_middleware(net::Router& router, GatewayState& state) {
    // trace: request id, duration, counters by surface and status.
    router.use([&state](net::Request& req, net::ResponseWriter& w,
                        const net::Next& next) -> asio::awaitable<net::Response> {
        const auto started = SteadyClock::now();
        RequestLog rlog(state.log, new_request_id());
        req.locals[std::string(kRequestLogLocal)] = rlog;
        net::Response response = co_await next();
        const int status = w.started() ? w.status() : response.status;
        const Surface surface = surface_of_path(req.path);
        const std::string surface_label(surface_name(surface));
        state.metrics.requests.with({surface_label, std::to_string(status)}).inc();
        const double secs = std::chrono::duration<double>(SteadyClock::now() - started).count();
        state.metrics.request_duration.with({surface_label}).observe(secs);
        rlog.debug("{} {} -> {} in {:.3f}s", req.method, req.path, status, secs);
        co_return response;
    });
    // CORS: outside auth so preflights short-circuit.
    router.use([](net::Request& req, net::ResponseWriter& w,
                  const net::Next& next) -> asio::awaitable<net::Response> {
        auto origin = req.header("origin");
        if (origin) {
            w.extra_headers().set("Access-Control-Allow-Origin", "*");
            w.extra_headers().set("Access-Control-Expose-Headers",
                                  "Retry-After, X-Helexa-Advice, X-Request-Id");
        }
        if (req.method == "OPTIONS") {
            auto response = net::Response::empty(204);
            response.headers.set("Access-Control-Allow-Origin", "*");
            response.headers.set("Access-Control-Allow-Methods", "GET, POST, HEAD, OPTIONS");
            response.headers.set(
                "Access-Control-Allow-Headers",
                std::string(req.headers.get_or("access-control-request-headers",
                                                "authorization, content-type, x-api-key, "
                                                "anthropic-version, anthropic-beta")));
            response.headers.set("Access-Control-Max-Age", "86400");
            co_return response;
        }
        co_return co_await next();
    });
    // auth: identity only from the bearer key (or x-api-key).
    router.use([&state](net::Request& req, net::ResponseWriter&,
                        const net::Next& next) -> asio::awaitable<net::Response> {
        req.locals.erase(std::string(kPrincipalLocal));
        if (is_public_path(req.path)) {
            co_return co_await next();
        }
        const std::string key = api_key_of(req);
        std::optional<Principal> principal;
        if (!key.empty()) {
            principal = state.provider->resolve(key);
        }
        if (!principal && state.config.entitlements.require_auth) {
            const Error err = invalid_api_key_error();
            co_return is_anthropic_path(req.path) ? anthropic_error_response(err)
                                                  : net::Response::error(err);
        }
        if (principal) {
            req.locals[std::string(kPrincipalLocal)] = *principal;
        }
        co_return co_await next();
    });
}

void register_routes(net::Router& router, GatewayState& state) {
    router.get("/", [](net::Request&) -> asio::awaitable<net::Response> {
        co_return net::Response::json(
            {{"name", "cortex"}, {"version", build_info().version}, {"status", "ok"}});
    });
    router.get("/health", [&state](net::Request&) -> asio::awaitable<net::Response> {
        auto snap = state.fleet->snapshot();
        int healthy = 0;
        for (const auto& n : snap->nodes) {
            healthy += n.healthy ? 1 : 0;
        }
        co_return net::Response::json({{"status", "ok"},
                                       {"nodes", snap->nodes.size()},
                                       {"healthy_nodes", healthy}});
    });
    router.get("/v1/models", [&state](net::Request&) -> asio::awaitable<net::Response> {
        co_return net::Response::json(models_list_json(
            compose_models(*state.fleet->snapshot(), state.catalogue), state.created));
    });
    router.get("/v1/models/{id*}", [&state](net::Request& req) -> asio::awaitable<net::Response> {
        const std::string id(req.path_param("id"));
        for (const auto& m : compose_models(*state.fleet->snapshot(), state.catalogue)) {
            if (m.id == id) {
                co_return net::Response::json(model_view_json(m, state.created));
            }
        }
        co_return net::Response::error(
            Error(ErrorCode::kModelNotFound, fmt::format("The model '{}' does not exist", id))
                .with_param("model"));
    });
    router.get("/v1/fleet", [&state](net::Request&) -> asio::awaitable<net::Response> {
        co_return net::Response::json(fleet_json(*state.fleet->snapshot()));
    });
    router.post("/v1/chat/completions",
                [&state](net::Request& req,
                         net::ResponseWriter& w) -> asio::awaitable<net::Response> {
                    return proxy_openai(state, req, w, Surface::kChat, "/v1/chat/completions");
                });
    router.post("/v1/completions",
                [&state](net::Request& req,
                         net::ResponseWriter& w) -> asio::awaitable<net::Response> {
                    return proxy_openai(state, req, w, Surface::kCompletions, "/v1/completions");
                });
    router.post("/v1/responses",
                [&state](net::Request& req,
                         net::ResponseWriter& w) -> asio::awaitable<net::Response> {
                    return proxy_openai(state, req, w, Surface::kResponses, "/v1/responses");
                });
    router.post("/v1/messages",
                [&state](net::Request& req,
                         net::ResponseWriter& w) -> asio::awaitable<net::Response> {
                    return handle_messages(state, req, w);
                });
    router.post("/v1/messages/count_tokens",
                [&state](net::Request& req) -> asio::awaitable<net::Response> {
                    return handle_count_tokens(state, req);
                });
}

void register_metrics_routes(net::Router& router, GatewayState& state) {
    router.get("/metrics", [&state](net::Request&) -> asio::awaitable<net::Response> {
        co_return net::Response::text(200, state.registry.expose(),
                                      std::string(metrics::kContentType));
    });
    // Spend and remaining cap per key (operators only: this listener is not for clients).
    router.get("/keys", [&state](net::Request&) -> asio::awaitable<net::Response> {
        nlohmann::json keys = nlohmann::json::array();
        for (const auto& s : state.provider->snapshots()) {
            nlohmann::json k = {{"account_id", s.principal.account_id},
                                {"key_id", s.principal.key_id},
                                {"spent", s.spent},
                                {"reserved", s.reserved},
                                {"window", s.window.kind == CapWindow::Kind::kRolling
                                               ? "rolling"
                                               : "balance"}};
            k["hard_cap"] = s.hard_cap ? nlohmann::json(*s.hard_cap) : nlohmann::json(nullptr);
            k["remaining"] =
                s.remaining ? nlohmann::json(*s.remaining) : nlohmann::json(nullptr);
            if (s.resets_in_secs) {
                k["resets_in_secs"] = *s.resets_in_secs;
            }
            keys.push_back(std::move(k));
        }
        co_return net::Response::json({{"keys", keys}});
    });
    router.get("/fleet", [&state](net::Request&) -> asio::awaitable<net::Response> {
        co_return net::Response::json(fleet_json(*state.fleet->snapshot()));
    });
}

}  // namespace helexa::gateway::detail
