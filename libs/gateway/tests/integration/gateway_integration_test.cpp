// cortex against in-process mock neurons over real sockets (127.0.0.1, port 0).
#include <filesystem>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "helexa/gateway/server.h"
#include "helexa/net/sse.h"
#include "mock_neuron.h"

namespace helexa::gateway {
namespace {

using testing::chat_completion;
using testing::json;
using testing::json_script;
using testing::MockNeuron;
using testing::sse_script;
using testing::TestClient;
namespace asio = boost::asio;

json model_info(const std::string& id, const std::string& status = "loaded",
                std::optional<json> limit = std::nullopt) {
    json m = {{"id", id}, {"status", status}, {"capabilities", {"text"}}, {"tool_call", true}};
    if (limit) {
        m["limit"] = *limit;
    }
    return m;
}

json chat_body(const std::string& model, bool stream = false, std::string text = "hello") {
    return {{"model", model},
            {"stream", stream},
            {"max_tokens", 16},
            {"messages", {{{"role", "user"}, {"content", text}}}}};
}

class Cortex {
public:
    explicit Cortex(std::vector<MockNeuron*> neurons, std::function<void(CortexOptions&)> tweak = {}) {
        CortexOptions options;
        options.config.gateway.listen = "127.0.0.1:0";
        options.config.gateway.metrics_listen = "127.0.0.1:0";
        options.config.gateway.poll_interval_secs = 3600;  // tests poll explicitly
        options.config.gateway.state_dir = state_dir();
        char name = 'a';
        for (auto* n : neurons) {
            options.config.neurons.push_back({std::string("node-") + name++, n->endpoint()});
        }
        options.catalogue = Catalogue{};
        if (tweak) {
            tweak(options);
        }
        auto st = server.start(std::move(options));
        EXPECT_TRUE(st) << (st ? "" : st.error().message());
    }

    static std::string state_dir() {
        return (std::filesystem::path(::testing::TempDir()) /
                ("cortex-it-" + std::to_string(::getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name()))
            .string();
    }

    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(server.port()) + path;
    }
    std::string metrics_url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(server.metrics_port()) + path;
    }

