// NeuronServer over real sockets with the FakeEngine: every endpoint, status and error code,
// activation, CUDA mismatch, model sources through a mock hub, admission, client disconnect and
// graceful shutdown with an in-flight stream.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include "fake_engine.h"
#include "helexa/net/client.h"
#include "helexa/node/neuron_server.h"
#include "mock_hub.h"

namespace helexa::node {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;
using namespace testing;

class FakeGpu : public GpuMonitor {
public:
    explicit FakeGpu(GpuDiscovery d) : d_(std::move(d)) {}
    GpuDiscovery discover() override { return d_; }
    std::vector<wire::DeviceHealth> health() override {
        std::vector<wire::DeviceHealth> out;
        for (const auto& dev : d_.devices) {
            out.push_back({dev.index, dev.name, dev.total_vram_mb, 1000, dev.total_vram_mb - 1000,
                           12.0, 40.0});
        }
        return out;
    }

private:
    GpuDiscovery d_;
};

struct SseMessage {
    std::string event;
    std::string data;
};

std::vector<SseMessage> parse_sse(const std::string& body) {
    std::vector<SseMessage> out;
    size_t pos = 0;
    while (pos < body.size()) {
        auto end = body.find("\n\n", pos);
        std::string block = body.substr(pos, end == std::string::npos ? std::string::npos
                                                                       : end - pos);
        pos = end == std::string::npos ? body.size() : end + 2;
        SseMessage m;
        std::istringstream lines(block);
        std::string line;
        while (std::getline(lines, line)) {
            if (line.rfind("event: ", 0) == 0) {
                m.event = line.substr(7);
            } else if (line.rfind("data: ", 0) == 0) {
                m.data += line.substr(6);
            }
        }
        if (!m.data.empty() || !m.event.empty()) {
            out.push_back(std::move(m));
        }
    }
    return out;
}

void touch(const fs::path& p, const std::string& text = "{}") {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
}

class NeuronServerTest : public ::testing::Test {
protected:
    void SetUp() override {
        cache_ = fs::temp_directory_path() /
                 ("helexa-neuron-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(cache_);
        // A cached dense snapshot of "Qwen/Tiny".
        auto repo = cache_ / "models--Qwen--Tiny";
        touch(repo / "refs" / "main", "rev1");
        touch(repo / "snapshots" / "rev1" / "config.json");
        touch(repo / "snapshots" / "rev1" / "tokenizer.json");
        touch(repo / "snapshots" / "rev1" / "model.safetensors", "weights");
        client_io_.start();
        hub_.start();
        config_.listen = ListenAddress{"127.0.0.1", 0};
        SourceConfig hf{"huggingface", hub_.endpoint(), std::nullopt, std::nullopt,
                        cache_.string()};
        config_.sources["huggingface"] = hf;
        config_.admission = {1, 8, 30, 2};
        config_.drain_timeout_secs = 5;
        config_.unload_timeout_secs = 1;
    }
    void TearDown() override {
        server_.reset();
        hub_.stop();
        client_io_.stop();
        client_io_.join();
        fs::remove_all(cache_);
    }

    void start(std::shared_ptr<engine::Engine> engine, GpuDiscovery gpu = {}) {
        NeuronServerDeps deps;
        deps.gpu = std::make_unique<FakeGpu>(std::move(gpu));
        deps.handle_signals = false;
        server_ = std::make_unique<NeuronServer>(std::move(deps));
        auto st = server_->start(config_, std::move(engine));
        ASSERT_TRUE(st) << st.error().full_message();
        ASSERT_NE(server_->port(), 0);
    }

    std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
    }

    net::ClientResponse get(const std::string& path) {
        auto r = asio::co_spawn(client_io_.context(), client_.get(url(path)), asio::use_future)
                     .get();
        EXPECT_TRUE(r) << r.error().full_message();
        return r ? *r : net::ClientResponse{};
    }

    net::ClientResponse post(const std::string& path, const std::string& body,
                             net::Headers headers = {}) {
        net::ClientRequest req;
        req.method = "POST";
        req.url = url(path);
        req.body = body;
        req.headers = std::move(headers);
        req.headers.set("Content-Type", "application/json");
        auto r = asio::co_spawn(client_io_.context(), client_.request(std::move(req)),
                                asio::use_future)
                     .get();
        EXPECT_TRUE(r) << r.error().full_message();
        return r ? *r : net::ClientResponse{};
    }

