// The OpenAI-surface streaming proxy (chat, completions, responses), header hygiene (D21),
// cold loads with eviction, and the metering that closes every request.
#include <algorithm>
#include <cctype>
#include <chrono>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "helexa/common/error_envelope.h"
#include "helexa/common/json.h"
#include "helexa/gateway/evictor.h"
#include "helexa/gateway/metering.h"
#include "helexa/gateway/models_listing.h"
#include "helexa/net/deadline.h"
#include "helexa/wire/usage_scan.h"
#include "internal.h"

namespace helexa::gateway::detail {
namespace {

using Clock = std::chrono::steady_clock;

// Upstream bodies of known length up to this size are forwarded as one complete response.
constexpr uint64_t kMaxBufferedBody = 8 * 1024 * 1024;

bool starts_with_ci(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && net::iequals(s.substr(0, prefix.size()), prefix);
}

bool is_hop_by_hop(std::string_view name) {
    for (std::string_view h : {"connection", "keep-alive", "proxy-authenticate",
                               "proxy-authorization", "te", "trailer", "trailers",
                               "transfer-encoding", "upgrade", "proxy-connection"}) {
        if (net::iequals(name, h)) {
            return true;
        }
    }
    return false;
}

double secs_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

}  // namespace

std::string_view surface_name(Surface surface) {
    switch (surface) {
        case Surface::kChat:
            return "openai-chat";
        case Surface::kCompletions:
            return "openai-completions";
        case Surface::kResponses:
            return "openai-responses";
        case Surface::kAnthropic:
            return "anthropic";
        case Surface::kCountTokens:
            return "anthropic-count-tokens";
        case Surface::kModels:
            return "models";
        case Surface::kOther:
            return "other";
    }
    return "other";
}

Surface surface_of_path(std::string_view path) {
    if (path == "/v1/chat/completions") {
        return Surface::kChat;
    }
    if (path == "/v1/completions") {
        return Surface::kCompletions;
    }
    if (path == "/v1/responses") {
        return Surface::kResponses;
    }
    if (path == "/v1/messages") {
        return Surface::kAnthropic;
    }
    if (path == "/v1/messages/count_tokens") {
        return Surface::kCountTokens;
    }
    if (path == "/v1/models") {
        return Surface::kModels;
    }
    return Surface::kOther;
}

net::Headers upstream_request_headers(const net::Headers& client,
                                      const std::optional<Principal>& principal) {
    net::Headers out;
    for (const auto& [name, value] : client) {
        if (is_hop_by_hop(name) || net::iequals(name, "host") ||
            net::iequals(name, "content-length") || net::iequals(name, "authorization") ||
            net::iequals(name, "x-api-key") || starts_with_ci(name, "x-helexa-")) {
            continue;
        }
        out.add(name, value);
    }
    if (principal) {
        out.set(std::string(kHeaderAccountId), principal->account_id);
        out.set(std::string(kHeaderKeyId), principal->key_id);
    }
    return out;
}

net::Headers client_response_headers(const net::Headers& upstream) {
    net::Headers out;
    for (const auto& [name, value] : upstream) {
        if (is_hop_by_hop(name) || net::iequals(name, "content-length") ||
            net::iequals(name, "x-helexa-account-id") || net::iequals(name, "x-helexa-key-id")) {
            continue;
        }
        out.add(name, value);
    }
    return out;
}

std::optional<Principal> principal_of(const net::Request& request) {
    auto it = request.locals.find(kPrincipalLocal);
    if (it == request.locals.end()) {
        return std::nullopt;
    }
    if (const auto* p = std::any_cast<Principal>(&it->second)) {
        return *p;
    }
    return std::nullopt;
}

RequestLog request_log_of(const net::Request& request, const GatewayState& state) {
    auto it = request.locals.find(kRequestLogLocal);
    if (it != request.locals.end()) {
        if (const auto* l = std::any_cast<RequestLog>(&it->second)) {
            return *l;
        }
    }
    return RequestLog(state.log, new_request_id());
}

asio::awaitable<Result<RouteTarget>> execute_cold_load(GatewayState& state,
                                                       const RouteDecision& decision,
                                                       const RequestLog& rlog) {
    const ColdLoadPlan& plan = decision.cold_load;
    const ModelProfile* profile = state.catalogue.find(decision.resolved_model);
    auto snap = state.fleet->snapshot();
    const NodeState* node = snap->find(plan.node);
    if (profile != nullptr && node != nullptr) {
        auto victims = plan_evictions(*node, *profile, state.catalogue, state.lru,
                                      state.config.eviction.strategy);
        for (const auto& victim : victims) {
            rlog.warn("evicting {} from {} to make room for {}", victim, plan.node,
                      decision.resolved_model);
            const nlohmann::json unload_body = {{"model_id", victim}};
            auto res = co_await state.client.post_json(plan.node_endpoint + "/models/unload",
                                                       unload_body);
            if (!res || res->status / 100 != 2) {
                rlog.warn("unload of {} on {} failed: {}", victim, plan.node,
                          res ? fmt::format("status {}", res->status) : res.error().message());
                break;
            }
            state.metrics.evictions.with({victim, plan.node}).inc();
            state.lru.forget(plan.node, victim);
            state.fleet->update([&](FleetSnapshot& f) {
                if (NodeState* n = f.find_mut(plan.node)) {
                    std::erase_if(n->models, [&](const ModelEntry& m) { return m.id == victim; });
                    ++n->lifecycle_cycles;
                }
            });
        }
    }
    rlog.info("cold-loading {} on {}", decision.resolved_model, plan.node);
    net::ClientRequest load;
    load.method = "POST";
    load.url = plan.node_endpoint + "/models/load";
    load.headers.set("Content-Type", "application/json");
    load.body = plan.load_spec.dump();
    load.read_timeout = std::chrono::seconds(state.config.gateway.cold_load_timeout_secs);
    auto res = co_await state.client.request(std::move(load));
    bool loaded = res && res->status / 100 == 2;
    if (res && !loaded) {
        // "already loaded" is success: two racing cold loads of one model are benign.
        std::string lower = res->body;
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        loaded = lower.find("already loaded") != std::string::npos;
    }
    if (!loaded) {
        std::string why = res ? fmt::format("neuron returned {}", res->status)
                              : res.error().full_message();
        rlog.warn("cold load of {} on {} failed: {} body={}", decision.resolved_model, plan.node,
                  why, res ? truncate_for_log(res->body, 512) : std::string());
        state.metrics.cold_loads.with({decision.resolved_model, plan.node, "failed"}).inc();
        co_return fail(service_unavailable_error(
            fmt::format("model '{}' could not be loaded on {}: {}", decision.resolved_model,
                        plan.node, why),
            5));
    }
    state.metrics.cold_loads.with({decision.resolved_model, plan.node, "loaded"}).inc();
    // Record it now so the next request routes directly instead of waiting for a poll.
    state.fleet->update([&](FleetSnapshot& f) {
        if (NodeState* n = f.find_mut(plan.node)) {
            ++n->lifecycle_cycles;
            if (n->find_model(plan.upstream_model) == nullptr) {
                ModelEntry e;
                e.id = plan.upstream_model;
                e.status = ModelStatus::kLoaded;
                n->models.push_back(std::move(e));
            } else {
                for (auto& m : n->models) {
                    if (m.id == plan.upstream_model) {
                        m.status = ModelStatus::kLoaded;
                    }
                }
            }
        }
    });
    co_return RouteTarget{plan.node, plan.node_endpoint, plan.upstream_model};
}

void finish_metering(GatewayState& state, ReservationGuard& guard,
                     const std::optional<Principal>& principal, const Outcome& outcome,
                     const RequestLog& rlog) {
    const std::vector<std::string> labels{outcome.model, outcome.node};
    if (outcome.ttft_secs) {
        state.metrics.ttft.with(labels).observe(*outcome.ttft_secs);
    }
    if (outcome.usage) {
        state.metrics.prompt_tokens.with(labels).inc(
            static_cast<double>(outcome.usage->prompt_tokens));
        state.metrics.completion_tokens.with(labels).inc(
            static_cast<double>(outcome.usage->completion_tokens));
        if (outcome.stream_secs && *outcome.stream_secs > 0 &&
            outcome.usage->completion_tokens > 0) {
            state.metrics.tokens_per_second.with(labels).observe(
                static_cast<double>(outcome.usage->completion_tokens) / *outcome.stream_secs);
        }
    }
    if (!guard.active()) {
        return;
    }
    // No usage seen → settle 0, which releases the whole hold.
    auto charge = guard.settle(outcome.usage.value_or(TokenUsage{}));
    if (!charge) {
        rlog.error("spend ledger write failed while settling: {}", charge.error().message());
        return;
    }
    if (principal && charge->total() > 0) {
        const std::vector<std::string> who{principal->account_id, principal->key_id};
        state.metrics.spend.with(who).inc(static_cast<double>(charge->total()));
        state.metrics.spend_prompt.with(who).inc(static_cast<double>(charge->prompt_tokens));
        state.metrics.spend_completion.with(who).inc(
            static_cast<double>(charge->completion_tokens));
    }
}

asio::awaitable<std::optional<Result<RouteTarget>>> wait_for_cold_load(
    GatewayState& state, const RouteDecision& decision, const RequestLog& rlog,
    net::ResponseWriter& writer, const KeepAlive* keepalive, bool& stream_started) {
    using namespace asio::experimental::awaitable_operators;
    auto executor = co_await asio::this_coro::executor;
    // The load runs as its own task so that pinging the client never cancels it; a client that
    // gives up does not abort a load other requests may be waiting for.
    auto channel = std::make_shared<net::Channel<Result<RouteTarget>>>(executor);
    state.tasks->spawn([](GatewayState& st, RouteDecision d, RequestLog log,
                          std::shared_ptr<net::Channel<Result<RouteTarget>>> ch)
                           -> asio::awaitable<void> {
        ch->push(co_await execute_cold_load(st, d, log));
        ch->close();
    }(state, decision, rlog, channel));
    auto wait = kKeepAliveFirst;
    for (;;) {
        auto r = co_await (channel->receive() || net::sleep_for(wait) ||
                           writer.wait_client_gone());
        if (r.index() == 0) {
            auto& value = std::get<0>(r);
            if (!value) {
                co_return Result<RouteTarget>(
                    fail(service_unavailable_error("cold load abandoned", 5)));
            }
            co_return std::move(*value);
        }
        if (r.index() == 2) {
            co_return std::nullopt;
        }
        wait = kKeepAliveEvery;
        if (keepalive == nullptr) {
            continue;
        }
        if (!stream_started) {
            stream_started = true;
            if (!co_await keepalive->start()) {
                co_return std::nullopt;
            }
        }
        if (!co_await keepalive->ping()) {
            co_return std::nullopt;
        }
    }
}

asio::awaitable<net::Response> proxy_openai(GatewayState& state, net::Request& request,
                                            net::ResponseWriter& writer, Surface surface,
                                            std::string upstream_path) {
    using namespace asio::experimental::awaitable_operators;
    const RequestLog rlog = request_log_of(request, state);
    // NOTE: routing reads a few top-level fields in one SAX pass; the body is parsed into a DOM
    // only when the context check could fail or the model name must be rewritten.
    auto summary = summarize_request(request.body);
    if (!summary) {
        co_return net::Response::error(summary.error());
    }
    if (!summary->is_object) {
        co_return net::Response::error(
            Error(ErrorCode::kInvalidRequest, "request body must be a JSON object"));
    }
    if (!summary->model || summary->model->empty()) {
        rlog.warn("handler={} request without model", surface_name(surface));
        co_return net::Response::error(
            Error(ErrorCode::kInvalidRequest, "you must provide a model parameter")
                .with_param("model"));
    }
    if (summary->has_stream && !summary->stream) {
        co_return net::Response::error(
            Error(ErrorCode::kInvalidRequest, "stream must be a boolean").with_param("stream"));
    }
    const std::string requested = *summary->model;
    const bool stream = summary->stream.value_or(false);
    auto snap = state.fleet->snapshot();
    auto decision = resolve_route(requested, *snap, state.catalogue,
                                  state.config.gateway.default_model);
    if (!decision) {
        rlog.warn("route failed model={} error={}", requested, decision.error().message());
        co_return net::Response::error(decision.error());
    }
    rlog.debug("inbound request surface={} model={} stream={} tools={}", surface_name(surface),
               requested, stream, summary->has_tools);
    const std::string model = decision->resolved_model;
    const auto limit = advertised_limit(*snap, decision->kind == RouteDecision::Kind::kRoute
                                                   ? decision->target.upstream_model
                                                   : model);
    std::optional<nlohmann::json> body;  // the DOM, parsed at most once, only when needed
    if (may_exceed_context(request.body.size(), limit)) {
        body = nlohmann::json::parse(request.body);  // valid: the summary pass accepted it
    }
    if (auto ctx = body ? check_context(*body, limit) : Status(); !ctx) {
        auto response = net::Response::error(ctx.error());
        if (auto advice = advice_for_user_agent(request.headers.get_or("user-agent", ""))) {
            response.headers.set(std::string(kHeaderAdvice), *advice);
        }
        co_return response;
    }
    const auto principal = principal_of(request);
    ReservationGuard guard;
    if (principal) {
        auto reservation = state.provider->reserve(
            *principal, reservation_estimate(*summary, request.body.size(),
                                             limit ? limit->output : std::nullopt));
        if (!reservation) {
            rlog.info("budget refused key={} code={}", principal->key_id,
                      error_code_info(reservation.error().code()).name);
            co_return net::Response::error(reservation.error());
        }
        guard = ReservationGuard(state.provider, *reservation);
    }
    RouteTarget target = decision->target;
    bool stream_started = false;
    net::SseWriter sse(writer);
    if (decision->kind == RouteDecision::Kind::kColdLoad) {
        KeepAlive keepalive{[&]() { return sse.start(); },
                            [&]() { return sse.comment("loading"); }};
        auto loaded = co_await wait_for_cold_load(state, *decision, rlog, writer,
                                                  stream ? &keepalive : nullptr, stream_started);
        if (!loaded) {
            co_return net::Response{};  // client gone; the guard releases the hold
        }
        if (!*loaded) {
            if (stream_started) {
                co_await sse.event(openai_envelope(loaded->error()).body.dump());
                co_await sse.finish();
                co_return net::Response{};
            }
            co_return net::Response::error(loaded->error());
        }
        target = **loaded;
    }
    state.lru.touch(target.node, target.upstream_model);

    // NOTE: the client's bytes go upstream verbatim unless the model name changes (alias,
    // default model); re-serialising the already parsed body only then saves a parse + dump per
    // request on the hot path.
    std::string upstream_body;
    if (requested == target.upstream_model) {
        upstream_body = std::move(request.body);
    } else {
        if (!body) {
            body = nlohmann::json::parse(request.body);
        }
        (*body)["model"] = target.upstream_model;
        upstream_body = body->dump();
    }
    rlog.info("proxying request surface={} model={} node={}", surface_name(surface), model,
              target.node);
    if (rlog.should_log(spdlog::level::trace)) {
        rlog.trace("upstream body {}", truncate_for_log(upstream_body, 4096));
    }
    net::ClientRequest up;
    up.method = "POST";
    up.url = target.base_url + upstream_path;
    up.headers = upstream_request_headers(request.headers, principal);
    up.body = std::move(upstream_body);
    // A client hang-up aborts the upstream exchange (connect, send or read) through this hook,
    // so each upstream read below is a plain co_await instead of a race with the client watch.
    auto abort = std::make_shared<net::ClientAbort>();
    writer.on_client_gone([abort] { abort->abort(); });
    up.abort = abort;
    const auto started = Clock::now();
    auto st = co_await state.client.stream(std::move(up));
    if (abort->aborted()) {
        co_return net::Response{};  // client hung up before the upstream answered
    }
    if (!st) {
        rlog.warn("upstream failed model={} node={} url={} error={}", model, target.node,
                  target.base_url + upstream_path, st.error().message());
        Error err(st.error().code() == ErrorCode::kTimeout ? ErrorCode::kTimeout
                                                           : ErrorCode::kUpstream,
                  fmt::format("upstream {} unavailable", target.node));
        if (stream_started) {
            co_await sse.event(openai_envelope(err).body.dump());
            co_await sse.finish();
            co_return net::Response{};
        }
        co_return net::Response::error(err);
    }
    if (st->status() / 100 != 2) {
        rlog.warn("upstream returned {} model={} node={} url={}", st->status(), model, target.node,
                  target.base_url + upstream_path);
    }
    if (stream_started && st->status() / 100 != 2) {
        // Our own 200 is already out: deliver the upstream's refusal as an error event.
        auto rest = co_await st->read_all();
        co_await sse.event(rest ? *rest : std::string(R"({"error":{"message":"upstream error"}})"));
        co_await sse.finish();
        co_return net::Response{};
    }
    wire::UsageTailScanner scanner;
    std::optional<Clock::time_point> first_chunk;
    Clock::time_point last_chunk = started;
    bool upstream_failed = false;
    const auto length = st->content_length();
    if (!stream_started && length && *length <= kMaxBufferedBody) {
        // A body of known size (a non-streaming completion, an error envelope) goes out as one
        // complete response with its length: one write to the client instead of a head, a
        // chunk and a terminator.
        auto all = co_await st->read_all();
        if (abort->aborted()) {
            co_return net::Response{};
        }
        if (!all) {
            rlog.warn("upstream died mid-body model={} node={} error={}", model, target.node,
                      all.error().message());
            finish_metering(state, guard, principal,
                            Outcome{model, target.node, std::nullopt, std::nullopt, std::nullopt},
                            rlog);
            co_return net::Response::error(
                Error(all.error().code() == ErrorCode::kTimeout ? ErrorCode::kTimeout
                                                                : ErrorCode::kUpstream,
                      fmt::format("upstream {} response was cut off", target.node)));
        }
        first_chunk = last_chunk = Clock::now();
        scanner.feed(*all);
        net::Response complete;
        complete.status = st->status();
        complete.headers = client_response_headers(st->headers());
        complete.body = std::move(*all);
        Outcome outcome{model, target.node, std::nullopt, std::nullopt, std::nullopt};
        if (auto u = scanner.result()) {
            outcome.usage = TokenUsage{u->prompt_tokens, u->completion_tokens};
        }
        outcome.ttft_secs = secs_between(started, *first_chunk);
        outcome.stream_secs = outcome.ttft_secs;
        finish_metering(state, guard, principal, outcome, rlog);
        co_return complete;
    }
    if (!stream_started &&
        !co_await writer.start(st->status(), client_response_headers(st->headers()))) {
        st->close();
        co_return net::Response{};
    }
    bool finished = false;
    bool settled = false;
    // Spend and token metrics are recorded once, before the client can see the end of the body
    // (a client that reads its balance right after the response must find this request in it).
    auto settle = [&] {
        if (settled) {
            return;
        }
        settled = true;
        Outcome outcome{model, target.node, std::nullopt, std::nullopt, std::nullopt};
        if (auto u = scanner.result()) {
            outcome.usage = TokenUsage{u->prompt_tokens, u->completion_tokens};
        }
        if (first_chunk) {
            outcome.ttft_secs = secs_between(started, *first_chunk);
            double window = secs_between(*first_chunk, last_chunk);
            outcome.stream_secs = window > 0 ? window : secs_between(started, last_chunk);
        }
        finish_metering(state, guard, principal, outcome, rlog);
    };
    while (true) {
        auto chunk = co_await st->next();
        if (abort->aborted()) {
            st->close();  // client gone: closing the upstream stops the neuron generating
            break;
        }
        if (!chunk) {
            rlog.warn("upstream died mid-stream model={} node={} error={}", model, target.node,
                      chunk.error().message());
            upstream_failed = true;
            break;
        }
        if (!*chunk) {
            break;  // clean end
        }
        const auto now = Clock::now();
        if (!first_chunk) {
            first_chunk = now;
        }
        last_chunk = now;
        scanner.feed(**chunk);
        if (st->complete()) {
            // The upstream body ended with this piece: our last chunk and terminator together.
            settle();
            co_await writer.write_and_finish(**chunk);
            finished = true;
            break;
        }
        if (!co_await writer.write(**chunk)) {
            st->close();
            break;
        }
    }
    if (!upstream_failed && !finished) {
        settle();
        co_await writer.finish();
    }
    settle();
    co_return net::Response{};
}

}  // namespace helexa::gateway::detail