    CortexServer server;
};

TEST(GatewayIntegration, HealthRootAndModels) {
    MockNeuron a;
    a.set_models(json::array({model_info("m", "loaded", json{{"context", 4096}, {"output", 512}})}));
    Cortex cortex({&a}, [](CortexOptions& o) {
        ModelProfile p;
        p.id = "cat-only";
        p.cost = ModelCost{1, 2, std::nullopt, std::nullopt};
        o.catalogue->models.push_back(p);
        o.catalogue->aliases["tier/m"] = "m";
    });
    TestClient client;
    auto health = client.get(cortex.url("/health"));
    ASSERT_TRUE(health) << health.error().message();
    EXPECT_EQ(health->status, 200);
    EXPECT_EQ(json::parse(health->body)["healthy_nodes"], 1);
    auto root = client.get(cortex.url("/"));
    ASSERT_TRUE(root);
    EXPECT_EQ(root->status, 200);

    auto models = client.get(cortex.url("/v1/models"));
    ASSERT_TRUE(models);
    auto j = json::parse(models->body);
    std::map<std::string, json> by_id;
    for (const auto& e : j["data"]) {
        by_id[e["id"]] = e;
    }
    ASSERT_TRUE(by_id.contains("m"));
    EXPECT_EQ(by_id["m"]["loaded"], true);
    EXPECT_EQ(by_id["m"]["limit"]["context"], 4096);
    EXPECT_EQ(by_id["m"]["tool_call"], true);
    ASSERT_TRUE(by_id.contains("tier/m"));
    EXPECT_EQ(by_id["tier/m"]["loaded"], true);
    ASSERT_TRUE(by_id.contains("cat-only"));
    EXPECT_EQ(by_id["cat-only"]["loaded"], false);
    EXPECT_EQ(by_id["cat-only"]["feasible_on"], json::array({"node-a"}));
    EXPECT_EQ(by_id["cat-only"]["cost"]["output"], 2);
}

TEST(GatewayIntegration, RoutesToLeastBusyReplicaAndRewritesAlias) {
    MockNeuron a;
    MockNeuron b;
    a.set_models(json::array({model_info("m")}), json{{"m", {3, 1}}});
    b.set_models(json::array({model_info("m")}), json{{"m", {0, 1}}});
    a.set_script(json_script(chat_completion("from a", 3, 2)));
    b.set_script(json_script(chat_completion("from b", 3, 2)));
    // (A std::string, not the literal: assigning a one-character literal trips GCC 12's false
    // -Wrestrict at -O3, GCC bug 105329, an error under the release preset's -Werror.)
    Cortex cortex({&a, &b},
                  [](CortexOptions& o) { o.catalogue->aliases["fast"] = std::string("m"); });
    TestClient client;
    auto res = client.post(cortex.url("/v1/chat/completions"), chat_body("fast"));
    ASSERT_TRUE(res) << res.error().message();
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(json::parse(res->body)["choices"][0]["message"]["content"], "from b");
    EXPECT_EQ(b.inference_hits, 1);
    EXPECT_EQ(a.inference_hits, 0);
    EXPECT_EQ(b.last_body()["model"], "m");  // alias rewritten to the concrete id

    // The load flips; after a poll the other replica wins.
    a.set_models(json::array({model_info("m")}), json{{"m", {0, 0}}});
    b.set_models(json::array({model_info("m")}), json{{"m", {5, 5}}});
    cortex.server.poll_now();
    res = client.post(cortex.url("/v1/chat/completions"), chat_body("m"));
    ASSERT_TRUE(res);
    EXPECT_EQ(a.inference_hits, 1);
}

TEST(GatewayIntegration, BackpressurePassesThroughVerbatim) {
    MockNeuron a;
    a.set_models(json::array({model_info("m")}));
    testing::Script busy = json_script(
        {{"error", {{"message", "busy"}, {"type", "rate_limit_error"},
                    {"code", "rate_limit_exceeded"}, {"param", nullptr}}}},
        503);
    busy.headers.set("Retry-After", "7");
    a.set_script(busy);
    Cortex cortex({&a});
    TestClient client;
    auto res = client.post(cortex.url("/v1/chat/completions"), chat_body("m"));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 503);
    EXPECT_EQ(res->headers.get_or("retry-after", ""), "7");
    EXPECT_EQ(json::parse(res->body)["error"]["code"], "rate_limit_exceeded");

    busy.status = 429;
    busy.headers.set("Retry-After", "1");
    a.set_script(busy);
    res = client.post(cortex.url("/v1/chat/completions"), chat_body("m"));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 429);
    EXPECT_EQ(res->headers.get_or("retry-after", ""), "1");
}

TEST(GatewayIntegration, StreamingIsForwardedByteExactAndMetered) {
    MockNeuron a;
    a.set_models(json::array({model_info("m")}));
    auto script = sse_script({"Hel", "lo", " wor", "ld"}, 11);
    std::string expected;
    for (const auto& c : script.chunks) {
        expected += c;
    }
    a.set_script(script);
    Cortex cortex({&a});
    TestClient client;
    auto res = client.post(cortex.url("/v1/chat/completions"), chat_body("m", true));
    ASSERT_TRUE(res) << res.error().message();
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->headers.get_or("content-type", ""), "text/event-stream");
    EXPECT_EQ(res->body, expected);
    auto metrics = client.get(cortex.metrics_url("/metrics"));
    ASSERT_TRUE(metrics);
    EXPECT_NE(metrics->body.find("cortex_completion_tokens_total{model=\"m\",node=\"node-a\"} 4"),
              std::string::npos)
        << metrics->body;
    EXPECT_NE(metrics->body.find("cortex_prompt_tokens_total{model=\"m\",node=\"node-a\"} 11"),
              std::string::npos);
    EXPECT_NE(metrics->body.find("cortex_time_to_first_token_seconds_count"), std::string::npos);
    EXPECT_NE(metrics->body.find("cortex_requests_total{surface=\"openai-chat\",status=\"200\"}"),
              std::string::npos);
}