    net::ClientResponse post(const std::string& path, const json& body, net::Headers h = {}) {
        return post(path, body.dump(), std::move(h));
    }

    void load_tiny(FakeEngine&) {
        auto r = post("/models/load", json{{"model_id", "Qwen/Tiny"}});
        ASSERT_EQ(r.status, 200) << r.body;
    }

    static json chat(bool stream = false) {
        return json{{"model", "Qwen/Tiny"},
                    {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})},
                    {"stream", stream}};
    }

    fs::path cache_;
    NeuronConfig config_;
    net::IoPool client_io_{2};
    net::Client client_{client_io_.context().get_executor()};
    MockHub hub_{client_io_};
    std::unique_ptr<NeuronServer> server_;
};

TEST_F(NeuronServerTest, StartsWithoutEngineAndAnswers) {
    start(nullptr);
    auto health = get("/health");
    EXPECT_EQ(health.status, 200);
    auto h = json::parse(health.body);
    EXPECT_EQ(h["activation"]["state"], "ready");
    EXPECT_TRUE(h["models"].is_array() && h["models"].empty());
    auto disc = json::parse(get("/discovery").body);
    EXPECT_FALSE(disc["hostname"].get<std::string>().empty());
    EXPECT_EQ(disc["harnesses"], json::array({"candle"}));
    EXPECT_EQ(disc["max_prompt_tokens"], 0);
    EXPECT_FALSE(disc.contains("cuda_unavailable_reason"));
    EXPECT_EQ(get("/models").body, "[]");
    EXPECT_TRUE(json::parse(get("/version").body).contains("git_sha"));
    EXPECT_EQ(post("/v1/chat/completions", chat()).status, 503);
    EXPECT_EQ(post("/models/load", json{{"model_id", "Qwen/Tiny"}}).status, 503);
    auto nf = get("/nope");
    EXPECT_EQ(nf.status, 404);
}

