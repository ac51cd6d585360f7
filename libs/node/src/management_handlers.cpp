// GET /discovery /health /models /models/{id*}/endpoint /version, POST /models/load
// /models/unload /tokenize /detokenize.
#include <limits>

#include <fmt/format.h>

#include "helexa/common/build_info.h"
#include "helexa/common/json.h"
#include "helexa/node/chat_request.h"
#include "server_state.h"

namespace helexa::node {

using nlohmann::json;

namespace {

constexpr int64_t kMiB = 1024 * 1024;

}  // namespace

int64_t effective_input_limit(const State& state, const engine::ModelDescriptor& d) {
    int64_t input = d.limit.input;
    if (state.config.knobs.max_prompt_tokens && input > 0) {
        input = std::min(input, *state.config.knobs.max_prompt_tokens);
    } else if (state.config.knobs.max_prompt_tokens) {
        input = *state.config.knobs.max_prompt_tokens;
    }
    return input;
}

namespace {

wire::ModelInfo model_info(const State& state, const ModelHandle& h) {
    wire::ModelInfo info;
    info.id = h.id;
    info.status = h.status;
    if (h.model) {
        auto d = h.model->descriptor();
        for (int dev : d.devices) {
            info.devices.push_back(dev);
        }
        info.vram_mb = (d.weight_bytes + d.kv_pool_bytes) / kMiB;
        info.capabilities = d.capabilities;
        info.tool_call = d.tool_call;
        info.reasoning = d.reasoning;
        if (d.limit.context > 0) {
            info.limit = wire::ModelLimit{d.limit.context, effective_input_limit(state, d),
                                          d.limit.output};
        }
    }
    return info;
}

net::Response load_response(const LoadOutcome& o) {
    if (o.preflight) {
        return net::Response::json(422, wire::preflight_error_body(o.preflight->error));
    }
    if (o.error) {
        switch (o.error->code()) {
            case ErrorCode::kCudaUnavailable:
            case ErrorCode::kServiceUnavailable:
            case ErrorCode::kInsufficientVram:
            case ErrorCode::kModelRecovering: {
                Error e = *o.error;
                if (!e.retry_after_secs() && e.code() == ErrorCode::kInsufficientVram) {
                    e.with_retry_after(5);
                }
                return net::Response::error(e);
            }
            default:
                // The original answers other load failures with 400 and the full error chain.
                return net::Response::error(
                    Error(ErrorCode::kInvalidRequest, o.error->full_message()));
        }
    }
    json body{{"model_id", o.model_id},
              {"status", o.already_loaded ? "already loaded" : "loaded"},
              {"message", fmt::format("model {} {}", o.model_id,
                                      o.already_loaded ? "already loaded" : "loaded")}};
    return net::Response::json(200, body);
}

Result<ModelHandle> loaded_model(const State& state, const std::string& requested) {
    auto h = state.registry.find(registry_key(state, requested));
    if (!h || !h->model) {
        return fail(Error(ErrorCode::kModelNotFound,
                          fmt::format("model '{}' is not loaded on this neuron", requested))
                        .with_param("model"));
    }
    return *h;
}

}  // namespace

void add_management_routes(net::Router& router, std::shared_ptr<State> state) {
    router.get("/discovery", [state](net::Request&) -> asio::awaitable<net::Response> {
        wire::DiscoveryResponse d;
        d.hostname = state->hostname;
        d.os = state->os;
        d.driver_version = state->discovery.driver_version;
        d.cuda_version = state->discovery.cuda_version;
        d.devices = state->discovery.devices;
        d.harnesses = state->config.harnesses;
        d.cuda_unavailable_reason = state->cuda_reason;
        for (const auto& h : state->registry.list()) {
            if (h.model) {
                d.max_prompt_tokens = std::max(d.max_prompt_tokens,
                                               effective_input_limit(*state, h.model->descriptor()));
            }
        }
        co_return net::Response::json(json(d));
    });

    router.get("/health", [state](net::Request&) -> asio::awaitable<net::Response> {
        wire::HealthResponse r;
        r.devices = state->gpu ? state->gpu->health() : std::vector<wire::DeviceHealth>{};
        r.activation = state->activation.snapshot();
        for (const auto& h : state->registry.list()) {
            if (h.admission) {
                auto load = h.admission->load();
                r.models.push_back({h.id, load.in_flight, load.queue_depth});
            }
        }
        co_return net::Response::json(json(r));
    });

    router.get("/models", [state](net::Request&) -> asio::awaitable<net::Response> {
        json list = json::array();
        for (const auto& h : state->registry.list()) {
            list.push_back(model_info(*state, h));
        }
        co_return net::Response::json(list);
    });

    router.get("/models/{id*}/endpoint",
               [state](net::Request& req) -> asio::awaitable<net::Response> {
                   std::string id(req.path_param("id"));
                   auto h = loaded_model(*state, id);
                   if (!h) {
                       co_return net::Response::error(h.error());
                   }
                   co_return net::Response::json(
                       {{"model_id", h->id},
                        {"endpoint", fmt::format("http://localhost:{}", state->port)}});
               });

    router.get("/version", [](net::Request&) -> asio::awaitable<net::Response> {
        co_return net::Response::json(build_info_json());
    });

    router.post("/models/load", [state](net::Request& req) -> asio::awaitable<net::Response> {
        auto body = req.json_body();
        if (!body) {
            co_return net::Response::error(body.error());
        }
        auto spec = wire::parse_model_spec(*body);
        if (!spec) {
            co_return net::Response::error(spec.error());
        }
        auto outcome = co_await load_model(state, std::move(*spec));
        co_return load_response(outcome);
    });

    router.post("/models/unload", [state](net::Request& req) -> asio::awaitable<net::Response> {
        auto body = req.json_body();
        if (!body) {
            co_return net::Response::error(body.error());
        }
        auto model_id = get_string(*body, "model_id");
        if (!model_id) {
            co_return net::Response::error(model_id.error());
        }
        auto key = registry_key(*state, *model_id);
        auto h = state->registry.remove_loaded(key);
        if (!h) {
            co_return net::Response::error(
                Error(ErrorCode::kModelNotFound,
                      fmt::format("model '{}' is not loaded on this neuron", *model_id)));
        }
        auto engine = state->engine;
        auto job = [engine, key]() -> Status { return engine->unload(key); };
        auto st = co_await run_blocking(*state->load_pool, state->io->context().get_executor(),
                                        std::move(job));
        if (!st) {
            state->log->error("unload {} failed: {}", key, st.error().full_message());
            co_return net::Response::error(st.error());
        }
        state->log->info("unloaded {}", key);
        co_return net::Response::json(
            {{"model_id", key}, {"status", "unloaded"}, {"message", "model " + key + " unloaded"}});
    });

    router.post("/tokenize", [state](net::Request& req) -> asio::awaitable<net::Response> {
        auto body = req.json_body();
        if (!body) {
            co_return net::Response::error(body.error());
        }
        auto tr = wire::parse_tokenize_request(*body);
        if (!tr) {
            co_return net::Response::error(tr.error());
        }
        auto h = loaded_model(*state, tr->model);
        if (!h) {
            co_return net::Response::error(h.error());
        }
        Result<std::vector<int32_t>> tokens = std::vector<int32_t>{};
        if (tr->is_chat()) {
            // The chat form goes through exactly the request path inference uses.
            json chat = *body;
            chat.erase("prompt");
            chat.erase("add_special_tokens");
            auto plan = parse_chat_request(chat, header_truthy(req.header("x-include-thinking")));
            if (!plan) {
                co_return net::Response::error(plan.error());
            }
            auto prompt =
                co_await build_chat_prompt(state, h->model, plan->render, plan->has_tools);
            if (!prompt) {
                co_return net::Response::error(prompt.error());
            }
            tokens = std::move(prompt->tokens);
        } else {
            auto model = h->model;
            auto text = tr->prompt.value_or("");
            bool special = tr->add_special_tokens.value_or(true);
            auto job = [model, text, special] { return model->encode(text, special); };
            tokens = co_await run_blocking(*state->cpu_pool, state->io->context().get_executor(),
                                           std::move(job));
        }
        if (!tokens) {
            co_return net::Response::error(tokens.error());
        }
        wire::TokenizeResponse r{*tokens, static_cast<int64_t>(tokens->size())};
        co_return net::Response::json(json(r));
    });

    router.post("/detokenize", [state](net::Request& req) -> asio::awaitable<net::Response> {
        auto body = req.json_body();
        if (!body) {
            co_return net::Response::error(body.error());
        }
        auto model_name = get_string(*body, "model");
        if (!model_name) {
            co_return net::Response::error(model_name.error());
        }
        auto arr = get_array(*body, "tokens");
        if (!arr) {
            co_return net::Response::error(arr.error());
        }
        std::vector<int32_t> ids;
        for (const auto& t : **arr) {
            if (!t.is_number_integer() || t.get<int64_t>() < 0 ||
                t.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
                co_return net::Response::error(
                    Error(ErrorCode::kInvalidRequest, "'tokens' must hold non-negative token ids")
                        .with_param("tokens"));
            }
            ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
        }
        auto h = loaded_model(*state, *model_name);
        if (!h) {
            co_return net::Response::error(h.error());
        }
        auto model = h->model;
        auto job = [model, ids] { return model->decode(ids, false); };
        auto text = co_await run_blocking(*state->cpu_pool, state->io->context().get_executor(),
                                          std::move(job));
        if (!text) {
            co_return net::Response::error(text.error());
        }
        co_return net::Response::json(json(wire::DetokenizeResponse{*text}));
    });
}

}  // namespace helexa::node
