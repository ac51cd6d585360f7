// Device-fault recovery and the free-VRAM gate over real HTTP: a NeuronServer with the real
// LocalEngine and a tiny random Qwen3-architecture model (char-level tokenizer) in the HF
// cache, configured the way the daemon is (load_neuron_config with NEURON_* variables, then
// local_engine_options). NEURON_DEBUG_POISON makes one request fail with 503 model_recovering +
// Retry-After, /models shows the model recovering and then loaded, and the next request is
// served; a failed reload drops the model; NEURON_MIN_FREE_VRAM_MB answers 503
// insufficient_vram.
#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include "helexa/engine/local_engine.h"
#include "helexa/engine/random_model.h"
#include "helexa/net/client.h"
#include "helexa/net/server.h"
#include "helexa/node/engine_options.h"
#include "helexa/node/neuron_server.h"

namespace helexa::node {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using nlohmann::json;


class NoGpu : public GpuMonitor {
public:
    GpuDiscovery discover() override { return {}; }
    std::vector<wire::DeviceHealth> health() override { return {}; }
};

// What the test controls in every runner the engine loads: whether the reload (load 2) waits,
// whether it fails, and what device memory the runner reports.
struct Controls {
    std::mutex mu;
    std::condition_variable cv;
    int loads = 0;
    bool hold_reload = false;
    bool fail_reload = false;
    std::optional<int64_t> free_bytes;
    int fed_slices = 0;  // decode tokens launched ahead, fed from the step before

    void release() {
        std::lock_guard lock(mu);
        hold_reload = false;
        cv.notify_all();
    }
};

class ReportingRunner final : public engine::CausalLmRunner {
public:
    ReportingRunner(std::unique_ptr<engine::CausalLmRunner> inner, std::shared_ptr<Controls> c)
        : inner_(std::move(inner)), c_(std::move(c)) {}
    int64_t vocab_size() const override { return inner_->vocab_size(); }
    const engine::KvLayout& kv_layout() const override { return inner_->kv_layout(); }
    Status step(const engine::StepBatch& b, std::vector<float>& logits) override {
        return inner_->step(b, logits);
    }
    Status launch_argmax(const engine::StepBatch& b) override {
        count_fed(b);
        return inner_->launch_argmax(b);
    }
    Status launch_sample(const engine::StepBatch& b, const engine::DrawBatch& draws) override {
        count_fed(b);
        return inner_->launch_sample(b, draws);
    }
    Status finish_launched(std::vector<int32_t>& tokens) override {
        return inner_->finish_launched(tokens);
    }
    const engine::ModelConfig& config() const override { return inner_->config(); }
    const engine::GenerationDefaults& generation_defaults() const override {
        return inner_->generation_defaults();
    }
    int64_t max_context_tokens() const override { return inner_->max_context_tokens(); }
    int64_t weight_bytes() const override { return inner_->weight_bytes(); }
    int64_t kv_cache_bytes() const override { return inner_->kv_cache_bytes(); }
    std::string_view backend_name() const override { return inner_->backend_name(); }
    void set_activation_hook(engine::ActivationHook hook) override {
        inner_->set_activation_hook(std::move(hook));
    }
    std::optional<engine::Backend::MemoryInfo> device_memory() const override {
        std::lock_guard lock(c_->mu);
        if (!c_->free_bytes) {
            return std::nullopt;
        }
        return engine::Backend::MemoryInfo{*c_->free_bytes, int64_t{80} << 30};
    }

private:
    void count_fed(const engine::StepBatch& b) {
        std::lock_guard lock(c_->mu);
        for (const auto& s : b.seqs) {
            c_->fed_slices += s.fed_row >= 0 ? 1 : 0;
        }
    }