TEST_F(NeuronServerTest, LoadsFromTheCacheAndListsTheModel) {
    auto engine = std::make_shared<FakeEngine>();
    start(engine);
    auto r = post("/models/load", json{{"model_id", "huggingface:Qwen/Tiny"}, {"quant", "bf16"}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["status"], "loaded");
    auto again = post("/models/load", json{{"model_id", "Qwen/Tiny"}});
    EXPECT_EQ(again.status, 200);
    EXPECT_NE(again.body.find("already loaded"), std::string::npos);
    auto loads = engine->loads_snapshot();
    ASSERT_EQ(loads.size(), 1U);
    EXPECT_EQ(loads[0].model_id, "Qwen/Tiny");
    EXPECT_EQ(loads[0].snapshot_dir, (cache_ / "models--Qwen--Tiny" / "snapshots" / "rev1").string());
    EXPECT_TRUE(hub_.seen().empty());  // served from the cache, no network

    auto models = json::parse(get("/models").body);
    ASSERT_EQ(models.size(), 1U);
    EXPECT_EQ(models[0]["id"], "Qwen/Tiny");
    EXPECT_EQ(models[0]["status"], "loaded");
    EXPECT_EQ(models[0]["limit"]["input"], 2048);
    EXPECT_EQ(models[0]["vram_mb"], 100);
    EXPECT_EQ(models[0]["tool_call"], true);
    auto ep = json::parse(get("/models/Qwen/Tiny/endpoint").body);
    EXPECT_EQ(ep["endpoint"], "http://localhost:" + std::to_string(server_->port()));
    EXPECT_EQ(get("/models/Qwen/Other/endpoint").status, 404);
    auto health = json::parse(get("/health").body);
    EXPECT_EQ(health["models"][0]["id"], "Qwen/Tiny");
    EXPECT_EQ(json::parse(get("/discovery").body)["max_prompt_tokens"], 2048);

    auto unload = post("/models/unload", json{{"model_id", "Qwen/Tiny"}});
    EXPECT_EQ(unload.status, 200);
    EXPECT_EQ(engine->unloads_snapshot(), std::vector<std::string>{"Qwen/Tiny"});
    EXPECT_EQ(post("/models/unload", json{{"model_id", "Qwen/Tiny"}}).status, 404);
    auto gone = post("/v1/chat/completions", chat());
    EXPECT_EQ(gone.status, 404);
    EXPECT_EQ(json::parse(gone.body)["error"]["code"], "model_not_found");
}

TEST_F(NeuronServerTest, LoadsThroughTheHubAndRejectsInPreflight) {
    hub_.repos["org/Dense"] = {{"config.json", "{}"}, {"tokenizer.json", "{}"},
                               {"model.safetensors", "abc"}, {"README.md", "x"}};
    hub_.repos["org/Q-GGUF"] = {{"Q-Q4_K_M.gguf", "g1"}, {"Q-Q6_K_P.gguf", "g2"}};
    hub_.repos["org/Q"] = {{"tokenizer.json", "{\"tok\":1}"}, {"config.json", "{}"}};
    auto engine = std::make_shared<FakeEngine>();
    start(engine);
    auto r = post("/models/load", json{{"model_id", "org/Dense"}, {"tensor_parallel", 2}});
    ASSERT_EQ(r.status, 200) << r.body;
    auto snap = cache_ / "models--org--Dense" / "snapshots" / hub_.commit;
    EXPECT_TRUE(fs::exists(snap / "model.safetensors"));
    EXPECT_FALSE(fs::exists(snap / "README.md"));  // only what the load needs

    auto tp = post("/models/load", json{{"model_id", "org/Q-GGUF"}, {"tensor_parallel", 2}});
    EXPECT_EQ(tp.status, 422);
    auto tpj = json::parse(tp.body);
    EXPECT_EQ(tpj["error"]["kind"], "tp_requires_safetensors");
    EXPECT_EQ(tpj["error"]["model_id"], "huggingface:org/Q-GGUF");

    auto miss = post("/models/load", json{{"model_id", "org/Q-GGUF"}, {"quant", "q6k"}});
    EXPECT_EQ(miss.status, 422);
    EXPECT_EQ(json::parse(miss.body)["error"]["suggestion"], "Q6_K_P");

    auto gguf = post("/models/load", json{{"model_id", "org/Q-GGUF"}, {"quant", "Q4_K_M"}});
    ASSERT_EQ(gguf.status, 200) << gguf.body;
    auto gsnap = cache_ / "models--org--Q-GGUF" / "snapshots" / hub_.commit;
    EXPECT_TRUE(fs::exists(gsnap / "Q-Q4_K_M.gguf"));
    EXPECT_FALSE(fs::exists(gsnap / "Q-Q6_K_P.gguf"));
    EXPECT_TRUE(fs::exists(gsnap / "tokenizer.json"));  // from the base repo org/Q
    EXPECT_EQ(engine->loads_snapshot().back().quant, std::optional<std::string>("Q4_K_M"));

    auto missing = post("/models/load", json{{"model_id", "org/Missing"}});
    EXPECT_EQ(missing.status, 422);
    EXPECT_EQ(json::parse(missing.body)["error"]["kind"], "repo_not_found");
}

TEST_F(NeuronServerTest, BadLoadRequests) {
    auto engine = std::make_shared<FakeEngine>();
    start(engine);
    auto bad = [&](const std::string& body, int status, const std::string& needle) {
        auto r = post("/models/load", body);
        EXPECT_EQ(r.status, status) << body << " -> " << r.body;
        EXPECT_NE(r.body.find(needle), std::string::npos) << r.body;
    };
    bad("{not json", 400, "invalid_json");
    bad(R"({"quant":"x"})", 400, "model_id");
    bad(R"({"model_id":"../../etc/passwd"})", 400, "invalid model id");
    bad(R"({"model_id":"/abs/olute"})", 400, "invalid model id");
    bad(R"({"model_id":"Qwen/Tiny","harness":"llamacpp"})", 400, "unknown harness");
    bad(R"({"model_id":"ftp:Qwen/Tiny"})", 400, "unknown source 'ftp'");
    engine->load_error = Error(ErrorCode::kInvalidRequest, "unsupported model_type 'bert'");
    bad(R"({"model_id":"Qwen/Tiny"})", 400, "unsupported model_type");
    engine->load_error = Error(ErrorCode::kInsufficientVram, "needs 20 GB");
    auto vram = post("/models/load", json{{"model_id", "Qwen/Tiny"}});
    EXPECT_EQ(vram.status, 503);
    EXPECT_EQ(vram.headers.get("Retry-After"), std::optional<std::string_view>("5"));
    EXPECT_EQ(get("/models").body, "[]");
}

TEST_F(NeuronServerTest, CudaMismatchFailsDefaultsAndFastRejectsLoads) {
    config_.default_models = {{"Qwen/Tiny", std::nullopt, std::nullopt, std::nullopt,
                               std::nullopt}};
    GpuDiscovery gpu;
    gpu.status = GpuStatus::kVersionMismatch;
    gpu.userspace_version = "12.560.1";
    gpu.kernel_module_version = "550.54.14";
    auto engine = std::make_shared<FakeEngine>();
    start(engine, gpu);
    auto disc = json::parse(get("/discovery").body);
    ASSERT_TRUE(disc.contains("cuda_unavailable_reason"));
    EXPECT_NE(disc["cuda_unavailable_reason"].get<std::string>().find("550.54.14"),
              std::string::npos);
    auto act = json::parse(get("/health").body)["activation"];
    EXPECT_EQ(act["state"], "ready");
    ASSERT_EQ(act["failed"].size(), 1U);
    EXPECT_NE(act["failed"][0]["error"].get<std::string>().find("reboot"), std::string::npos);
    auto r = post("/models/load", json{{"model_id", "Qwen/Tiny"}});
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "cuda_unavailable");
    EXPECT_TRUE(engine->loads_snapshot().empty());
}

