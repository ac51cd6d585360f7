// The tokenizer adapter: the scheduler's per-request decoder over text::StreamingDecoder, and a
// whole generation through it where multi-byte characters arrive split across tokens.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "helexa/engine/runtime_tokenizer.h"
#include "scheduler_test_support.h"

namespace helexa::engine {
namespace {

using nlohmann::json;

// Byte-fallback BPE: ids 0..63 where 1 = "a", 2/3 = the two bytes of "é", 4 = special "<eos>".
text::Tokenizer tiny_tokenizer() {
    json vocab = {{"<unk>", 0}, {"a", 1}, {"<0xC3>", 2}, {"<0xA9>", 3}, {"<eos>", 4}};
    for (int i = 5; i < 64; ++i) {
        std::string piece = "t";  // appended, not "t" + ...: GCC bug 105329 (scripted_piece)
        piece += std::to_string(i);
        vocab[piece] = i;
    }
    json doc = {{"version", "1.0"},
                {"added_tokens",
                 json::array({{{"id", 4}, {"content", "<eos>"}, {"single_word", false},
                               {"lstrip", false}, {"rstrip", false}, {"normalized", false},
                               {"special", true}}})},
                {"normalizer", nullptr},
                {"pre_tokenizer", nullptr},
                {"post_processor", nullptr},
                {"decoder",
                 {{"type", "Sequence"},
                  {"decoders", json::array({{{"type", "ByteFallback"}}, {{"type", "Fuse"}}})}}},
                {"model",
                 {{"type", "BPE"},
                  {"unk_token", "<unk>"},
                  {"fuse_unk", true},
                  {"byte_fallback", true},
                  {"vocab", vocab},
                  {"merges", json::array()}}}};
    auto t = text::Tokenizer::from_json(doc.dump());
    EXPECT_TRUE(t.has_value()) << (t ? "" : t.error().full_message());
    return std::move(*t);
}

TEST(SchedulerTokenizer, DecoderHoldsSplitCharactersAndSkipsSpecials) {
    auto factory = tokenizer_text_decoder_factory(tiny_tokenizer());
    auto d = factory(GenerateRequest{});
    EXPECT_EQ(d->push(1), "a");
    EXPECT_EQ(d->push(2), "");
    EXPECT_EQ(d->push(3), "\xC3\xA9");
    EXPECT_EQ(d->push(4), "");  // special: skipped
    EXPECT_EQ(d->push(2), "");
    EXPECT_EQ(d->flush(), "\xEF\xBF\xBD");  // an unfinished character at the end
    // Each request gets an independent decoder.
    auto other = factory(GenerateRequest{});
    EXPECT_EQ(other->push(1), "a");
}

TEST(SchedulerTokenizer, GenerationThroughTheTokenizerMatchesABatchDecode) {
    const text::Tokenizer tok = tiny_tokenizer();
    testing::ScriptedRunner runner(64, 4, 64);
    SchedulerModel model;
    model.text_decoder = tokenizer_text_decoder_factory(tok);
    Scheduler s(runner, std::move(model), SchedulerOptions{});
    testing::Collector c;
    // Bias towards the two halves of "é" so characters are split across sampled tokens.
    auto r = testing::greedy_request({1, 2, 3}, 12);
    r.sampling.temperature = 1.0F;
    r.sampling.seed = 5;
    r.sampling.logit_bias = {{2, 6.0F}, {3, 6.0F}};
    ASSERT_TRUE(s.submit(std::move(r), c.sink()));
    testing::run_until_idle(s);
    ASSERT_TRUE(c.done());
    EXPECT_EQ(c.terminal().finish_reason, FinishReason::kLength);
    // Every delta is valid UTF-8 on its own: no character is ever split between deltas.
    bool saw_multibyte = false;
    for (const auto& ev : c.events()) {
        if (ev.kind != EngineEvent::Kind::kTextDelta) {
            continue;
        }
        const auto& t = ev.text;
        for (size_t i = 0; i < t.size(); ++i) {
            const auto b = static_cast<unsigned char>(t[i]);
            if (b == 0xC3) {
                ASSERT_LT(i + 1, t.size()) << "lead byte at the end of a delta";
                saw_multibyte = true;
            }
            if (b == 0xA9 || b == 0xBD || b == 0xBF) {
                ASSERT_GT(i, 0U) << "continuation byte at the start of a delta";
            }
        }
    }
    EXPECT_TRUE(saw_multibyte);
}

}  // namespace
}  // namespace helexa::engine
