// An in-process mock neuron: a real HTTP server (libs/net) on 127.0.0.1:0 serving scripted
// /discovery, /health, /models, /models/{id}/endpoint, /models/load|unload, /tokenize and the
// inference routes, with hit counting and the last request captured.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_future.hpp>
#include <nlohmann/json.hpp>

#include "helexa/net/client.h"
#include "helexa/net/deadline.h"
#include "helexa/net/server.h"

namespace helexa::gateway::testing {

namespace asio = boost::asio;
using nlohmann::json;

struct Script {
    int status = 200;
    net::Headers headers{{"Content-Type", "application/json"}};
    std::vector<std::string> chunks;  // body pieces, written one by one
    std::chrono::milliseconds delay{0};  // before each chunk
};

// An OpenAI SSE stream of `words`, with usage, split into pieces of `piece` bytes so event
// boundaries fall mid-line.
inline std::vector<std::string> sse_chunks(const std::vector<std::string>& words, int prompt,
                                           size_t piece = 7) {
    std::string all;
    for (size_t i = 0; i < words.size(); ++i) {
        json chunk = {{"id", "chatcmpl-1"},
                      {"object", "chat.completion.chunk"},
                      {"choices",
                       {{{"index", 0},
                         {"delta", i == 0 ? json{{"role", "assistant"}, {"content", words[i]}}
                                          : json{{"content", words[i]}}},
                         {"finish_reason", nullptr}}}}};
        all += "data: " + chunk.dump() + "\n\n";
    }
    json finish = {{"id", "chatcmpl-1"},
                   {"object", "chat.completion.chunk"},
                   {"choices", {{{"index", 0}, {"delta", json::object()},
                                 {"finish_reason", "stop"}}}}};
    all += "data: " + finish.dump() + "\n\n";
    json usage = {{"id", "chatcmpl-1"},
                  {"object", "chat.completion.chunk"},
                  {"choices", json::array()},
                  {"usage",
                   {{"prompt_tokens", prompt},
                    {"completion_tokens", static_cast<int>(words.size())},
                    {"total_tokens", prompt + static_cast<int>(words.size())}}}};
    all += "data: " + usage.dump() + "\n\ndata: [DONE]\n\n";
    std::vector<std::string> out;
    for (size_t i = 0; i < all.size(); i += piece) {
        out.push_back(all.substr(i, piece));
    }
    return out;
}

inline Script sse_script(const std::vector<std::string>& words, int prompt = 10) {
    Script s;
    s.headers = net::Headers{{"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"}};
    s.chunks = sse_chunks(words, prompt);
    return s;
}

inline Script json_script(const json& body, int status = 200) {
    Script s;
    s.status = status;
    s.chunks = {body.dump()};
    return s;
}

inline json chat_completion(const std::string& text, int prompt, int completion) {
    return {{"id", "chatcmpl-9"},
            {"object", "chat.completion"},
            {"model", "m"},
            {"choices",
             {{{"index", 0},
               {"message", {{"role", "assistant"}, {"content", text}}},
               {"finish_reason", "stop"}}}},
            {"usage",
             {{"prompt_tokens", prompt},
              {"completion_tokens", completion},
              {"total_tokens", prompt + completion}}}};
}

class MockNeuron {
public:
    MockNeuron() : io_(1) {
        net::Router router;
        router.get("/discovery", [this](net::Request&) -> asio::awaitable<net::Response> {
            ++discovery_hits;
            std::lock_guard lock(mutex_);
            co_return net::Response::json(discovery_);
        });
        router.get("/health", [this](net::Request&) -> asio::awaitable<net::Response> {
            std::lock_guard lock(mutex_);
            if (failing_) {
                co_return net::Response::text(500, "down");
            }
            co_return net::Response::json(health_);
        });
        router.get("/models", [this](net::Request&) -> asio::awaitable<net::Response> {
            std::lock_guard lock(mutex_);
            if (failing_) {
                co_return net::Response::text(500, "down");
            }
            co_return net::Response::json(models_);
        });
        router.get("/models/{id*}/endpoint",
                   [this](net::Request&) -> asio::awaitable<net::Response> {
                       co_return net::Response::json(
                           {{"endpoint", "http://localhost:" + std::to_string(port()) + "/"}});
                   });
        router.post("/models/load", [this](net::Request& req) -> asio::awaitable<net::Response> {
            ++load_hits;
            auto spec = json::parse(req.body, nullptr, false);
            {
                std::lock_guard lock(mutex_);
                last_load_ = spec;
            }
            co_await net::sleep_for(load_delay_);
            std::lock_guard lock(mutex_);
            if (load_status_ != 200) {
                co_return net::Response::json(load_status_, {{"error", {{"message", "nope"}}}});
            }
            std::string id = spec.value("model_id", "");
            models_.push_back({{"id", id}, {"status", "loaded"}, {"capabilities", {"text"}}});
            co_return net::Response::json({{"status", "loaded"}, {"model_id", id}});
        });
        router.post("/models/unload", [this](net::Request& req) -> asio::awaitable<net::Response> {
            ++unload_hits;
            auto spec = json::parse(req.body, nullptr, false);
            std::lock_guard lock(mutex_);
            unloaded_.push_back(spec.value("model_id", ""));
            co_return net::Response::json({{"status", "unloaded"}});
        });
        router.post("/tokenize", [this](net::Request&) -> asio::awaitable<net::Response> {
            ++tokenize_hits;
            co_return net::Response::json({{"tokens", json::array()}, {"count", 4242}});
        });
        for (const char* path : {"/v1/chat/completions", "/v1/completions", "/v1/responses"}) {
            router.post(path, [this](net::Request& req,
                                     net::ResponseWriter& w) -> asio::awaitable<net::Response> {
                return serve_inference(req, w);
            });
        }
        server_ = std::make_unique<net::Server>(io_, net::ServerOptions{}, std::move(router));
        auto st = server_->start();
        if (!st) {
            throw std::runtime_error(st.error().message());
        }
        io_.start();
        set_devices(1, 24000);
        set_models(json::array());
    }