TEST_F(NeuronServerTest, ActivationPreWarmsInTheBackground) {
    config_.default_models = {{"Qwen/Tiny", std::nullopt, std::nullopt, std::nullopt,
                               std::nullopt},
                              {"org/Absent", std::nullopt, std::nullopt, std::nullopt,
                               std::nullopt}};
    auto engine = std::make_shared<FakeEngine>();
    engine->load_delay = 300ms;
    GpuDiscovery gpu;
    gpu.status = GpuStatus::kOk;
    gpu.devices = {{0, "NVIDIA H100", 81559, "9.0"}};
    start(engine, gpu);
    // The listener answers while the first model is still loading.
    auto first = json::parse(get("/health").body);
    EXPECT_EQ(first["activation"]["state"], "pre_warming");
    EXPECT_EQ(first["devices"][0]["name"], "NVIDIA H100");
    json act;
    for (int i = 0; i < 100; ++i) {
        act = json::parse(get("/health").body)["activation"];
        if (act["state"] == "ready") {
            break;
        }
        std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(act["state"], "ready");
    EXPECT_EQ(act["completed"], json::array({"Qwen/Tiny"}));
    ASSERT_EQ(act["failed"].size(), 1U);
    EXPECT_EQ(act["failed"][0]["model_id"], "org/Absent");
    EXPECT_NE(act["failed"][0]["error"].get<std::string>().find("repo_not_found"),
              std::string::npos);
    auto disc = json::parse(get("/discovery").body);
    EXPECT_EQ(disc["devices"][0]["compute_capability"], "9.0");
}

TEST_F(NeuronServerTest, ChatCompletionNonStreaming) {
    auto engine = std::make_shared<FakeEngine>();
    start(engine);
    load_tiny(*engine);
    auto body = chat();
    body["temperature"] = 0.2;
    body["max_tokens"] = 7;
    body["stop"] = "END";
    auto r = post("/v1/chat/completions", body,
                  {{"x-helexa-account-id", "acct"}, {"x-helexa-key-id", "key1"}});
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = json::parse(r.body);
    EXPECT_EQ(j["object"], "chat.completion");
    EXPECT_EQ(j["model"], "Qwen/Tiny");
    EXPECT_EQ(j["choices"][0]["message"]["content"], "Hello world");
    EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
    std::lock_guard lock(engine->controls->mutex);
    ASSERT_EQ(engine->controls->submits.size(), 1U);
    const auto& sub = engine->controls->submits[0];
    EXPECT_EQ(sub.principal, "acct/key1");
    EXPECT_FLOAT_EQ(*sub.sampling.temperature, 0.2F);
    EXPECT_EQ(*sub.sampling.max_tokens, 7);
    EXPECT_EQ(sub.sampling.stop, std::vector<std::string>{"END"});
    // Prompt = "<user>hi<assistant>" one token per byte; thinking off by default.
    EXPECT_EQ(sub.prompt_tokens.size(), std::string("<user>hi<assistant>").size());
    EXPECT_FALSE(sub.starts_in_reasoning);
    EXPECT_EQ(j["usage"]["prompt_tokens"], sub.prompt_tokens.size());
    EXPECT_EQ(engine->controls->renders.back().template_kwargs["enable_thinking"], false);
}

TEST_F(NeuronServerTest, ChatCompletionStreamsChunksUsageAndDone) {
    auto engine = std::make_shared<FakeEngine>();
    engine->controls->script = {{started_event(), {}},
                                {reasoning_event("mull"), {}},
                                {text_event("Hi"), 5ms},
                                {tool_event("call_x_0", "f", "{}"), {}},
                                {finish_event(engine::FinishReason::kToolCalls, {0, 4, 1, 2}), {}}};
    start(engine);
    load_tiny(*engine);
    auto r = post("/v1/chat/completions", chat(true), {{"x-include-thinking", "TRUE"}});
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.headers.get("Content-Type"), std::optional<std::string_view>("text/event-stream"));
    auto msgs = parse_sse(r.body);
    ASSERT_EQ(msgs.back().data, "[DONE]");
    std::string content;
    json last_chunk;
    for (size_t i = 0; i + 1 < msgs.size(); ++i) {
        auto c = json::parse(msgs[i].data);
        if (!c["choices"].empty() && c["choices"][0]["delta"].contains("content")) {
            content += c["choices"][0]["delta"]["content"].get<std::string>();
        }
        last_chunk = c;
    }
    EXPECT_EQ(json::parse(msgs[0].data)["choices"][0]["delta"]["role"], "assistant");
    EXPECT_EQ(content, "<think>mull</think>Hi");
    EXPECT_EQ(last_chunk["usage"]["completion_tokens_details"]["reasoning_tokens"], 1);
    EXPECT_EQ(last_chunk["usage"]["prompt_tokens_details"]["cached_tokens"], 2);
    auto finish = json::parse(msgs[msgs.size() - 3].data);
    EXPECT_EQ(finish["choices"][0]["finish_reason"], "tool_calls");
    // x-include-thinking keeps the template's thinking on.
    std::lock_guard lock(engine->controls->mutex);
    EXPECT_FALSE(engine->controls->renders.back().template_kwargs.contains("enable_thinking"));
    EXPECT_TRUE(engine->controls->submits.back().starts_in_reasoning);
}

