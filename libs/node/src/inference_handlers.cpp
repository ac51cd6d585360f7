// POST /v1/chat/completions, /v1/completions, /v1/responses: parse, validate, admit, submit to the
// engine, project its events (streamed as SSE or collected into one response).
#include <atomic>
#include <ctime>
#include <functional>

#include <fmt/format.h>

#include "helexa/net/deadline.h"
#include "helexa/node/chat_request.h"
#include "helexa/node/projection.h"
#include "helexa/wire/responses_request.h"
#include "server_state.h"

namespace helexa::node {

using nlohmann::json;
using engine::EngineEvent;

namespace {

struct Frame {
    std::string name;  // SSE event name; empty for OpenAI chunks
    std::string data;
};

// The projector behind one request, type-erased so one generation loop serves all three routes.
struct Adapter {
    std::function<std::vector<Frame>()> start;
    std::function<std::vector<Frame>(const EngineEvent&)> feed;
    std::function<bool()> finished;
    std::function<std::optional<Error>()> error;
    std::function<json()> final_body;
    bool send_done = true;  // `data: [DONE]` (OpenAI); Responses ends without it
};

std::vector<Frame> json_frames(const std::vector<json>& chunks) {
    std::vector<Frame> out;
    for (const auto& c : chunks) {
        out.push_back({"", c.dump()});
    }
    return out;
}

std::vector<Frame> sse_frames(const std::vector<SseEvent>& events) {
    std::vector<Frame> out;
    for (const auto& e : events) {
        out.push_back({e.name, e.data.dump()});
    }
    return out;
}

// Principal from the headers cortex stamps (never from the body); "" = anonymous.
std::string principal_of(const net::Request& req) {
    std::string account(req.header("x-helexa-account-id").value_or(""));
    std::string key(req.header("x-helexa-key-id").value_or(""));
    if (account.empty() && key.empty()) {
        return "";
    }
    return account + "/" + key;
}

// Transient engine refusals always carry a Retry-After (features §4, D7, D9).
Error with_retry_defaults(Error e) {
    if (!e.retry_after_secs()) {
        switch (e.code()) {
            case ErrorCode::kInsufficientVram:
            case ErrorCode::kServiceUnavailable:
                e.with_retry_after(5);
                break;
            case ErrorCode::kModelRecovering:
                e.with_retry_after(2);
                break;
            case ErrorCode::kOverloaded:
            case ErrorCode::kRateLimited:
                e.with_retry_after(1);
                break;
            default:
                break;
        }
    }
    return e;
}

Result<ModelHandle> find_model(const State& state, const std::string& requested) {
    if (!state.engine) {
        return fail(service_unavailable_error("no inference engine in this neuron", 5));
    }
    auto h = state.registry.find(registry_key(state, requested));
    if (!h) {
        return fail(Error(ErrorCode::kModelNotFound,
                          fmt::format("model '{}' is not loaded on this neuron", requested))
                        .with_param("model"));
    }
    if (!h->model) {
        return fail(service_unavailable_error(fmt::format("model '{}' is loading", requested), 5));
    }
    if (h->status == wire::ModelStatus::kRecovering || h->status == wire::ModelStatus::kPoisoned) {
        // Never fall through to a load: that would race the engine's own reload.
        return fail(Error(ErrorCode::kModelRecovering,
                          fmt::format("model '{}' is recovering from a device fault; retry "
                                      "shortly",
                                      requested))
                        .with_retry_after(2));
    }
    return *h;
}

Status check_context(const State& state, const ModelHandle& h, size_t n_prompt) {
    int64_t max = effective_input_limit(state, h.model->descriptor());
    if (max > 0 && static_cast<int64_t>(n_prompt) > max) {
        return fail(context_length_exceeded_error(static_cast<int64_t>(n_prompt), max));
    }
    return ok();
}

std::string chatml_prompt(const engine::ChatRenderInput& input) {
    std::string out;
    for (const auto& m : input.messages) {
        std::string content;
        if (auto c = m.find("content"); c != m.end()) {
            if (c->is_string()) {
                content = c->get<std::string>();
            } else if (c->is_array()) {
                for (const auto& part : *c) {
                    if (part.is_object() && part.contains("text") && part["text"].is_string()) {
                        content += part["text"].get<std::string>();
                    }
                }
            }
        }
        std::string role = m.contains("role") && m["role"].is_string()
                               ? m["role"].get<std::string>()
                               : "user";
        out += "<|im_start|>" + role + "\n" + content + "<|im_end|>\n";
    }
    if (input.add_generation_prompt) {
        out += "<|im_start|>assistant\n";
    }
    return out;
}

// Admission, submission and the event loop shared by every inference route.
asio::awaitable<net::Response> generate(net::Request& req,
                                        net::ResponseWriter& w, ModelHandle h,
                                        engine::GenerateRequest greq, bool stream,
                                        Adapter adapter) {
    auto permit = co_await h.admission->enter(greq.principal);
    if (!permit) {
        co_return net::Response::error(permit.error());
    }
    auto events =
        std::make_shared<net::Channel<EngineEvent>>(co_await asio::this_coro::executor);
    auto model = h.model;
    auto id = model->submit(std::move(greq), [events](EngineEvent e) {
        bool terminal = e.kind == EngineEvent::Kind::kFinish ||
                        e.kind == EngineEvent::Kind::kError;
        events->push(std::move(e));
        if (terminal) {
            events->close();
        }
    });
    if (!id) {
        co_return net::Response::error(with_retry_defaults(id.error()));
    }
    uint64_t request_id = *id;
    // A hang-up is seen twice (the client-gone hook, then the failed write): cancel once.
    auto cancel_once = [model, request_id, done = std::make_shared<std::atomic<bool>>(false)] {
        if (!done->exchange(true)) {
            model->cancel(request_id);
        }
    };
    w.on_client_gone(cancel_once);

    // After a hang-up or write failure: cancel and let the engine wind the request down before
    // the admission slot is released, bounded so a stuck engine cannot pin the handler.
    auto cancel_and_drain = [&]() -> asio::awaitable<void> {
        cancel_once();
        auto drain = [&]() -> asio::awaitable<bool> {
            while (co_await events->receive()) {
            }
            co_return true;
        };
        (void)co_await net::with_timeout(drain(), std::chrono::seconds(5));
    };

    auto first = co_await events->receive();
    if (!first) {
        co_await cancel_and_drain();
        co_return net::Response::error(service_unavailable_error("request cancelled", 1));
    }
    if (first->kind == EngineEvent::Kind::kError) {
        co_return net::Response::error(
            with_retry_defaults(first->error.value_or(Error(ErrorCode::kInternal, "engine error"))));
    }
    if (!stream) {
        adapter.feed(*first);
        while (!adapter.finished()) {
            auto ev = co_await events->receive();
            if (!ev) {
                co_await cancel_and_drain();
                co_return net::Response::error(service_unavailable_error("request cancelled", 1));
            }
            adapter.feed(*ev);
        }
        if (auto e = adapter.error()) {
            co_return net::Response::error(with_retry_defaults(*e));
        }
        co_return net::Response::json(adapter.final_body());
    }

    net::SseWriter sse(w);
    if (!co_await sse.start()) {
        co_await cancel_and_drain();
        co_return net::Response{};
    }
    auto send = [&](const std::vector<Frame>& frames) -> asio::awaitable<bool> {
        for (const auto& f : frames) {
            if (!co_await sse.event(f.data, f.name)) {
                co_return false;
            }
        }
        co_return true;
    };
    auto frames = adapter.start();
    auto more = adapter.feed(*first);
    frames.insert(frames.end(), more.begin(), more.end());
    bool alive = co_await send(frames);
    while (alive && !adapter.finished()) {
        auto ev = co_await events->receive();
        if (!ev) {
            alive = false;
            break;
        }
        alive = co_await send(adapter.feed(*ev));
    }
    if (!alive) {
        co_await cancel_and_drain();
        co_await sse.finish();
        co_return net::Response{};
    }
    if (auto e = adapter.error(); e && adapter.send_done) {
        // Mid-stream failure: the status is already out, so the envelope travels as an event.
        co_await sse.event(openai_envelope(*e).body.dump());
    }
    if (adapter.send_done) {
        co_await sse.done();
    } else {
        co_await sse.finish();
    }
    (void)req;
    co_return net::Response{};
}

int64_t now_secs() { return static_cast<int64_t>(std::time(nullptr)); }

Adapter chat_adapter(std::shared_ptr<ChatProjector> p) {
    Adapter a;
    a.start = [p] { return json_frames(p->start()); };
    a.feed = [p](const EngineEvent& e) { return json_frames(p->on_event(e)); };
    a.finished = [p] { return p->finished(); };
    a.error = [p] { return p->error(); };
    a.final_body = [p] { return p->completion(); };
    return a;
}

Adapter completion_adapter(std::shared_ptr<CompletionProjector> p) {
    Adapter a;
    a.start = [] { return std::vector<Frame>{}; };
    a.feed = [p](const EngineEvent& e) { return json_frames(p->on_event(e)); };
    a.finished = [p] { return p->finished(); };
    a.error = [p] { return p->error(); };
    a.final_body = [p] { return p->completion(); };
    return a;
}

Adapter responses_adapter(std::shared_ptr<ResponsesProjector> p) {
    Adapter a;
    a.start = [p] { return sse_frames(p->start()); };
    a.feed = [p](const EngineEvent& e) { return sse_frames(p->on_event(e)); };
    a.finished = [p] { return p->finished(); };
    a.error = [p] { return p->error(); };
    a.final_body = [p] { return p->response(); };
    a.send_done = false;
    return a;
}

struct PreparedChat {
    ModelHandle handle;
    engine::GenerateRequest request;
};

asio::awaitable<Result<PreparedChat>> prepare_chat(std::shared_ptr<State> state,
                                                   net::Request& req, const ChatPlan& plan) {
    auto h = find_model(*state, plan.model);
    if (!h) {
        co_return fail(h.error());
    }
    auto d = h->model->descriptor();
    if (plan.has_images &&
        std::find(d.capabilities.begin(), d.capabilities.end(), "vision") == d.capabilities.end()) {
        co_return fail(Error(ErrorCode::kVisionUnsupported,
                             fmt::format("model '{}' does not accept images", h->id))
                           .with_extra("model_id", h->id)
                           .with_extra("suggestion",
                                       "remove the image parts or use a vision-capable model"));
    }
    auto prompt = co_await build_chat_prompt(state, h->model, plan.render, plan.has_tools);
    if (!prompt) {
        co_return fail(prompt.error());
    }
    if (auto st = check_context(*state, *h, prompt->tokens.size()); !st) {
        co_return fail(st.error());
    }
    PreparedChat out{*h, {}};
    out.request.request_id = std::string(req.header("x-request-id").value_or(""));
    if (out.request.request_id.empty()) {
        out.request.request_id = new_request_id();
    }
    out.request.prompt_tokens = std::move(prompt->tokens);
    out.request.sampling = plan.sampling;
    out.request.tools = plan.render.tools;
    out.request.starts_in_reasoning = prompt->starts_in_reasoning;
    out.request.principal = principal_of(req);
    co_return out;
}

}  // namespace

asio::awaitable<Result<PromptTokens>> build_chat_prompt(std::shared_ptr<State> state,
                                                        std::shared_ptr<engine::LoadedModel> model,
                                                        engine::ChatRenderInput input,
                                                        bool has_tools) {
    bool use_template = state->config.knobs.use_chat_template;
    auto log = state->log;
    auto job = [model, input, has_tools, use_template, log]() -> Result<PromptTokens> {
        PromptTokens out;
        std::string text;
        auto rendered = use_template ? model->render_chat(input)
                                     : Result<engine::RenderedPrompt>(
                                           tl::unexpected(Error(ErrorCode::kTemplateRenderFailed,
                                                                "chat template disabled")));
        if (rendered) {
            text = rendered->text;
            out.starts_in_reasoning = rendered->starts_in_reasoning;
        } else if (has_tools) {
            // With tools a fallback prompt would silently drop them: refuse instead.
            return tl::unexpected(Error(ErrorCode::kTemplateRenderFailed,
                                        rendered.error().full_message()));
        } else {
            if (use_template) {
                log->warn("chat template failed ({}); falling back to ChatML",
                          rendered.error().full_message());
            }
            text = chatml_prompt(input);
        }
        auto tokens = model->encode(text, false);
        if (!tokens) {
            return tl::unexpected(tokens.error());
        }
        out.tokens = std::move(*tokens);
        return out;
    };
    co_return co_await run_blocking(*state->cpu_pool, state->io->context().get_executor(),
                                    std::move(job));
}

void add_inference_routes(net::Router& router, std::shared_ptr<State> state) {
    router.post("/v1/chat/completions",
                [state](net::Request& req,
                        net::ResponseWriter& w) -> asio::awaitable<net::Response> {
                    auto body = req.json_body();
                    if (!body) {
                        co_return net::Response::error(body.error());
                    }
                    bool thinking = header_truthy(req.header("x-include-thinking"));
                    auto plan = parse_chat_request(*body, thinking);
                    if (!plan) {
                        co_return net::Response::error(plan.error());
                    }
                    auto prepared = co_await prepare_chat(state, req, *plan);
                    if (!prepared) {
                        co_return net::Response::error(prepared.error());
                    }
                    auto projector = std::make_shared<ChatProjector>(ChatProjectionConfig{
                        "chatcmpl-" + new_request_id(), prepared->handle.id, now_secs(),
                        plan->reasoning, ReasoningMarkers{}});
                    co_return co_await generate(req, w, prepared->handle,
                                                std::move(prepared->request), plan->stream,
                                                chat_adapter(projector));
                });

    router.post("/v1/completions",
                [state](net::Request& req,
                        net::ResponseWriter& w) -> asio::awaitable<net::Response> {
                    auto body = req.json_body();
                    if (!body) {
                        co_return net::Response::error(body.error());
                    }
                    auto plan = parse_completion_request(*body);
                    if (!plan) {
                        co_return net::Response::error(plan.error());
                    }
                    auto h = find_model(*state, plan->model);
                    if (!h) {
                        co_return net::Response::error(h.error());
                    }
                    auto model = h->model;
                    Result<std::vector<int32_t>> tokens = std::vector<int32_t>{};
                    if (plan->prompt_tokens) {
                        tokens = std::move(*plan->prompt_tokens);  // ids checked at submit
                    } else {
                        auto text = plan->prompt;
                        auto job = [model, text] { return model->encode(text, true); };
                        tokens = co_await run_blocking(*state->cpu_pool,
                                                       state->io->context().get_executor(),
                                                       std::move(job));
                    }
                    if (!tokens) {
                        co_return net::Response::error(tokens.error());
                    }
                    if (auto st = check_context(*state, *h, tokens->size()); !st) {
                        co_return net::Response::error(st.error());
                    }
                    engine::GenerateRequest greq;
                    greq.request_id = new_request_id();
                    greq.prompt_tokens = std::move(*tokens);
                    greq.sampling = plan->sampling;
                    greq.principal = principal_of(req);
                    auto projector = std::make_shared<CompletionProjector>(
                        "cmpl-" + new_request_id(), h->id, now_secs());
                    co_return co_await generate(req, w, *h, std::move(greq), plan->stream,
                                                completion_adapter(projector));
                });

    router.post("/v1/responses",
                [state](net::Request& req,
                        net::ResponseWriter& w) -> asio::awaitable<net::Response> {
                    auto body = req.json_body();
                    if (!body) {
                        co_return net::Response::error(body.error());
                    }
                    if (body->is_object() && body->contains("previous_response_id") &&
                        !(*body)["previous_response_id"].is_null()) {
                        co_return net::Response::error(
                            Error(ErrorCode::kChainedConversationUnsupported,
                                  "previous_response_id is not supported: send the whole "
                                  "conversation in `input`")
                                .with_param("previous_response_id"));
                    }
                    auto chat = wire::responses_to_chat(*body);
                    if (!chat) {
                        co_return net::Response::error(chat.error());
                    }
                    bool thinking = header_truthy(req.header("x-include-thinking"));
                    auto plan = parse_chat_request(chat->body, thinking);
                    if (!plan) {
                        co_return net::Response::error(plan.error());
                    }
                    auto prepared = co_await prepare_chat(state, req, *plan);
                    if (!prepared) {
                        co_return net::Response::error(prepared.error());
                    }
                    ResponsesProjectionConfig cfg;
                    cfg.id = "resp_" + new_request_id();
                    cfg.model = prepared->handle.id;
                    cfg.created_at = now_secs();
                    cfg.show_reasoning = plan->reasoning != ReasoningDisplay::kHidden;
                    for (const char* key : {"instructions", "max_output_tokens", "temperature",
                                            "top_p", "tools", "tool_choice", "metadata"}) {
                        if (body->contains(key)) {
                            cfg.echo[key] = (*body)[key];
                        }
                    }
                    auto projector = std::make_shared<ResponsesProjector>(std::move(cfg));
                    co_return co_await generate(req, w, prepared->handle,
                                                std::move(prepared->request), chat->stream,
                                                responses_adapter(projector));
                });
}

}  // namespace helexa::node