    ~MockNeuron() {
        server_->stop();
        io_.stop();
        io_.join();
    }

    uint16_t port() const { return server_->port(); }
    std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port()); }

    void set_devices(int n, int64_t vram_mb) {
        std::lock_guard lock(mutex_);
        json devices = json::array();
        for (int i = 0; i < n; ++i) {
            devices.push_back({{"index", i}, {"name", "GPU"}, {"total_vram_mb", vram_mb}});
        }
        discovery_ = {{"hostname", "mock"}, {"os", "linux"}, {"devices", devices},
                      {"harnesses", {"candle"}}, {"max_prompt_tokens", 32768}};
    }
    // Models as ModelInfo objects; load per model id as {in_flight, queue_depth}.
    void set_models(json models, json load = json::object(), json activation = nullptr) {
        std::lock_guard lock(mutex_);
        models_ = std::move(models);
        json loads = json::array();
        for (auto& [id, l] : load.items()) {
            loads.push_back({{"id", id}, {"in_flight", l[0]}, {"queue_depth", l[1]}});
        }
        health_ = {{"status", "ok"}, {"devices", json::array()}, {"models", loads}};
        health_["activation"] = activation.is_null()
                                    ? json{{"state", "ready"}, {"pending", json::array()},
                                           {"in_progress", nullptr},
                                           {"completed", json::array()},
                                           {"failed", json::array()}}
                                    : activation;
    }
    void set_health_devices(int64_t free_mb, int64_t total_mb) {
        std::lock_guard lock(mutex_);
        health_["devices"] = {{{"index", 0}, {"name", "GPU"}, {"vram_total_mb", total_mb},
                               {"vram_used_mb", total_mb - free_mb}, {"vram_free_mb", free_mb}}};
    }
    void set_failing(bool failing) {
        std::lock_guard lock(mutex_);
        failing_ = failing;
    }
    void set_script(Script script) {
        std::lock_guard lock(mutex_);
        script_ = std::move(script);
    }
    // Chooses the script per request from the parsed request body (overrides set_script).
    void set_responder(std::function<Script(const json& body)> responder) {
        std::lock_guard lock(mutex_);
        responder_ = std::move(responder);
    }
    void set_load(int status, std::chrono::milliseconds delay = {}) {
        std::lock_guard lock(mutex_);
        load_status_ = status;
        load_delay_ = delay;
    }

    net::Headers last_headers() {
        std::lock_guard lock(mutex_);
        return last_headers_;
    }
    json last_body() {
        std::lock_guard lock(mutex_);
        return last_body_;
    }
    json last_load() {
        std::lock_guard lock(mutex_);
        return last_load_;
    }
    std::vector<std::string> unloaded() {
        std::lock_guard lock(mutex_);
        return unloaded_;
    }

    std::atomic<int> inference_hits{0};
    std::atomic<int> load_hits{0};
    std::atomic<int> unload_hits{0};
    std::atomic<int> discovery_hits{0};
    std::atomic<int> tokenize_hits{0};
    std::atomic<int> client_gone{0};