TEST_F(NeuronServerTest, InferenceErrorMapping) {
    auto engine = std::make_shared<FakeEngine>();
    engine->descriptor_template.limit = {64, 32, 32};
    start(engine);
    load_tiny(*engine);
    auto code_of = [](const net::ClientResponse& r) {
        return json::parse(r.body)["error"]["code"];
    };
    auto unknown = chat();
    unknown["model"] = "Qwen/Nope";
    auto nf = post("/v1/chat/completions", unknown);
    EXPECT_EQ(nf.status, 404);
    EXPECT_EQ(code_of(nf), "model_not_found");

    auto long_chat = chat();
    long_chat["messages"][0]["content"] = std::string(100, 'x');
    auto ctx = post("/v1/chat/completions", long_chat);
    EXPECT_EQ(ctx.status, 400);
    auto ce = json::parse(ctx.body)["error"];
    EXPECT_EQ(ce["code"], "context_length_exceeded");
    EXPECT_EQ(ce["max"], 32);
    EXPECT_EQ(ce["prompt_len"], 100 + std::string("<user><assistant>").size());

    auto vision = chat();
    vision["messages"][0]["content"] =
        json::array({{{"type", "image_url"}, {"image_url", {{"url", "data:x"}}}}});
    auto vr = post("/v1/chat/completions", vision);
    EXPECT_EQ(vr.status, 400);
    EXPECT_EQ(code_of(vr), "vision_unsupported");
    EXPECT_EQ(json::parse(vr.body)["error"]["model_id"], "Qwen/Tiny");

    auto tmpl = chat();
    tmpl["messages"][0]["content"] = "FAIL_TEMPLATE";
    // No tools: the ChatML fallback renders it (here too long for this model's 32-token cap).
    auto fallback = post("/v1/chat/completions", tmpl);
    EXPECT_EQ(fallback.status, 400);
    EXPECT_EQ(json::parse(fallback.body)["error"]["prompt_len"],
              std::string("<|im_start|>user\nFAIL_TEMPLATE<|im_end|>\n<|im_start|>assistant\n")
                  .size());
    tmpl["tools"] = json::array({{{"type", "function"}, {"function", {{"name", "f"}}}}});
    auto tr = post("/v1/chat/completions", tmpl);
    EXPECT_EQ(tr.status, 422);
    EXPECT_EQ(code_of(tr), "template_render_failed");

    EXPECT_EQ(post("/v1/chat/completions", std::string("{oops")).status, 400);
    EXPECT_EQ(post("/v1/chat/completions", json{{"model", "Qwen/Tiny"}}).status, 400);

    {
        std::lock_guard lock(engine->controls->mutex);
        engine->controls->submit_error = Error(ErrorCode::kInsufficientVram, "free 900 MB");
    }
    auto vram = post("/v1/chat/completions", chat(true));
    EXPECT_EQ(vram.status, 503);
    EXPECT_EQ(code_of(vram), "insufficient_vram");
    EXPECT_EQ(vram.headers.get("Retry-After"), std::optional<std::string_view>("5"));
    {
        std::lock_guard lock(engine->controls->mutex);
        engine->controls->submit_error.reset();
        engine->controls->script = {{error_event(Error(ErrorCode::kInternal, "secret detail")), {}}};
    }
    auto internal = post("/v1/chat/completions", chat(true));
    EXPECT_EQ(internal.status, 500);
    EXPECT_EQ(json::parse(internal.body)["error"]["type"], "api_error");
    EXPECT_EQ(internal.body.find("secret detail"), std::string::npos);
    {
        std::lock_guard lock(engine->controls->mutex);
        engine->controls->script = {{text_event("par"), {}},
                                    {error_event(Error(ErrorCode::kInternal, "fault")), {}}};
    }
    auto mid = post("/v1/chat/completions", chat(true));
    EXPECT_EQ(mid.status, 200);
    auto msgs = parse_sse(mid.body);
    ASSERT_GE(msgs.size(), 3U);
    EXPECT_TRUE(json::parse(msgs[msgs.size() - 2].data).contains("error"));
    EXPECT_EQ(msgs.back().data, "[DONE]");
}

