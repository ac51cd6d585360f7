// Anthropic surfaces: POST /v1/messages (translated to OpenAI chat and back, streaming or not)
// and POST /v1/messages/count_tokens. Errors use Anthropic's own shape.
#include <chrono>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <fmt/format.h>

#include "helexa/common/error_envelope.h"
#include "helexa/common/json.h"
#include "helexa/gateway/metering.h"
#include "helexa/gateway/models_listing.h"
#include "helexa/net/sse.h"
#include "helexa/wire/anthropic_request.h"
#include "helexa/wire/anthropic_response.h"
#include "helexa/wire/anthropic_stream.h"
#include "helexa/wire/count_tokens.h"
#include "internal.h"

namespace helexa::gateway::detail {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Anthropic error type for an upstream HTTP status.
std::string_view anthropic_type_for_status(int status) {
    switch (status) {
        case 400:
        case 422:
            return "invalid_request_error";
        case 401:
            return "authentication_error";
        case 403:
            return "permission_error";
        case 404:
            return "not_found_error";
        case 413:
            return "request_too_large";
        case 429:
            return "rate_limit_error";
        case 503:
        case 529:
            return "overloaded_error";
        default:
            return "api_error";
    }
}

// An upstream refusal re-shaped for Anthropic clients: same status and Retry-After, the
// upstream envelope's message (neuron messages are client-facing), Anthropic body.
net::Response anthropic_from_upstream(int status, const net::Headers& headers,
                                      std::string_view body) {
    std::string message = fmt::format("upstream returned {}", status);
    auto json = nlohmann::json::parse(body, nullptr, false);
    if (!json.is_discarded() && json.is_object()) {
        auto err = json.find("error");
        if (err != json.end() && err->is_object()) {
            if (auto m = err->find("message"); m != err->end() && m->is_string()) {
                message = m->get<std::string>();
            }
        }
    }
    nlohmann::json out = {{"type", "error"},
                          {"error",
                           {{"type", anthropic_type_for_status(status)}, {"message", message}}}};
    auto response = net::Response::json(status, out);
    if (auto ra = headers.get("retry-after")) {
        response.headers.set("Retry-After", std::string(*ra));
    }
    return response;
}

// Clamp max_tokens to what the model can still produce (features §3.10: clamped, not rejected).
void clamp_max_tokens(nlohmann::json& body, const std::optional<ModelLimit>& limit) {
    if (!limit) {
        return;
    }
    auto it = body.find("max_tokens");
    if (it == body.end() || !it->is_number_integer()) {
        return;
    }
    int64_t max_tokens = it->get<int64_t>();
    if (limit->output && *limit->output > 0) {
        max_tokens = std::min(max_tokens, *limit->output);
    }
    if (limit->context && *limit->context > 0) {
        const int64_t left = *limit->context - estimate_prompt_tokens(body);
        max_tokens = std::min(max_tokens, std::max<int64_t>(left, 1));
    }
    *it = std::max<int64_t>(max_tokens, 1);
}

}  // namespace

net::Response anthropic_error_response(const Error& error) {
    return net::Response::from_envelope(anthropic_envelope(error));
}