private:
    asio::awaitable<net::Response> serve_inference(net::Request& req, net::ResponseWriter& w) {
        ++inference_hits;
        Script script;
        {
            std::lock_guard lock(mutex_);
            last_headers_ = req.headers;
            last_body_ = json::parse(req.body, nullptr, false);
            script = responder_ ? responder_(last_body_) : script_;
        }
        if (!co_await w.start(script.status, script.headers)) {
            co_return net::Response{};
        }
        for (const auto& chunk : script.chunks) {
            if (script.delay.count() > 0) {
                co_await net::sleep_for(script.delay);
            }
            if (!co_await w.write(chunk)) {
                ++client_gone;
                co_return net::Response{};
            }
        }
        co_await w.finish();
        co_return net::Response{};
    }

    net::IoPool io_;
    std::unique_ptr<net::Server> server_;
    std::mutex mutex_;
    json discovery_;
    json health_;
    json models_ = json::array();
    bool failing_ = false;
    Script script_;
    std::function<Script(const json&)> responder_;
    int load_status_ = 200;
    std::chrono::milliseconds load_delay_{0};
    net::Headers last_headers_;
    json last_body_;
    json last_load_;
    std::vector<std::string> unloaded_;
};

// A blocking HTTP client for tests (its own I/O thread).
class TestClient {
public:
    TestClient() : io_(1), client_(io_.context().get_executor()) { io_.start(); }
    ~TestClient() {
        io_.stop();
        io_.join();
    }

    Result<net::ClientResponse> request(net::ClientRequest req) {
        return asio::co_spawn(io_.context(), client_.request(std::move(req)), asio::use_future)
            .get();
    }
    Result<net::ClientResponse> post(const std::string& url, const json& body,
                                     net::Headers headers = {}) {
        net::ClientRequest req;
        req.method = "POST";
        req.url = url;
        req.headers = std::move(headers);
        req.headers.set("Content-Type", "application/json");
        req.body = body.dump();
        return request(std::move(req));
    }
    Result<net::ClientResponse> get(const std::string& url, net::Headers headers = {}) {
        net::ClientRequest req;
        req.url = url;
        req.headers = std::move(headers);
        return request(std::move(req));
    }
    // Future form for concurrent requests.
    std::future<Result<net::ClientResponse>> post_async(const std::string& url, const json& body,
                                                        net::Headers headers = {}) {
        net::ClientRequest req;
        req.method = "POST";
        req.url = url;
        req.headers = std::move(headers);
        req.headers.set("Content-Type", "application/json");
        req.body = body.dump();
        return asio::co_spawn(io_.context(), client_.request(std::move(req)), asio::use_future);
    }

private:
    net::IoPool io_;
    net::Client client_;
};

}  // namespace helexa::gateway::testing
