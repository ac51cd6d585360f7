// The embedded default model: deterministic files, and weights that end a turn by themselves
// (greedy and at temperature 1) through the real loader and scheduler. A small-vocabulary
// variant keeps it fast; the full-size figures are in docs/perf/engine-cpu.md.
#include "helexa/engine/demo_model.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "helexa/engine/model_runner.h"
#include "helexa/engine/scheduler.h"

namespace helexa::engine {
namespace {

namespace fs = std::filesystem;

DemoModelSpec small_spec() {
    DemoModelSpec s;
    s.vocab_size = 4096;
    s.n_regular_tokens = 4000;
    s.eos_token_ids = {4002, 4000};
    s.bos_token_id = 4000;
    s.start_token_ids = {10, 11};
    s.n_phases = 12;
    return s;
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

uint64_t fnv1a(const std::string& bytes, uint64_t h = 1469598103934665603ULL) {
    for (char c : bytes) {
        h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ULL;
    }
    return h;
}

uint64_t snapshot_hash(const fs::path& dir) {
    uint64_t h = 1469598103934665603ULL;
    for (const char* f : {"config.json", "generation_config.json", "model.safetensors"}) {
        h = fnv1a(read_file(dir / f), h);
    }
    return h;
}

// Decodes each id as "<id>," so the test sees exactly which tokens were generated.
class IdDecoder final : public TokenTextDecoder {
public:
    std::string push(int32_t id) override { return std::to_string(id) + ","; }
    std::string flush() override { return {}; }
};

struct Turn {
    std::vector<int32_t> ids;  // generated, EOS excluded
    FinishReason reason = FinishReason::kError;
    int64_t completion_tokens = 0;
    bool finished = false;
};

class DemoModelTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new fs::path(fs::temp_directory_path() /
                            ("helexa-demo-model-" + std::to_string(::getpid())));
        ASSERT_TRUE(write_demo_model(small_spec(), *dir_).has_value());
        ModelRunnerOptions o;
        o.backend.n_threads = 2;
        o.block_size = 16;
        o.n_blocks = 256;
        auto r = load_model_runner(*dir_, o);
        ASSERT_TRUE(r.has_value()) << r.error().full_message();
        runner_ = r->release();
    }
    static void TearDownTestSuite() {
        delete runner_;
        runner_ = nullptr;
        fs::remove_all(*dir_);
        delete dir_;
    }

    // Runs the requests through one scheduler on this thread.
    static std::vector<Turn> generate(const std::vector<GenerateRequest>& requests) {
        SchedulerModel model;
        model.generation = runner_->generation_defaults();
        model.context_limit = runner_->max_context_tokens();
        model.text_decoder = [](const GenerateRequest&) { return std::make_unique<IdDecoder>(); };
        Scheduler sched(*runner_, model, SchedulerOptions{});
        std::vector<Turn> turns(requests.size());
        std::vector<std::string> text(requests.size());
        for (size_t i = 0; i < requests.size(); ++i) {
            auto id = sched.submit(requests[i], [&, i](EngineEvent ev) {
                if (ev.kind == EngineEvent::Kind::kTextDelta) {
                    text[i] += ev.text;
                } else if (ev.kind == EngineEvent::Kind::kFinish) {
                    turns[i].finished = true;
                    turns[i].reason = ev.finish_reason;
                    turns[i].completion_tokens = ev.usage.completion_tokens;
                }
            });
            EXPECT_TRUE(id.has_value());
        }
        for (int guard = 0; guard < 100000 && sched.step_once(); ++guard) {
        }
        for (size_t i = 0; i < requests.size(); ++i) {
            size_t pos = 0;
            while (pos < text[i].size()) {
                const size_t comma = text[i].find(',', pos);
                turns[i].ids.push_back(std::stoi(text[i].substr(pos, comma - pos)));
                pos = comma + 1;
            }
        }
        return turns;
    }

    static std::vector<int32_t> prompt(int salt, int64_t length, int32_t last) {
        std::vector<int32_t> p;
        for (int64_t i = 0; i < length; ++i) {
            p.push_back(static_cast<int32_t>((i * 131 + salt * 977 + i * i * 7) % 3990));
        }
        p.push_back(last);
        return p;
    }