TEST_F(NeuronServerTest, ResponsesAndCompletions) {
    auto engine = std::make_shared<FakeEngine>();
    start(engine);
    load_tiny(*engine);
    json req{{"model", "Qwen/Tiny"}, {"input", "hi"}, {"instructions", "be brief"}};
    auto r = post("/v1/responses", req);
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = json::parse(r.body);
    EXPECT_EQ(j["object"], "response");
    EXPECT_EQ(j["status"], "completed");
    EXPECT_EQ(j["output_text"], "Hello world");
    EXPECT_EQ(j["instructions"], "be brief");

    req["stream"] = true;
    auto s = post("/v1/responses", req);
    ASSERT_EQ(s.status, 200);
    auto events = parse_sse(s.body);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.front().event, "response.created");
    EXPECT_EQ(events.back().event, "response.completed");
    EXPECT_EQ(json::parse(events.back().data)["response"]["output_text"], "Hello world");

    req["previous_response_id"] = "resp_1";
    auto chained = post("/v1/responses", req);
    EXPECT_EQ(chained.status, 400);
    EXPECT_EQ(json::parse(chained.body)["error"]["code"], "chained_conversation_not_supported");

    auto c = post("/v1/completions", json{{"model", "Qwen/Tiny"}, {"prompt", "abc"}});
    ASSERT_EQ(c.status, 200) << c.body;
    auto cj = json::parse(c.body);
    EXPECT_EQ(cj["choices"][0]["text"], "Hello world");
    EXPECT_EQ(cj["usage"]["prompt_tokens"], 4);  // BOS + 3 bytes
    auto cs = post("/v1/completions", json{{"model", "Qwen/Tiny"}, {"prompt", "abc"},
                                           {"stream", true}});
    EXPECT_EQ(parse_sse(cs.body).back().data, "[DONE]");
}