asio::awaitable<net::Response> handle_messages(GatewayState& state, net::Request& request,
                                               net::ResponseWriter& writer) {
    using namespace asio::experimental::awaitable_operators;
    const RequestLog rlog = request_log_of(request, state);
    auto parsed = request.json_body();
    if (!parsed) {
        co_return anthropic_error_response(parsed.error());
    }
    auto translated = wire::anthropic_to_openai(*parsed);
    if (!translated) {
        co_return anthropic_error_response(translated.error());
    }
    if (translated->model.empty()) {
        co_return anthropic_error_response(
            Error(ErrorCode::kInvalidRequest, "model: field required").with_param("model"));
    }
    rlog.debug("inbound request surface=anthropic model={} stream={} tools={} system={}",
               translated->model, translated->stream,
               translated->body.contains("tools") ? translated->body["tools"].size() : 0,
               parsed->contains("system"));
    if (rlog.should_log(spdlog::level::trace)) {
    rlog.trace("inbound body {}", truncate_for_log(request.body, 4096));
    }
    auto snap = state.fleet->snapshot();
    auto decision = resolve_route(translated->model, *snap, state.catalogue,
                                  state.config.gateway.default_model);
    if (!decision) {
        rlog.warn("route failed model={} error={}", translated->model,
                  decision.error().message());
        co_return anthropic_error_response(decision.error());
    }
    const std::string model = decision->resolved_model;
    nlohmann::json& body = translated->body;
    const auto limit = advertised_limit(*snap, decision->kind == RouteDecision::Kind::kRoute
                                                   ? decision->target.upstream_model
                                                   : model);
    if (auto ctx = check_context(body, limit); !ctx) {  // D8: the translated body
        auto response = anthropic_error_response(ctx.error());
        if (auto advice = advice_for_user_agent(request.headers.get_or("user-agent", ""))) {
            response.headers.set(std::string(kHeaderAdvice), *advice);
        }
        co_return response;
    }
    clamp_max_tokens(body, limit);
    const std::string translated_text = body.dump();
    const auto principal = principal_of(request);
    ReservationGuard guard;
    if (principal) {
        auto reservation = state.provider->reserve(
            *principal, reservation_estimate(body, translated_text.size(),
                                             limit ? limit->output : std::nullopt));
        if (!reservation) {
            co_return anthropic_error_response(reservation.error());
        }
        guard = ReservationGuard(state.provider, *reservation);
    }

    wire::AnthropicStreamOptions stream_options;
    stream_options.model = translated->model;
    stream_options.show_thinking = translated->show_thinking;
    stream_options.stop_sequences = translated->stop_sequences;
    stream_options.input_tokens_hint = estimate_prompt_tokens(body);
    // message_start leaves before the upstream's first chunk could name the message, so the id
    // is the request's own (unique, and the one its log lines carry).
    stream_options.message_id = "msg_" + rlog.id();
    wire::AnthropicStreamTranslator translator(stream_options);
    net::SseWriter sse(writer);
    auto send_events = [&](std::vector<wire::SseEvent> events) -> asio::awaitable<bool> {
        for (const auto& e : events) {
            if (!co_await writer.write(wire::format_sse(e))) {
                co_return false;
            }
        }
        co_return true;
    };

    RouteTarget target = decision->target;
    bool stream_started = false;
    if (decision->kind == RouteDecision::Kind::kColdLoad) {
        KeepAlive keepalive{
            [&]() -> asio::awaitable<bool> {
                if (!co_await sse.start()) {
                    co_return false;
                }
                co_return co_await send_events(translator.start());
            },
            [&]() { return send_events({wire::AnthropicStreamTranslator::ping()}); }};
        auto loaded = co_await wait_for_cold_load(state, *decision, rlog, writer,
                                                  translated->stream ? &keepalive : nullptr,
                                                  stream_started);
        if (!loaded) {
            co_return net::Response{};
        }
        if (!*loaded) {
            if (stream_started) {
                co_await send_events(translator.fail(loaded->error().message(),
                                                     "overloaded_error"));
                co_await writer.finish();
                co_return net::Response{};
            }
            co_return anthropic_error_response(loaded->error());
        }
        target = **loaded;
    }
    state.lru.touch(target.node, target.upstream_model);
    body["model"] = target.upstream_model;
    net::ClientRequest up;
    up.method = "POST";
    up.url = target.base_url + "/v1/chat/completions";
    up.headers = upstream_request_headers(request.headers, principal);
    up.headers.remove("anthropic-version");
    up.headers.remove("anthropic-beta");
    up.headers.set("Content-Type", "application/json");
    if (translated->show_thinking) {
        up.headers.set("x-include-thinking", "true");
    }
    up.body = body.dump();
    rlog.info("proxying request surface=anthropic model={} node={}", model, target.node);
    if (rlog.should_log(spdlog::level::trace)) {
    rlog.trace("translated body {}", truncate_for_log(up.body, 4096));
    }
    // A client hang-up aborts the upstream exchange through this hook (no race per read).
    auto abort = std::make_shared<net::ClientAbort>();
    writer.on_client_gone([abort] { abort->abort(); });
    up.abort = abort;
    const auto started = SteadyClock::now();
    auto st = co_await state.client.stream(std::move(up));
    if (abort->aborted()) {
        co_return net::Response{};
    }
    Outcome outcome{model, target.node, std::nullopt, std::nullopt, std::nullopt};
    if (!st) {
        rlog.warn("upstream failed model={} node={} url={} error={}", model, target.node,
                  target.base_url, st.error().message());
        Error err(ErrorCode::kUpstream, fmt::format("upstream {} unavailable", target.node));
        if (stream_started) {
            co_await send_events(translator.fail(err.message()));
            co_await writer.finish();
            co_return net::Response{};
        }
        co_return anthropic_error_response(err);
    }
    if (st->status() / 100 != 2) {
        auto rest = co_await st->read_all();
        const std::string text = rest ? *rest : std::string();
        rlog.warn("upstream returned {} model={} node={} url={} body={}", st->status(), model,
                  target.node, target.base_url, truncate_for_log(text, 512));
        if (stream_started) {
            co_await send_events(translator.fail(
                fmt::format("upstream returned {}", st->status()),
                std::string(anthropic_type_for_status(st->status()))));
            co_await writer.finish();
            co_return net::Response{};
        }
        co_return anthropic_from_upstream(st->status(), st->headers(), text);
    }

    if (!translated->stream) {
        auto text = co_await st->read_all();
        if (abort->aborted()) {
            st->close();
            co_return net::Response{};
        }
        if (!text) {
            co_return anthropic_error_response(
                Error(ErrorCode::kUpstream, "upstream response was cut off"));
        }
        outcome.ttft_secs = std::chrono::duration<double>(SteadyClock::now() - started).count();
        outcome.stream_secs = outcome.ttft_secs;
        auto completion = nlohmann::json::parse(*text, nullptr, false);
        if (completion.is_discarded()) {
            co_return anthropic_error_response(
                Error(ErrorCode::kUpstream, "upstream returned invalid JSON"));
        }
        wire::AnthropicResponseOptions options;
        options.model = translated->model;
        options.show_thinking = translated->show_thinking;
        options.stop_sequences = translated->stop_sequences;
        auto answer = wire::openai_to_anthropic(completion, options);
        if (!answer) {
            co_return anthropic_error_response(answer.error());
        }
        if (answer->malformed_tool_arguments > 0) {
            rlog.warn("model={} produced {} malformed tool arguments", model,
                      answer->malformed_tool_arguments);
        }
        if (auto usage = completion.find("usage"); usage != completion.end() &&
                                                   usage->is_object()) {
            outcome.usage = TokenUsage{usage->value("prompt_tokens", int64_t{0}),
                                       usage->value("completion_tokens", int64_t{0})};
        }
        finish_metering(state, guard, principal, outcome, rlog);
        co_return net::Response::json(200, answer->body);
    }

    if (!stream_started) {
        if (!co_await sse.start() || !co_await send_events(translator.start())) {
            st->close();
            co_return net::Response{};
        }
        stream_started = true;
    }
    net::SseParser parser;
    std::optional<SteadyClock::time_point> first_chunk;
    SteadyClock::time_point last_chunk = started;
    bool client_gone = false;
    auto handle_events = [&](std::vector<net::SseEvent> events) -> asio::awaitable<bool> {
        for (const auto& event : events) {
            if (event.data == "[DONE]") {
                if (!co_await send_events(translator.finish())) {
                    co_return false;
                }
                continue;
            }
            auto chunk = nlohmann::json::parse(event.data, nullptr, false);
            if (chunk.is_discarded() || !chunk.is_object()) {
                continue;  // lenient: skip what is not a JSON chunk
            }
            if (!co_await send_events(translator.feed(chunk))) {
                co_return false;
            }
        }
        co_return true;
    };
    while (!translator.done()) {
        auto chunk = co_await st->next();
        if (abort->aborted()) {
            st->close();
            client_gone = true;
            break;
        }
        if (!chunk) {
            rlog.warn("upstream died mid-stream model={} node={} error={}", model, target.node,
                      chunk.error().message());
            co_await send_events(translator.fail("upstream connection lost"));
            break;
        }
        if (!*chunk) {
            if (!co_await handle_events(parser.finish())) {
                client_gone = true;
                break;
            }
            co_await send_events(translator.finish());  // truncated without [DONE]: still close
            break;
        }
        const auto now = SteadyClock::now();
        if (!first_chunk) {
            first_chunk = now;
        }
        last_chunk = now;
        if (!co_await handle_events(parser.feed(**chunk))) {
            st->close();
            client_gone = true;
            break;
        }
    }
    // Metering before the terminating chunk: a client that reads its balance right after the
    // response must find this request in it.
    if (const auto& usage = translator.upstream_usage(); usage && usage->is_object()) {
        outcome.usage = TokenUsage{usage->value("prompt_tokens", int64_t{0}),
                                   usage->value("completion_tokens", int64_t{0})};
    } else if (translator.delta_count() > 0) {
        outcome.usage = TokenUsage{stream_options.input_tokens_hint, translator.delta_count()};
    }
    if (first_chunk) {
        outcome.ttft_secs = std::chrono::duration<double>(*first_chunk - started).count();
        double window = std::chrono::duration<double>(last_chunk - *first_chunk).count();
        outcome.stream_secs =
            window > 0 ? window : std::chrono::duration<double>(last_chunk - started).count();
    }
    finish_metering(state, guard, principal, outcome, rlog);
    if (!client_gone) {
        co_await writer.finish();
    }
    co_return net::Response{};
}