TEST(GatewayIntegration, ErrorsBeforeDispatch) {
    MockNeuron a;
    a.set_models(json::array({model_info("m", "loaded", json{{"context", 10}, {"output", 5}}),
                              model_info("r", "recovering")}));
    Cortex cortex({&a});
    TestClient client;
    net::ClientRequest bad;
    bad.method = "POST";
    bad.url = cortex.url("/v1/chat/completions");
    bad.body = "{not json";
    auto res = client.request(bad);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400);
    res = client.post(cortex.url("/v1/chat/completions"), json{{"messages", json::array()}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400);
    EXPECT_EQ(json::parse(res->body)["error"]["param"], "model");
    // A stream flag that is not a boolean is the client's error, named (not a 500).
    res = client.post(cortex.url("/v1/chat/completions"),
                      json{{"model", "m"}, {"stream", "yes"}, {"messages", json::array()}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400);
    EXPECT_EQ(json::parse(res->body)["error"]["param"], "stream");
    EXPECT_EQ(json::parse(res->body)["error"]["type"], "invalid_request_error");
    res = client.post(cortex.url("/v1/chat/completions"), chat_body("ghost"));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 404);
    EXPECT_EQ(json::parse(res->body)["error"]["code"], "model_not_found");
    res = client.post(cortex.url("/v1/chat/completions"), chat_body("r"));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 503);
    EXPECT_EQ(res->headers.get_or("retry-after", ""), "2");
    // Context pre-validation, with advice for known clients only.
    res = client.post(cortex.url("/v1/chat/completions"), chat_body("m", false, std::string(400, 'x')),
                      {{"User-Agent", "litellm/1.0"}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400);
    EXPECT_EQ(json::parse(res->body)["error"]["code"], "context_length_exceeded");
    EXPECT_TRUE(res->headers.contains("x-helexa-advice"));
    res = client.post(cortex.url("/v1/chat/completions"), chat_body("m", false, std::string(400, 'x')),
                      {{"User-Agent", "curl/8"}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400);
    EXPECT_FALSE(res->headers.contains("x-helexa-advice"));
    EXPECT_EQ(a.inference_hits, 0);
}

TEST(GatewayIntegration, UnhealthyAfterTwoFailedPolls) {
    MockNeuron a;
    a.set_models(json::array({model_info("m")}));
    Cortex cortex({&a});
    a.set_failing(true);
    cortex.server.poll_now();
    EXPECT_TRUE(cortex.server.fleet()->find("node-a")->healthy);
    cortex.server.poll_now();
    EXPECT_FALSE(cortex.server.fleet()->find("node-a")->healthy);
    TestClient client;
    auto res = client.post(cortex.url("/v1/chat/completions"), chat_body("m"));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 503);
    EXPECT_EQ(res->headers.get_or("retry-after", ""), "5");
    a.set_failing(false);
    cortex.server.poll_now();
    EXPECT_TRUE(cortex.server.fleet()->find("node-a")->healthy);
}

TEST(GatewayIntegration, ColdLoadFromCatalogueThenRoutes) {
    MockNeuron a;
    a.set_script(json_script(chat_completion("cold", 1, 1)));
    Cortex cortex({&a}, [](CortexOptions& o) {
        ModelProfile p;
        p.id = "cat/model";
        p.quant = "q4k";
        o.catalogue->models.push_back(p);
    });
    TestClient client;
    auto res = client.post(cortex.url("/v1/chat/completions"), chat_body("cat/model"));
    ASSERT_TRUE(res) << res.error().message();
    EXPECT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(a.load_hits, 1);
    EXPECT_EQ(a.last_load()["model_id"], "cat/model");
    EXPECT_EQ(a.last_load()["quant"], "q4k");
    EXPECT_EQ(a.inference_hits, 1);
    // Recorded as loaded: the next request routes without another load.
    res = client.post(cortex.url("/v1/chat/completions"), chat_body("cat/model"));
    ASSERT_TRUE(res);
    EXPECT_EQ(a.load_hits, 1);
    EXPECT_EQ(a.inference_hits, 2);
}