// A completion prompt of token ids goes to the engine as those ids (no tokenizer pass), and
// ignore_eos with it: what a benchmark sends for exact prompt and output lengths.
TEST_F(NeuronServerTest, CompletionWithTokenIdsAndIgnoreEos) {
    auto engine = std::make_shared<FakeEngine>();
    start(engine);
    load_tiny(*engine);
    auto c = post("/v1/completions", json{{"model", "Qwen/Tiny"},
                                          {"prompt", json::array({7, 3, 9, 3})},
                                          {"max_tokens", 5},
                                          {"ignore_eos", true}});
    ASSERT_EQ(c.status, 200) << c.body;
    EXPECT_EQ(json::parse(c.body)["usage"]["prompt_tokens"], 4);
    {
        std::lock_guard lock(engine->controls->mutex);
        ASSERT_FALSE(engine->controls->submits.empty());
        const auto& sub = engine->controls->submits.back();
        EXPECT_EQ(sub.prompt_tokens, (std::vector<int32_t>{7, 3, 9, 3}));
        EXPECT_TRUE(sub.sampling.ignore_eos);
        EXPECT_EQ(*sub.sampling.max_tokens, 5);
    }
    auto bad = post("/v1/completions", json{{"model", "Qwen/Tiny"},
                                            {"prompt", json::array({1, -2})}});
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(json::parse(bad.body)["error"]["param"], "prompt");
}

TEST_F(NeuronServerTest, TokenizeAndDetokenize) {
    auto engine = std::make_shared<FakeEngine>();
    start(engine);
    load_tiny(*engine);
    auto plain = json::parse(post("/tokenize", json{{"model", "Qwen/Tiny"}, {"prompt", "ab"}}).body);
    EXPECT_EQ(plain["tokens"], json::array({1, 'a' + 10, 'b' + 10}));
    EXPECT_EQ(plain["count"], 3);
    auto no_special = json::parse(post("/tokenize", json{{"model", "Qwen/Tiny"}, {"prompt", "ab"},
                                                         {"add_special_tokens", false}})
                                      .body);
    EXPECT_EQ(no_special["count"], 2);
    // The chat form counts exactly what inference would submit.
    auto chat_count = json::parse(post("/tokenize", chat()).body)["count"].get<size_t>();
    ASSERT_EQ(post("/v1/chat/completions", chat()).status, 200);
    {
        std::lock_guard lock(engine->controls->mutex);
        EXPECT_EQ(chat_count, engine->controls->submits.back().prompt_tokens.size());
    }
    auto detok = post("/detokenize", json{{"model", "Qwen/Tiny"}, {"tokens", plain["tokens"]}});
    EXPECT_EQ(json::parse(detok.body)["text"], "ab");
    EXPECT_EQ(post("/tokenize", json{{"model", "x/y"}, {"prompt", "a"}}).status, 404);
    EXPECT_EQ(post("/tokenize", std::string("[")).status, 400);
    EXPECT_EQ(post("/detokenize", json{{"model", "Qwen/Tiny"}, {"tokens", {-1}}}).status, 400);
}

TEST_F(NeuronServerTest, AdmissionOverHttp) {
    config_.admission = {1, 0, 1, 1};  // one running, no queue, one per principal
    auto engine = std::make_shared<FakeEngine>();
    engine->controls->hold = true;
    start(engine);
    load_tiny(*engine);
    auto held = std::async(std::launch::async, [&] {
        return post("/v1/chat/completions", chat(true), {{"x-helexa-account-id", "a"}});
    });
    while (engine->controls->running.load() == 0) {
        std::this_thread::sleep_for(2ms);
    }
    auto share = post("/v1/chat/completions", chat(), {{"x-helexa-account-id", "a"}});
    EXPECT_EQ(share.status, 429);
    EXPECT_EQ(share.headers.get("Retry-After"), std::optional<std::string_view>("1"));
    EXPECT_EQ(json::parse(share.body)["error"]["code"], "rate_limit_exceeded");
    auto busy = post("/v1/chat/completions", chat(), {{"x-helexa-account-id", "b"}});
    EXPECT_EQ(busy.status, 503);
    EXPECT_EQ(json::parse(busy.body)["error"]["code"], "rate_limit_exceeded");
    EXPECT_TRUE(busy.headers.get("Retry-After"));
    auto health = json::parse(get("/health").body);
    EXPECT_EQ(health["models"][0]["in_flight"], 1);
    engine->controls->release();
    EXPECT_EQ(held.get().status, 200);
}