asio::awaitable<net::Response> handle_count_tokens(GatewayState& state, net::Request& request) {
    const RequestLog rlog = request_log_of(request, state);
    auto parsed = request.json_body();
    if (!parsed) {
        co_return anthropic_error_response(parsed.error());
    }
    if (!parsed->is_object()) {
        co_return anthropic_error_response(
            Error(ErrorCode::kInvalidRequest, "request body must be a JSON object"));
    }
    const std::string requested = parsed->value("model", std::string());
    // Exact count from a neuron that serves the model, when one can answer.
    if (!requested.empty()) {
        auto snap = state.fleet->snapshot();
        auto decision = resolve_route(requested, *snap, state.catalogue,
                                      state.config.gateway.default_model);
        if (decision && decision->kind == RouteDecision::Kind::kRoute) {
            auto tokenize = wire::anthropic_to_tokenize_request(*parsed,
                                                                decision->target.upstream_model);
            if (!tokenize) {
                co_return anthropic_error_response(tokenize.error());
            }
            const NodeState* node = snap->find(decision->target.node);
            const std::string base = node != nullptr ? node->endpoint : decision->target.base_url;
            auto res = co_await state.client.post_json(base + "/tokenize", *tokenize);
            if (res && res->status == 200) {
                if (auto json = res->json(); json && json->is_object()) {
                    auto count = json->find("count");
                    if (count != json->end() && count->is_number_integer()) {
                        co_return net::Response::json(
                            wire::count_tokens_response(count->get<int64_t>()));
                    }
                }
            }
            rlog.debug("tokenize on {} unavailable; estimating", decision->target.node);
        }
    }
    co_return net::Response::json(
        wire::count_tokens_response(wire::estimate_anthropic_tokens(*parsed)));
}

}  // namespace helexa::gateway::detail