    static fs::path* dir_;
    static CausalLmRunner* runner_;
};

fs::path* DemoModelTest::dir_ = nullptr;
CausalLmRunner* DemoModelTest::runner_ = nullptr;

TEST(DemoModelSpecTest, DefaultsAreTheQwen3VocabularyWithALongContext) {
    const DemoModelSpec s;
    EXPECT_EQ(s.vocab_size, 151936);
    EXPECT_EQ(s.n_regular_tokens, 151643);
    EXPECT_EQ(s.eos_token_ids, (std::vector<int32_t>{151645, 151643}));
    EXPECT_GE(s.max_position_embeddings, 40960);
    const RandomModelSpec r = demo_random_model_spec(s);
    EXPECT_EQ(r.model_type, "qwen3");
    EXPECT_FALSE(r.tie_word_embeddings);
    EXPECT_EQ(r.dtype, DType::kBF16);
}

TEST(DemoModelSpecTest, RejectsInconsistentSpecs) {
    const fs::path dir = fs::temp_directory_path() /
                         ("helexa-demo-model-bad-" + std::to_string(::getpid()));
    DemoModelSpec s = small_spec();
    s.hidden_size = 16;  // no room for 12 phases
    auto st = write_demo_model(s, dir);
    ASSERT_FALSE(st.has_value());
    EXPECT_EQ(st.error().code(), ErrorCode::kInvalidRequest);
    s = small_spec();
    s.eos_token_ids = {5000};
    st = write_demo_model(s, dir);
    ASSERT_FALSE(st.has_value());
    EXPECT_NE(st.error().message().find("5000"), std::string::npos);
    s = small_spec();
    s.start_phase_fraction = 1.0;
    EXPECT_FALSE(write_demo_model(s, dir).has_value());
    EXPECT_FALSE(fs::exists(dir / "model.safetensors"));
    fs::remove_all(dir);
}

TEST(DemoModelSpecTest, PhasesCoverTheWalkAndPinStartTokens) {
    const DemoModelSpec s = small_spec();
    const auto phase = demo_token_phases(s);
    ASSERT_EQ(phase.size(), 4096U);
    EXPECT_EQ(phase[10], 0);
    EXPECT_EQ(phase[11], 0);
    std::vector<int> count(static_cast<size_t>(s.n_phases + 1), 0);
    for (size_t t = 0; t < phase.size(); ++t) {
        ASSERT_GE(phase[t], 0);
        ASSERT_LE(phase[t], s.n_phases);
        if (t >= 4000) {
            EXPECT_EQ(phase[t], 0) << t;
        }
        ++count[static_cast<size_t>(phase[t])];
    }
    // About half the regular tokens start a turn; every later phase has its share of the rest.
    EXPECT_GT(count[0], 1700);
    EXPECT_LT(count[0], 2300);
    for (int p = 1; p <= s.n_phases; ++p) {
        EXPECT_GT(count[static_cast<size_t>(p)], 100) << p;
    }
}

TEST_F(DemoModelTest, WritesQwen3ConfigsWithBothEosIds) {
    const auto config = nlohmann::json::parse(read_file(*dir_ / "config.json"));
    EXPECT_EQ(config["model_type"], "qwen3");
    EXPECT_EQ(config["vocab_size"], 4096);
    EXPECT_EQ(config["tie_word_embeddings"], false);
    EXPECT_GE(config["max_position_embeddings"].get<int64_t>(), 40960);
    EXPECT_EQ(config["torch_dtype"], "bfloat16");
    const auto gen = nlohmann::json::parse(read_file(*dir_ / "generation_config.json"));
    EXPECT_EQ(gen["eos_token_id"], nlohmann::json::array({4002, 4000}));
    EXPECT_EQ(runner_->generation_defaults().eos_token_ids, (std::vector<int32_t>{4002, 4000}));
    EXPECT_GE(runner_->max_context_tokens(), 4096);
}

TEST_F(DemoModelTest, SameSpecGivesByteIdenticalFiles) {
    const fs::path again = *dir_ / "again";
    ASSERT_TRUE(write_demo_model(small_spec(), again).has_value());
    EXPECT_EQ(snapshot_hash(again), snapshot_hash(*dir_));
    // Pinned so an accidental change to the generator (which would change `make run`'s model)
    // shows up here; update it deliberately with the new value.
    EXPECT_EQ(snapshot_hash(*dir_), 0xa8f5a26a1a06730bULL);
    DemoModelSpec other = small_spec();
    other.seed += 1;
    ASSERT_TRUE(write_demo_model(other, again).has_value());
    EXPECT_NE(read_file(again / "model.safetensors"), read_file(*dir_ / "model.safetensors"));
    fs::remove_all(again);
}

// The mechanism itself, on the logits: EOS dominates right after a closing (last-phase) token
// and is negligible after any other token; otherwise the likeliest token is one phase ahead.
TEST_F(DemoModelTest, EosIsLikelyOnlyAfterAClosingToken) {
    const DemoModelSpec s = small_spec();
    const auto phase = demo_token_phases(s);
    const int64_t vocab = s.vocab_size;
    std::vector<int32_t> table(4);
    for (int i = 0; i < 4; ++i) {
        table[static_cast<size_t>(i)] = i;
    }
    // Two tokens of every phase (the first and the tenth of it) as the last prompt token.
    int checked = 0;
    for (int32_t ph = 0; ph <= s.n_phases; ++ph) {
        int seen = 0;
        for (int32_t tok = 0; tok < 4000; ++tok) {
            if (phase[static_cast<size_t>(tok)] != ph || (++seen != 1 && seen != 10)) {
                continue;
            }
            const auto p = prompt(tok, 20, tok);
            StepBatch b;
            b.seqs.push_back({1, p, 0, table, true});
            std::vector<float> logits;
            ASSERT_TRUE(runner_->step(b, logits).has_value());
            ASSERT_EQ(static_cast<int64_t>(logits.size()), vocab);
            const float mx = *std::max_element(logits.begin(), logits.end());
            double z = 0;
            for (float l : logits) {
                z += std::exp(static_cast<double>(l - mx));
            }
            const double p_eos = (std::exp(static_cast<double>(logits[4002] - mx)) +
                                  std::exp(static_cast<double>(logits[4000] - mx))) / z;
            const auto best = static_cast<size_t>(
                std::max_element(logits.begin(), logits.end()) - logits.begin());
            if (ph == s.n_phases) {
                EXPECT_GT(p_eos, 0.95) << "after closing token " << tok;
            } else {
                EXPECT_LT(p_eos, 1e-4) << "after token " << tok << " of phase " << ph;
                EXPECT_EQ(phase[best], ph + 1) << "after token " << tok;
            }
            ++checked;
        }
    }
    EXPECT_EQ(checked, 2 * (s.n_phases + 1));
}

TEST_F(DemoModelTest, GreedyTurnsEndWithEosAfterTheWholeWalk) {
    const DemoModelSpec s = small_spec();
    const auto phase = demo_token_phases(s);
    std::vector<GenerateRequest> reqs;
    for (int salt = 0; salt < 5; ++salt) {
        GenerateRequest r;
        r.prompt_tokens = prompt(salt, 30 + salt * 41, salt % 2 == 0 ? 10 : 11);
        r.sampling.temperature = 0.0F;
        r.sampling.max_tokens = 200;
        reqs.push_back(r);
    }
    const auto turns = generate(reqs);
    std::set<std::vector<int32_t>> distinct;
    for (const auto& t : turns) {
        ASSERT_TRUE(t.finished);
        EXPECT_EQ(t.reason, FinishReason::kStop);
        // From a start token the walk visits every phase once, then EOS.
        ASSERT_EQ(static_cast<int>(t.ids.size()), s.n_phases);
        EXPECT_EQ(t.completion_tokens, s.n_phases + 1);  // EOS counts as generated
        for (size_t i = 0; i < t.ids.size(); ++i) {
            EXPECT_EQ(phase[static_cast<size_t>(t.ids[i])], static_cast<int32_t>(i + 1));
        }
        distinct.insert(t.ids);
    }
    // The layers make the choice within a phase depend on the context.
    EXPECT_GE(distinct.size(), 2U);
}

TEST_F(DemoModelTest, SampledTurnsAtTemperatureOneEndWithEos) {
    const auto phase = demo_token_phases(small_spec());
    auto first_of_phase = [&](int32_t p) {
        return static_cast<int32_t>(std::find(phase.begin(), phase.end(), p) - phase.begin());
    };
    std::vector<GenerateRequest> reqs;
    for (int salt = 0; salt < 4; ++salt) {
        for (uint64_t seed = 1; seed <= 4; ++seed) {
            GenerateRequest r;
            // Not only start tokens: from phase p the turn is shorter but still ends.
            r.prompt_tokens = prompt(salt, 25, salt < 2 ? 10 : first_of_phase(salt));
            r.sampling.temperature = 1.0F;
            r.sampling.top_p = 1.0F;
            r.sampling.top_k = 0;
            r.sampling.seed = seed;
            r.sampling.max_tokens = 200;
            reqs.push_back(r);
        }
    }
    const auto turns = generate(reqs);
    std::set<std::vector<int32_t>> distinct;
    std::vector<std::set<std::vector<int32_t>>> per_prompt(4);
    int64_t total = 0;
    for (size_t i = 0; i < turns.size(); ++i) {
        const auto& t = turns[i];
        ASSERT_TRUE(t.finished) << i;
        EXPECT_EQ(t.reason, FinishReason::kStop) << i;
        EXPECT_LT(t.ids.size(), 200U) << i;
        EXPECT_GE(t.ids.size(), 3U) << i;
        for (int32_t id : t.ids) {
            EXPECT_LT(id, 4000) << "special id generated in request " << i;
        }
        distinct.insert(t.ids);
        per_prompt[i / 4].insert(t.ids);
        total += static_cast<int64_t>(t.ids.size());
    }
    // Seeds vary the text: each prompt's four seeds give four texts. (Two prompts under one seed
    // may give the same text: a draw's noise depends on seed, position and id only, so where
    // the model's distributions agree the draws do too, as vLLM's seeded sampling.)
    for (size_t p = 0; p < per_prompt.size(); ++p) {
        EXPECT_EQ(per_prompt[p].size(), 4U) << "prompt " << p;
    }
    EXPECT_GE(distinct.size(), 8U);  // the start phases differ between prompts 0-1 and 2-3
    EXPECT_GT(total, static_cast<int64_t>(turns.size()) * 3);
}

}  // namespace
}  // namespace helexa::engine