TEST(GatewayIntegration, ColdLoadFailureIs503WithRetryAfter) {
    MockNeuron a;
    a.set_load(400);
    Cortex cortex({&a}, [](CortexOptions& o) {
        ModelProfile p;
        p.id = "cat/model";
        o.catalogue->models.push_back(p);
    });
    TestClient client;
    auto res = client.post(cortex.url("/v1/chat/completions"), chat_body("cat/model"));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 503);
    EXPECT_EQ(res->headers.get_or("retry-after", ""), "5");
    EXPECT_EQ(a.inference_hits, 0);
}

TEST(GatewayIntegration, ColdLoadStreamingGetsKeepAlives) {
    MockNeuron a;
    a.set_load(200, std::chrono::milliseconds(2600));
    a.set_script(sse_script({"ok"}));
    Cortex cortex({&a}, [](CortexOptions& o) {
        ModelProfile p;
        p.id = "slow";
        o.catalogue->models.push_back(p);
    });
    TestClient client;
    auto res = client.post(cortex.url("/v1/chat/completions"), chat_body("slow", true));
    ASSERT_TRUE(res) << res.error().message();
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body.rfind(": loading", 0), 0u) << res->body;
    EXPECT_NE(res->body.find("[DONE]"), std::string::npos);
}

TEST(GatewayIntegration, EvictsLruBeforeColdLoadWhenVramTight) {
    MockNeuron a;
    a.set_models(json::array({model_info("old"), model_info("pinned")}));
    a.set_health_devices(1000, 24000);
    Cortex cortex({&a}, [](CortexOptions& o) {
        ModelProfile big;
        big.id = "big";
        big.vram_mb = 8000;
        ModelProfile pinned;
        pinned.id = "pinned";
        pinned.pinned_on = {"node-a"};
        o.catalogue->models = {big, pinned};
    });
    a.set_script(json_script(chat_completion("ok", 1, 1)));
    TestClient client;
    auto res = client.post(cortex.url("/v1/chat/completions"), chat_body("big"));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(a.unloaded(), std::vector<std::string>{"old"});
    EXPECT_EQ(a.load_hits, 1);
}

TEST(GatewayIntegration, AnthropicNonStreamingAndErrors) {
    MockNeuron a;
    a.set_models(json::array({model_info("m")}));
    a.set_script(json_script(chat_completion("Hi there", 12, 3)));
    Cortex cortex({&a}, [](CortexOptions& o) {
        o.config.gateway.default_model = std::string("m");  // (GCC bug 105329: see above)
    });
    TestClient client;
    json req = {{"model", "claude-sonnet-4-5"},
                {"max_tokens", 32000},
                {"system", "be brief"},
                {"messages", {{{"role", "user"}, {"content", "hello"}}}}};
    auto res = client.post(cortex.url("/v1/messages?beta=true"), req,
                           {{"anthropic-version", "2023-06-01"}, {"x-api-key", "sk-anything"}});
    ASSERT_TRUE(res) << res.error().message();
    ASSERT_EQ(res->status, 200) << res->body;
    auto j = json::parse(res->body);
    EXPECT_EQ(j["type"], "message");
    EXPECT_EQ(j["model"], "claude-sonnet-4-5");
    EXPECT_EQ(j["content"][0]["text"], "Hi there");
    EXPECT_EQ(j["stop_reason"], "end_turn");
    EXPECT_EQ(j["usage"]["output_tokens"], 3);
    auto upstream = a.last_body();
    EXPECT_EQ(upstream["model"], "m");
    EXPECT_EQ(upstream["messages"][0]["role"], "system");
    EXPECT_FALSE(a.last_headers().contains("x-api-key"));

    // Errors in Anthropic's shape.
    res = client.post(cortex.url("/v1/messages"), json{{"model", "nope-model"},
                                                       {"max_tokens", 5},
                                                       {"messages", json::array()}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 404);
    j = json::parse(res->body);
    EXPECT_EQ(j["type"], "error");
    EXPECT_EQ(j["error"]["type"], "not_found_error");

    a.set_script(json_script({{"error", {{"message", "queue full"}}}}, 503));
    res = client.post(cortex.url("/v1/messages"), req);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 503);
    EXPECT_EQ(json::parse(res->body)["error"]["type"], "overloaded_error");
}

