// Replays the transformers reference fixtures (scripts/fixtures/make_model_fixtures.py, committed
// under tests/fixtures/models/<name>/) through the engine: prefill chunked at 64 tokens with
// logits requested at each recorded position; argmax identical everywhere, cosine >= 0.9999 and
// max-abs within a tight f32 bound. A missing fixture directory skips with instructions.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

#include <nlohmann/json.hpp>

#include "helexa/engine/model_runner.h"

namespace helexa::engine {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtureRoot = fs::path(HELEXA_SOURCE_DIR) / "tests" / "fixtures" / "models";
constexpr int64_t kChunk = 64;

class ModelFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelFixture, MatchesTransformersLogits) {
    const fs::path dir = kFixtureRoot / GetParam();
    if (!fs::exists(dir / "reference.json")) {
        GTEST_SKIP() << "fixture " << dir
                     << " not generated yet: run scripts/fixtures/make_model_fixtures.py on the "
                        "GPU machine and commit tests/fixtures/models/";
    }
    std::ifstream mf(dir / "reference.json");
    auto manifest = nlohmann::json::parse(mf);
    std::ifstream bin(dir / "reference_logits.bin", std::ios::binary);
    std::vector<char> raw((std::istreambuf_iterator<char>(bin)), {});

    ModelRunnerOptions opt;
    opt.block_size = 16;
    opt.n_blocks = 32;
    auto runner = load_model_runner(dir, opt);
    ASSERT_TRUE(runner.has_value()) << runner.error().full_message();
    const int64_t V = (*runner)->vocab_size();
    // The engine computes in f32 from the stored weights, as the reference does (bf16 weights
    // are upcast; the rotary inverse frequencies stay f32): the two agree to ~1e-5.
    const double max_abs_bound = 1e-3;
    ASSERT_EQ(V, manifest["vocab_size"].get<int64_t>());

    for (const auto& p : manifest["prompts"]) {
        const auto tokens = p["tokens"].get<std::vector<int32_t>>();
        const auto positions = p["positions"].get<std::vector<int64_t>>();
        const auto offset = p["offset_bytes"].get<size_t>();
        ASSERT_LE(offset + positions.size() * static_cast<size_t>(V) * 4, raw.size());
        const auto* ref = reinterpret_cast<const float*>(raw.data() + offset);
        std::vector<int32_t> table(static_cast<size_t>((tokens.size() + 15) / 16));
        std::iota(table.begin(), table.end(), 0);
        // Steps end at every recorded position and at chunk boundaries, so recorded rows come
        // from chunks that attend to a cached prefix as well as from fresh prefill.
        std::set<int64_t> ends(positions.begin(), positions.end());
        for (auto i = kChunk - 1; i < static_cast<int64_t>(tokens.size()); i += kChunk) {
            ends.insert(i);
        }
        int64_t start = 0;
        size_t row = 0;
        for (int64_t end : ends) {
            StepBatch b;
            b.seqs.push_back({1, std::span(tokens).subspan(static_cast<size_t>(start),
                                                           static_cast<size_t>(end - start + 1)),
                              start, table, true});
            std::vector<float> logits;
            auto st = (*runner)->step(b, logits);
            ASSERT_TRUE(st.has_value()) << st.error().full_message();
            start = end + 1;
            if (row >= positions.size() || positions[row] != end) {
                continue;
            }
            const float* want = ref + row * static_cast<size_t>(V);
            double dot = 0;
            double na = 0;
            double nb = 0;
            double max_abs = 0;
            int64_t got_arg = 0;
            int64_t want_arg = 0;
            for (int64_t v = 0; v < V; ++v) {
                dot += static_cast<double>(logits[static_cast<size_t>(v)]) * want[v];
                na += static_cast<double>(logits[static_cast<size_t>(v)]) *
                      logits[static_cast<size_t>(v)];
                nb += static_cast<double>(want[v]) * want[v];
                max_abs = std::max<double>(max_abs,
                                           std::abs(logits[static_cast<size_t>(v)] - want[v]));
                if (logits[static_cast<size_t>(v)] > logits[static_cast<size_t>(got_arg)]) {
                    got_arg = v;
                }
                if (want[v] > want[want_arg]) {
                    want_arg = v;
                }
            }
            const double cosine = dot / std::sqrt(na * nb);
            EXPECT_EQ(got_arg, want_arg) << p["name"] << " position " << end;
            EXPECT_GE(cosine, 0.9999) << p["name"] << " position " << end;
            EXPECT_LT(max_abs, max_abs_bound) << p["name"] << " position " << end;
            ++row;
        }
        EXPECT_EQ(row, positions.size()) << "every recorded position was compared";
    }
}

INSTANTIATE_TEST_SUITE_P(Transformers, ModelFixture,
                         ::testing::Values("qwen3_tied_f32", "qwen3_untied_f32", "llama3_f32",
                                           "qwen2_bias_f32", "qwen3_bf16"));

}  // namespace
}  // namespace helexa::engine