// With the default admission, requests run together (the engine batches them into each step):
// an agent fanning out 16 streams under one key gets all 16 running at once, none refused or
// queued behind the first.
TEST_F(NeuronServerTest, DefaultAdmissionRunsAFanOutTogether) {
    config_.admission = AdmissionConfig{};
    auto engine = std::make_shared<FakeEngine>();
    engine->controls->hold = true;
    start(engine);
    load_tiny(*engine);
    constexpr int kStreams = 16;
    std::vector<std::future<net::ClientResponse>> streams;
    for (int i = 0; i < kStreams; ++i) {
        streams.push_back(std::async(std::launch::async, [&] {
            return post("/v1/chat/completions", chat(true), {{"x-helexa-account-id", "agent"}});
        }));
    }
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (engine->controls->running.load() < kStreams &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(2ms);
    }
    EXPECT_EQ(engine->controls->running.load(), kStreams);
    auto health = json::parse(get("/health").body);
    EXPECT_EQ(health["models"][0]["in_flight"], kStreams);
    EXPECT_EQ(health["models"][0]["queue_depth"], 0);
    engine->controls->release();
    for (auto& s : streams) {
        EXPECT_EQ(s.get().status, 200);
    }
}

TEST_F(NeuronServerTest, ClientDisconnectCancelsTheEngineRequest) {
    auto engine = std::make_shared<FakeEngine>();
    engine->controls->hold = true;
    start(engine);
    load_tiny(*engine);
    net::ClientRequest req;
    req.method = "POST";
    req.url = url("/v1/chat/completions");
    req.body = chat(true).dump();
    // Opens the stream, reads its first piece, then hangs up.
    auto status = asio::co_spawn(
                      client_io_.context(),
                      [this, req]() mutable -> asio::awaitable<int> {
                          auto st = co_await client_.stream(std::move(req));
                          if (!st) {
                              co_return -1;
                          }
                          (void)co_await st->next();
                          st->close();
                          co_return st->status();
                      },
                      asio::use_future)
                      .get();
    EXPECT_EQ(status, 200);
    for (int i = 0; i < 200; ++i) {
        {
            std::lock_guard lock(engine->controls->mutex);
            if (!engine->controls->cancels.empty()) {
                break;
            }
        }
        std::this_thread::sleep_for(10ms);
    }
    std::lock_guard lock(engine->controls->mutex);
    EXPECT_EQ(engine->controls->cancels.size(), 1U);
}

TEST_F(NeuronServerTest, GracefulShutdownDrainsAnInFlightStream) {
    auto engine = std::make_shared<FakeEngine>();
    engine->controls->hold = true;
    start(engine);
    load_tiny(*engine);
    auto stream = std::async(std::launch::async,
                             [&] { return post("/v1/chat/completions", chat(true)); });
    while (engine->controls->running.load() == 0) {
        std::this_thread::sleep_for(2ms);
    }
    auto stopper = std::async(std::launch::async, [&] { server_->stop(); });
    std::this_thread::sleep_for(200ms);
    engine->controls->release();
    auto r = stream.get();
    stopper.get();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(parse_sse(r.body).back().data, "[DONE]");
    EXPECT_EQ(engine->unloads_snapshot(), std::vector<std::string>{"Qwen/Tiny"});
    EXPECT_EQ(server_->models_left_loaded(), 0);
}

TEST_F(NeuronServerTest, ShutdownReportsModelsThatWouldNotUnload) {
    auto engine = std::make_shared<FakeEngine>();
    engine->unload_hangs = true;
    start(engine);
    load_tiny(*engine);
    auto before = std::chrono::steady_clock::now();
    server_->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - before, 2500ms);
    EXPECT_EQ(server_->models_left_loaded(), 1);
    std::this_thread::sleep_for(3100ms);  // let the detached unload finish before teardown
}

}  // namespace
}  // namespace helexa::node