    std::unique_ptr<engine::CausalLmRunner> inner_;
    std::shared_ptr<Controls> c_;
};

class FaultRecoveryHttpTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        snapshot_ = fs::temp_directory_path() /
                    ("helexa-neuron-fault-model-" + std::to_string(::getpid()));
        fs::create_directories(snapshot_);
        engine::RandomModelSpec spec;
        spec.model_type = "qwen3";
        spec.vocab_size = 512;
        spec.num_hidden_layers = 1;
        spec.seed = 5;
        spec.eos_token_ids = {511};
        ASSERT_TRUE(engine::write_random_model(spec, snapshot_).has_value());
        engine::write_tiny_tokenizer(snapshot_, 512);
    }
    static void TearDownTestSuite() { fs::remove_all(snapshot_); }

    void SetUp() override {
        cache_ = fs::temp_directory_path() /
                 ("helexa-neuron-fault-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(cache_);
        const fs::path repo = cache_ / "models--Qwen--Tiny";
        fs::create_directories(repo / "refs");
        std::ofstream(repo / "refs" / "main") << "rev1";
        fs::create_directories(repo / "snapshots");
        fs::copy(snapshot_, repo / "snapshots" / "rev1", fs::copy_options::recursive);
        client_io_.start();
    }
    void TearDown() override {
        server_.reset();
        client_io_.stop();
        client_io_.join();
        fs::remove_all(cache_);
    }

    // The daemon's path: neuron.toml (none) + NEURON_* variables -> NeuronConfig -> engine.
    void start(const Environment& env) {
        auto reader = ConfigReader::empty("test", "NEURON_", env);
        NeuronConfig config = load_neuron_config(reader, env);
        config.listen = ListenAddress{"127.0.0.1", 0};
        config.sources["huggingface"] = SourceConfig{"huggingface", "http://127.0.0.1:9",
                                                     std::nullopt, std::nullopt, cache_.string()};
        config.drain_timeout_secs = 5;
        config.unload_timeout_secs = 5;
        engine::LocalEngineOptions options = local_engine_options(config);
        options.runner.backend.kind = "cpu";
        options.runner.backend.n_threads = 1;
        options.runner.n_blocks = 32;
        options.runner_decorator =
            [c = controls_](const engine::LoadSpec&, std::unique_ptr<engine::CausalLmRunner> r)
            -> Result<std::unique_ptr<engine::CausalLmRunner>> {
            std::unique_lock lock(c->mu);
            const int n = ++c->loads;
            c->cv.notify_all();
            if (n >= 2) {
                c->cv.wait(lock, [&] { return !c->hold_reload; });
                if (c->fail_reload) {
                    return fail(ErrorCode::kIo, "injected reload failure (test)");
                }
            }
            return std::unique_ptr<engine::CausalLmRunner>(
                std::make_unique<ReportingRunner>(std::move(r), c));
        };
        NeuronServerDeps deps;
        deps.gpu = std::make_unique<NoGpu>();
        deps.handle_signals = false;
        server_ = std::make_unique<NeuronServer>(std::move(deps));
        auto st = server_->start(config, std::make_shared<engine::LocalEngine>(options));
        ASSERT_TRUE(st) << st.error().full_message();
        auto r = post("/models/load", json{{"model_id", "Qwen/Tiny"}});
        ASSERT_EQ(r.status, 200) << r.body;
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
    net::ClientResponse post(const std::string& path, const json& body) {
        net::ClientRequest req;
        req.method = "POST";
        req.url = url(path);
        req.body = body.dump();
        req.headers.set("Content-Type", "application/json");
        auto r = asio::co_spawn(client_io_.context(), client_.request(std::move(req)),
                                asio::use_future)
                     .get();
        EXPECT_TRUE(r) << r.error().full_message();
        return r ? *r : net::ClientResponse{};
    }
    net::ClientResponse complete() {
        return post("/v1/completions", json{{"model", "Qwen/Tiny"},
                                            {"prompt", "Hello there"},
                                            {"max_tokens", 3},
                                            {"temperature", 0}});
    }
    // The status /models reports for Qwen/Tiny ("" when not listed).
    std::string status() {
        auto list = json::parse(get("/models").body);
        for (const auto& m : list) {
            if (m.value("id", "") == "Qwen/Tiny") {
                return m.value("status", "?");
            }
        }
        return "";
    }
    bool wait_status(const std::string& want) {
        for (int i = 0; i < 1000; ++i) {
            if (status() == want) {
                return true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }
    void expect_error(const net::ClientResponse& r, int http, const std::string& code,
                      const std::string& retry_after) {
        EXPECT_EQ(r.status, http) << r.body;
        auto body = json::parse(r.body, nullptr, false);
        ASSERT_TRUE(body.is_object()) << r.body;
        EXPECT_EQ(body["error"]["type"], "api_error") << r.body;
        EXPECT_EQ(body["error"]["code"], code) << r.body;
        EXPECT_EQ(r.headers.get("Retry-After"), std::optional<std::string_view>(retry_after));
    }

    static inline fs::path snapshot_;
    fs::path cache_;
    std::shared_ptr<Controls> controls_ = std::make_shared<Controls>();
    net::IoPool client_io_{2};
    net::Client client_{client_io_.context().get_executor()};
    std::unique_ptr<NeuronServer> server_;
};

TEST_F(FaultRecoveryHttpTest, DebugPoisonFailsOneRequestThenTheModelRecoversAndServes) {
    controls_->hold_reload = true;
    start({{"NEURON_DEBUG_POISON", "huggingface:Qwen/Tiny"}});
    EXPECT_EQ(status(), "loaded");

    auto faulted = complete();
    expect_error(faulted, 503, "model_recovering", "2");
    EXPECT_NE(faulted.body.find("NEURON_DEBUG_POISON"), std::string::npos) << faulted.body;

    EXPECT_EQ(status(), "recovering");  // the reload is held by the test
    auto during = complete();
    expect_error(during, 503, "model_recovering", "2");
    auto models = json::parse(get("/models").body);
    ASSERT_EQ(models.size(), 1u);
    EXPECT_EQ(models[0]["capabilities"], json::array({"text"}));  // kept while recovering

    controls_->release();
    ASSERT_TRUE(wait_status("loaded"));
    auto served = complete();
    ASSERT_EQ(served.status, 200) << served.body;
    auto body = json::parse(served.body);
    EXPECT_GT(body["usage"]["completion_tokens"].get<int64_t>(), 0);
    auto again = complete();  // the fault fires once per process
    EXPECT_EQ(again.status, 200) << again.body;
    std::lock_guard lock(controls_->mu);
    EXPECT_EQ(controls_->loads, 2);
}

TEST_F(FaultRecoveryHttpTest, FailedReloadDropsTheModel) {
    controls_->fail_reload = true;
    start({{"NEURON_DEBUG_POISON", "Qwen/Tiny"}});
    expect_error(complete(), 503, "model_recovering", "2");
    ASSERT_TRUE(wait_status(""));  // no longer listed: not loaded
    EXPECT_EQ(complete().status, 404);
    // An explicit load starts over.
    {
        std::lock_guard lock(controls_->mu);
        controls_->fail_reload = false;
    }
    auto r = post("/models/load", json{{"model_id", "Qwen/Tiny"}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(status(), "loaded");
    EXPECT_EQ(complete().status, 200);
}

TEST_F(FaultRecoveryHttpTest, LowFreeVramAnswersInsufficientVram) {
    controls_->free_bytes = int64_t{700} << 20;
    start({{"NEURON_MIN_FREE_VRAM_MB", "1500"}});
    auto refused = complete();
    expect_error(refused, 503, "insufficient_vram", "5");
    EXPECT_EQ(status(), "loaded");  // a full device poisons nothing
    {
        std::lock_guard lock(controls_->mu);
        controls_->free_bytes = int64_t{4000} << 20;
    }
    EXPECT_EQ(complete().status, 200);
}

TEST_F(FaultRecoveryHttpTest, BadMinFreeVramIsAConfigError) {
    Environment env{{"NEURON_MIN_FREE_VRAM_MB", "-1"}};
    auto reader = ConfigReader::empty("test", "NEURON_", env);
    EXPECT_THROW(load_neuron_config(reader, env), ConfigError);
}

// The same harness, for overlapped decoding (overlap_decode / NEURON_OVERLAP_DECODE, on by
// default): a greedy completion served with each decode step launched before the last one's
// token is read gives the text, finish reason and usage the daemon gives without it.
class OverlappedDecodeHttpTest : public FaultRecoveryHttpTest {};

TEST_F(OverlappedDecodeHttpTest, CompletionsAreTheSameWithDecodingOverlapped) {
    // Plain greedy, the default request (greedy with the engine's repetition penalty, drawn
    // with its token in flight), and a seeded sampled one with every penalty.
    const std::vector<json> requests = {
        {{"model", "Qwen/Tiny"}, {"prompt", "Hello there"}, {"max_tokens", 24},
         {"temperature", 0}, {"repetition_penalty", 1.0}},
        {{"model", "Qwen/Tiny"}, {"prompt", "Once upon"}, {"max_tokens", 24},
         {"temperature", 0}},
        {{"model", "Qwen/Tiny"}, {"prompt", "A seeded"}, {"max_tokens", 24},
         {"temperature", 0.9}, {"seed", 42}, {"repetition_penalty", 1.5},
         {"presence_penalty", 0.5}, {"frequency_penalty", 0.3}},
    };
    std::vector<json> plain;
    start({{"NEURON_OVERLAP_DECODE", "false"}});
    for (const json& r : requests) {
        auto res = post("/v1/completions", r);
        ASSERT_EQ(res.status, 200) << res.body;
        plain.push_back(json::parse(res.body));
    }
    EXPECT_EQ(controls_->fed_slices, 0);
    server_.reset();
    start({});  // overlapped by default
    for (size_t i = 0; i < requests.size(); ++i) {
        SCOPED_TRACE(requests[i].dump());
        const int fed_before = controls_->fed_slices;
        auto res = post("/v1/completions", requests[i]);
        ASSERT_EQ(res.status, 200) << res.body;
        EXPECT_GT(controls_->fed_slices - fed_before, 10);
        const json b = json::parse(res.body);
        const json& a = plain[i];
        EXPECT_EQ(b["choices"][0]["text"], a["choices"][0]["text"]);
        EXPECT_EQ(b["choices"][0]["finish_reason"], a["choices"][0]["finish_reason"]);
        EXPECT_EQ(b["usage"], a["usage"]);
        EXPECT_FALSE(a["choices"][0]["text"].get<std::string>().empty());
    }
}

}  // namespace
}  // namespace helexa::node
