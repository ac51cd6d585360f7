// Sampling resolution: request -> generation_config.json -> documented fallbacks, validation.
#include <gtest/gtest.h>

#include "helexa/engine/sampling_config.h"

namespace helexa::engine {
namespace {

TEST(SamplerConfig, FallbacksWhenNothingIsSet) {
    auto cfg = resolve_sampling({}, {}, 100, 100000);
    ASSERT_TRUE(cfg);
    EXPECT_FLOAT_EQ(cfg->temperature, 1.0F);
    EXPECT_FLOAT_EQ(cfg->top_p, 1.0F);
    EXPECT_EQ(cfg->top_k, 0);
    EXPECT_FLOAT_EQ(cfg->min_p, 0.0F);
    EXPECT_FLOAT_EQ(cfg->repetition_penalty, 1.1F);
    EXPECT_EQ(cfg->repetition_window, 64);
    EXPECT_EQ(cfg->max_tokens, 8192);
    EXPECT_FALSE(cfg->greedy());
}

TEST(SamplerConfig, RequestBeatsGenerationConfigBeatsFallback) {
    GenerationDefaults gen;
    gen.temperature = 0.6F;
    gen.top_p = 0.95F;
    gen.top_k = 20;
    gen.repetition_penalty = 1.05F;
    SamplingParams req;
    req.top_p = 0.5F;
    auto cfg = resolve_sampling(req, gen, 100, 1000);
    ASSERT_TRUE(cfg);
    EXPECT_FLOAT_EQ(cfg->temperature, 0.6F);
    EXPECT_FLOAT_EQ(cfg->top_p, 0.5F);
    EXPECT_EQ(cfg->top_k, 20);
    EXPECT_FLOAT_EQ(cfg->repetition_penalty, 1.05F);
    EXPECT_FLOAT_EQ(cfg->min_p, 0.0F);
}

TEST(SamplerConfig, DoSampleFalseMeansGreedyUnlessTheRequestSetsTemperature) {
    GenerationDefaults gen;
    gen.do_sample = false;
    gen.temperature = 0.7F;
    auto cfg = resolve_sampling({}, gen, 100, 1000);
    ASSERT_TRUE(cfg);
    EXPECT_TRUE(cfg->greedy());
    SamplingParams req;
    req.temperature = 0.9F;
    EXPECT_FLOAT_EQ(resolve_sampling(req, gen, 100, 1000)->temperature, 0.9F);
}

TEST(SamplerConfig, MaxTokensIsClippedToTheContextLeft) {
    EXPECT_EQ(resolve_sampling({}, {}, 100, 300)->max_tokens, 300);
    SamplingParams req;
    req.max_tokens = 50;
    EXPECT_EQ(resolve_sampling(req, {}, 100, 300)->max_tokens, 50);
    req.max_tokens = 5000;
    EXPECT_EQ(resolve_sampling(req, {}, 100, 300)->max_tokens, 300);
    GenerationDefaults gen;
    gen.max_new_tokens = 64;
    EXPECT_EQ(resolve_sampling({}, gen, 100, 300)->max_tokens, 64);
    auto none_left = resolve_sampling({}, {}, 100, 0);
    ASSERT_FALSE(none_left);
    EXPECT_EQ(none_left.error().code(), ErrorCode::kContextLengthExceeded);
}

TEST(SamplerConfig, OutOfRangeValuesNameTheField) {
    struct Case {
        const char* field;
        SamplingParams params;
    };
    std::vector<Case> cases(9);
    cases[0] = {"temperature", {}};
    cases[0].params.temperature = -0.1F;
    cases[1] = {"top_p", {}};
    cases[1].params.top_p = 0.0F;
    cases[2] = {"top_k", {}};
    cases[2].params.top_k = -2;
    cases[3] = {"min_p", {}};
    cases[3].params.min_p = 1.5F;
    cases[4] = {"repetition_penalty", {}};
    cases[4].params.repetition_penalty = 0.0F;
    cases[5] = {"presence_penalty", {}};
    cases[5].params.presence_penalty = 2.5F;
    cases[6] = {"logit_bias", {}};
    cases[6].params.logit_bias = {{100, 1.0F}};
    cases[7] = {"logit_bias", {}};
    cases[7].params.logit_bias = {{3, 101.0F}};
    cases[8] = {"max_tokens", {}};
    cases[8].params.max_tokens = 0;
    for (const auto& c : cases) {
        auto r = resolve_sampling(c.params, {}, 100, 1000);
        ASSERT_FALSE(r) << c.field;
        EXPECT_EQ(r.error().code(), ErrorCode::kInvalidRequest) << c.field;
        EXPECT_EQ(r.error().param(), std::optional<std::string>(c.field));
    }
}

TEST(SamplerConfig, TopKMinusOneOrBeyondTheVocabularyIsDisabled) {
    SamplingParams req;
    req.top_k = -1;
    EXPECT_EQ(resolve_sampling(req, {}, 100, 10)->top_k, 0);
    req.top_k = 500;
    EXPECT_EQ(resolve_sampling(req, {}, 100, 10)->top_k, 0);
    req.top_k = 1;
    EXPECT_TRUE(resolve_sampling(req, {}, 100, 10)->greedy());
}

TEST(SamplerConfig, EmptyStopStringsAreDropped) {
    SamplingParams req;
    req.stop = {"", "END", ""};
    EXPECT_EQ(resolve_sampling(req, {}, 100, 10)->stop, std::vector<std::string>{"END"});
}

TEST(SamplerConfig, GenerationConfigJson) {
    auto gen = generation_defaults_from_json(nlohmann::json::parse(R"({
        "do_sample": true, "temperature": 0.6, "top_p": 0.95, "top_k": 20,
        "eos_token_id": [151645, 151643], "bos_token_id": 151643, "transformers_version": "4.51"
    })"));
    ASSERT_TRUE(gen) << gen.error().message();
    EXPECT_EQ(gen->do_sample, std::optional<bool>(true));
    EXPECT_FLOAT_EQ(gen->temperature.value(), 0.6F);
    EXPECT_EQ(gen->top_k, std::optional<int32_t>(20));
    EXPECT_EQ(gen->eos_token_ids, (std::vector<int32_t>{151645, 151643}));
    EXPECT_FALSE(gen->min_p.has_value());

    auto single = generation_defaults_from_json(nlohmann::json::parse(R"({"eos_token_id": 2})"));
    ASSERT_TRUE(single);
    EXPECT_EQ(single->eos_token_ids, std::vector<int32_t>{2});

    for (const char* bad : {R"({"temperature": "hot"})", R"({"top_k": 2.5})",
                            R"({"eos_token_id": ["x"]})", R"({"do_sample": 1})", R"([1, 2])"}) {
        auto r = generation_defaults_from_json(nlohmann::json::parse(bad));
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().code(), ErrorCode::kInvalidRequest);
    }
}

}  // namespace
}  // namespace helexa::engine