TEST(GatewayIntegration, AnthropicStreamingTranslatesOddChunks) {
    MockNeuron a;
    a.set_models(json::array({model_info("m")}));
    auto script = sse_script({"Hel", "lo"}, 9);
    script.chunks = testing::sse_chunks({"Hel", "lo"}, 9, 3);  // 3-byte pieces
    a.set_script(script);
    Cortex cortex({&a});
    TestClient client;
    json req = {{"model", "m"},
                {"max_tokens", 100},
                {"stream", true},
                {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
    auto res = client.post(cortex.url("/v1/messages"), req);
    ASSERT_TRUE(res) << res.error().message();
    ASSERT_EQ(res->status, 200);
    net::SseParser parser;
    auto events = parser.feed(res->body);
    std::vector<std::string> names;
    std::string text;
    for (const auto& e : events) {
        names.push_back(e.event);
        auto d = json::parse(e.data);
        if (e.event == "content_block_delta") {
            text += d["delta"].value("text", "");
        }
        if (e.event == "message_delta") {
            EXPECT_EQ(d["usage"]["output_tokens"], 2);
            EXPECT_EQ(d["delta"]["stop_reason"], "end_turn");
        }
    }
    EXPECT_EQ(text, "Hello");
    ASSERT_FALSE(names.empty());
    EXPECT_EQ(names.front(), "message_start");
    EXPECT_EQ(names.back(), "message_stop");
}

// A streamed message's id is its own: message_start goes out before the upstream's first chunk
// (which would name it), and clients such as Claude Code group content blocks by message id, so
// two answers must never share one.
TEST(GatewayIntegration, AnthropicStreamedMessagesHaveDistinctIds) {
    MockNeuron a;
    a.set_models(json::array({model_info("m")}));
    a.set_script(sse_script({"Hi"}, 5));
    Cortex cortex({&a});
    TestClient client;
    json req = {{"model", "m"},
                {"max_tokens", 100},
                {"stream", true},
                {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
    std::vector<std::string> ids;
    for (int i = 0; i < 2; ++i) {
        auto res = client.post(cortex.url("/v1/messages"), req);
        ASSERT_TRUE(res) << res.error().message();
        ASSERT_EQ(res->status, 200);
        net::SseParser parser;
        auto events = parser.feed(res->body);
        ASSERT_FALSE(events.empty());
        ASSERT_EQ(events.front().event, "message_start");
        ids.push_back(json::parse(events.front().data)["message"].value("id", ""));
    }
    for (const auto& id : ids) {
        EXPECT_EQ(id.rfind("msg_", 0), 0u) << id;
        EXPECT_GT(id.size(), 4u + 8u) << id;
    }
    EXPECT_NE(ids[0], ids[1]);
}

TEST(GatewayIntegration, CountTokensUsesNeuronThenEstimate) {
    MockNeuron a;
    a.set_models(json::array({model_info("m")}));
    Cortex cortex({&a});
    TestClient client;
    json req = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "hello there"}}}}};
    auto res = client.post(cortex.url("/v1/messages/count_tokens"), req);
    ASSERT_TRUE(res);
    EXPECT_EQ(json::parse(res->body)["input_tokens"], 4242);
    req["model"] = "unknown";
    res = client.post(cortex.url("/v1/messages/count_tokens"), req);
    ASSERT_TRUE(res);
    EXPECT_GT(json::parse(res->body)["input_tokens"].get<int>(), 0);
    EXPECT_NE(json::parse(res->body)["input_tokens"], 4242);
}

// ---- identity and budgets ----

EntitlementsConfig keys(bool require_auth, std::optional<int64_t> cap = std::nullopt,
                        CapWindow window = {}) {
    EntitlementsConfig e;
    e.require_auth = require_auth;
    KeyConfig k;
    k.key = "sk-good";
    k.account_id = "acct";
    k.key_id = "kid";
    k.hard_cap = cap;
    k.window = window;
    e.keys.push_back(k);
    return e;
}

TEST(GatewayAuth, MatrixWhenNotRequired) {
    MockNeuron a;
    a.set_models(json::array({model_info("m")}));
    a.set_script(json_script(chat_completion("x", 1, 1)));
    Cortex cortex({&a}, [](CortexOptions& o) { o.config.entitlements = keys(false); });
    TestClient client;
    // No key and a placeholder key: served anonymously, no principal stamped.
    for (const auto& headers : {net::Headers{}, net::Headers{{"Authorization", "Bearer sk-xxx"}},
                                net::Headers{{"Authorization", "Basic Zm9vOmJhcg=="}},
                                net::Headers{{"Authorization", "Bearer "}}}) {
        auto res = client.post(cortex.url("/v1/chat/completions"), chat_body("m"), headers);
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, 200);
        EXPECT_FALSE(a.last_headers().contains("x-helexa-account-id"));
        EXPECT_FALSE(a.last_headers().contains("authorization"));
    }
    // Valid key with spoofed principal headers: stripped, then the real principal stamped.
    auto res = client.post(cortex.url("/v1/chat/completions"), chat_body("m"),
                           {{"Authorization", "Bearer sk-good"},
                            {"X-Helexa-Account-Id", "admin"},
                            {"x-helexa-key-id", "root"}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    auto h = a.last_headers();
    EXPECT_EQ(h.get_or("x-helexa-account-id", ""), "acct");
    EXPECT_EQ(h.get_or("x-helexa-key-id", ""), "kid");
    size_t account_headers = 0;
    for (const auto& [name, value] : h) {
        account_headers += net::iequals(name, "x-helexa-account-id") ? 1 : 0;
    }
    EXPECT_EQ(account_headers, 1u);
    EXPECT_FALSE(h.contains("authorization"));
    // Spoofed headers without a key are stripped too.
    res = client.post(cortex.url("/v1/chat/completions"), chat_body("m"),
                      {{"x-helexa-account-id", "admin"}});
    ASSERT_TRUE(res);
    EXPECT_FALSE(a.last_headers().contains("x-helexa-account-id"));
    EXPECT_EQ(a.inference_hits, 6);
}

TEST(GatewayAuth, MatrixWhenRequired) {
    MockNeuron a;
    a.set_models(json::array({model_info("m")}));
    a.set_script(json_script(chat_completion("x", 1, 1)));
    Cortex cortex({&a}, [](CortexOptions& o) { o.config.entitlements = keys(true); });
    TestClient client;
    for (const auto& headers : {net::Headers{}, net::Headers{{"Authorization", "Bearer sk-bad"}},
                                net::Headers{{"Authorization", std::string(6000, 'B')}}}) {
        auto res = client.post(cortex.url("/v1/chat/completions"), chat_body("m"), headers);
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, 401);
        EXPECT_EQ(json::parse(res->body)["error"]["code"], "invalid_api_key");
    }
    auto res = client.post(cortex.url("/v1/messages"), json{{"model", "m"}},
                           {{"x-api-key", "sk-bad"}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401);
    EXPECT_EQ(json::parse(res->body)["error"]["type"], "authentication_error");
    EXPECT_EQ(a.inference_hits, 0);
    // Public paths stay public.
    EXPECT_EQ(client.get(cortex.url("/health"))->status, 200);
    EXPECT_EQ(client.get(cortex.url("/"))->status, 200);
    EXPECT_EQ(client.get(cortex.metrics_url("/metrics"))->status, 200);
    res = client.post(cortex.url("/v1/chat/completions"), chat_body("m"),
                      {{"Authorization", "Bearer sk-good"}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    res = client.post(cortex.url("/v1/messages"),
                      json{{"model", "m"}, {"max_tokens", 5},
                           {"messages", {{{"role", "user"}, {"content", "x"}}}}},
                      {{"x-api-key", "sk-good"}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    // CORS preflight short-circuits before auth.
    net::ClientRequest preflight;
    preflight.method = "OPTIONS";
    preflight.url = cortex.url("/v1/chat/completions");
    preflight.headers = {{"Origin", "http://ui"}, {"Access-Control-Request-Method", "POST"}};
    res = client.request(preflight);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 204);
    EXPECT_EQ(res->headers.get_or("access-control-allow-origin", ""), "*");
}

TEST(GatewayBudget, OverCapRefusedBeforeNeuron) {
    MockNeuron a;
    a.set_models(json::array({model_info("m")}));
    a.set_script(json_script(chat_completion("x", 1, 1)));
    Cortex cortex({&a}, [](CortexOptions& o) { o.config.entitlements = keys(false, 10); });
    TestClient client;
    auto res = client.post(cortex.url("/v1/chat/completions"), chat_body("m"),
                           {{"Authorization", "Bearer sk-good"}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 429);
    EXPECT_EQ(json::parse(res->body)["error"]["code"], "insufficient_quota");
    EXPECT_FALSE(res->headers.contains("retry-after"));
    EXPECT_EQ(a.inference_hits, 0);
}

TEST(GatewayBudget, RollingOverCapHasRetryAfter) {
    MockNeuron a;
    a.set_models(json::array({model_info("m")}));
    Cortex cortex({&a}, [](CortexOptions& o) {
        o.config.entitlements = keys(false, 10, {CapWindow::Kind::kRolling, 60});
    });
    TestClient client;
    auto res = client.post(cortex.url("/v1/chat/completions"), chat_body("m"),
                           {{"Authorization", "Bearer sk-good"}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 429);
    EXPECT_EQ(json::parse(res->body)["error"]["code"], "rate_limit_exceeded");
    EXPECT_TRUE(res->headers.contains("retry-after"));
    EXPECT_EQ(a.inference_hits, 0);
}

TEST(GatewayBudget, FanOutOf20StreamsNeverOvershootsCap) {
    MockNeuron a;
    a.set_models(json::array({model_info("m")}));
    auto script = sse_script({"a", "b", "c", "d", "e"}, 20);
    script.chunks = testing::sse_chunks({"a", "b", "c", "d", "e"}, 20, 96);
    script.delay = std::chrono::milliseconds(30);  // keeps the 20 requests overlapping
    a.set_script(script);
    // Each request reserves ceil(body/4) + max_tokens(16); the cap fits only a few at once.
    const int64_t cap = 600;
    Cortex cortex({&a}, [&](CortexOptions& o) { o.config.entitlements = keys(false, cap); });
    TestClient client;
    std::vector<std::future<Result<net::ClientResponse>>> futures;
    for (int i = 0; i < 20; ++i) {
        futures.push_back(client.post_async(cortex.url("/v1/chat/completions"),
                                            chat_body("m", true),
                                            {{"Authorization", "Bearer sk-good"}}));
    }
    int served = 0;
    int refused = 0;
    for (auto& f : futures) {
        auto res = f.get();
        ASSERT_TRUE(res) << res.error().message();
        if (res->status == 200) {
            ++served;
        } else {
            EXPECT_EQ(res->status, 429);
            ++refused;
        }
    }
    EXPECT_GT(served, 0);
    EXPECT_GT(refused, 0);
    EXPECT_EQ(a.inference_hits, served);
    // Keep going sequentially until the cap is drained, then refused.
    script.delay = std::chrono::milliseconds(0);
    a.set_script(script);
    for (int i = 0; i < 40; ++i) {
        auto res = client.post(cortex.url("/v1/chat/completions"), chat_body("m", true),
                               {{"Authorization", "Bearer sk-good"}});
        ASSERT_TRUE(res);
        if (res->status != 200) {
            EXPECT_EQ(json::parse(res->body)["error"]["code"], "insufficient_quota");
            break;
        }
    }
    auto snap = cortex.server.entitlements()->snapshot(Principal{"acct", "kid"});
    ASSERT_TRUE(snap);
    EXPECT_LE(snap->spent, cap);
    EXPECT_EQ(snap->reserved, 0);
    EXPECT_GT(snap->spent, 0);
}

TEST(GatewayBudget, SpendSurvivesRestart) {
    MockNeuron a;
    a.set_models(json::array({model_info("m")}));
    a.set_script(json_script(chat_completion("x", 10, 5)));  // within the hold
    const std::string dir = Cortex::state_dir();
    std::filesystem::remove_all(dir);
    {
        Cortex cortex({&a}, [](CortexOptions& o) { o.config.entitlements = keys(false, 100000); });
        TestClient client;
        auto res = client.post(cortex.url("/v1/chat/completions"), chat_body("m"),
                               {{"Authorization", "Bearer sk-good"}});
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, 200);
        EXPECT_EQ(cortex.server.entitlements()->snapshot(Principal{"acct", "kid"})->spent, 15);
        auto metrics = client.get(cortex.metrics_url("/metrics"));
        EXPECT_NE(metrics->body.find("cortex_spend_tokens_total{account=\"acct\",key=\"kid\"} 15"),
                  std::string::npos);
    }
    Cortex again({&a}, [](CortexOptions& o) { o.config.entitlements = keys(false, 100000); });
    EXPECT_EQ(again.server.entitlements()->snapshot(Principal{"acct", "kid"})->spent, 15);
    std::filesystem::remove_all(dir);
}

TEST(GatewayIntegration, ClientHangUpClosesUpstream) {
    MockNeuron a;
    a.set_models(json::array({model_info("m")}));
    auto script = sse_script(std::vector<std::string>(200, "tok"), 5);
    script.delay = std::chrono::milliseconds(10);
    a.set_script(script);
    Cortex cortex({&a});
    {
        net::IoPool io(1);
        net::Client c(io.context().get_executor());
        io.start();
        net::ClientRequest req;
        req.method = "POST";
        req.url = cortex.url("/v1/chat/completions");
        req.headers = {{"Content-Type", "application/json"}};
        req.body = chat_body("m", true).dump();
        // use_future needs a default-constructible result: wrap in optional.
        using Stream = std::optional<Result<net::StreamedResponse>>;
        auto opened = asio::co_spawn(
                          io.context(),
                          [&]() -> asio::awaitable<Stream> {
                              co_return co_await c.stream(std::move(req));
                          },
                          asio::use_future)
                          .get();
        ASSERT_TRUE(opened && *opened) << (opened && !*opened ? opened->error().message() : "");
        auto& st = **opened;
        auto piece = asio::co_spawn(io.context(), st.next(), asio::use_future).get();
        ASSERT_TRUE(piece);
        st.close();  // hang up mid-stream
        io.stop();
        io.join();
    }
    for (int i = 0; i < 100 && a.client_gone == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(a.client_gone, 1);
}

}  // namespace
}  // namespace helexa::gateway
