#include "helexa/gateway/metering.h"

#include <gtest/gtest.h>

#include "helexa/common/error_envelope.h"

namespace helexa::gateway {
namespace {

using nlohmann::json;

TEST(MaxOutputTokens, PrecedenceAndFallback) {
    EXPECT_EQ(max_output_tokens(json{{"max_completion_tokens", 10}, {"max_tokens", 20}}, 30), 10);
    EXPECT_EQ(max_output_tokens(json{{"max_tokens", 20}}, 30), 20);
    EXPECT_EQ(max_output_tokens(json{{"max_output_tokens", 25}}, 30), 25);
    EXPECT_EQ(max_output_tokens(json::object(), 30), 30);
    EXPECT_EQ(max_output_tokens(json::object(), std::nullopt), kFallbackMaxOutput);
    EXPECT_EQ(kFallbackMaxOutput, 8192);
    EXPECT_EQ(max_output_tokens(json{{"max_tokens", "many"}}, std::nullopt), 8192);
    EXPECT_EQ(max_output_tokens(json{{"max_tokens", -5}}, 7), 7);
    EXPECT_EQ(max_output_tokens(json::array(), std::nullopt), 8192);
}

TEST(ReservationEstimate, WholeBodyPlusOutput) {
    std::string body = R"({"model":"m","messages":[{"role":"user","content":"hello"}],)"
                       R"("max_tokens":100})";
    auto j = json::parse(body);
    EXPECT_EQ(reservation_estimate(j, body.size(), std::nullopt),
              static_cast<int64_t>((body.size() + 3) / 4) + 100);
    EXPECT_EQ(reservation_estimate(json::object(), 0, std::nullopt), 8192);
}

TEST(EstimatePromptTokens, MessageTextOnly) {
    json chat = {{"model", "a-very-long-model-name-that-is-not-counted"},
                 {"messages",
                  {{{"role", "system"}, {"content", std::string(40, 's')}},
                   {{"role", "user"},
                    {"content",
                     {{{"type", "text"}, {"text", std::string(20, 'u')}},
                      {{"type", "image_url"}, {"image_url", {{"url", "data:xyz"}}}}}}}}}};
    EXPECT_EQ(estimate_prompt_tokens(chat), 15);
    EXPECT_EQ(estimate_prompt_tokens(json{{"prompt", std::string(9, 'p')}}), 3);
    EXPECT_EQ(estimate_prompt_tokens(json{{"instructions", "abcd"},
                                          {"input",
                                           {{{"type", "message"},
                                             {"content", {{{"type", "input_text"},
                                                           {"text", "efgh"}}}}}}}}),
              2);
    EXPECT_EQ(estimate_prompt_tokens(json{{"input", "12345678"}}), 2);
    EXPECT_EQ(estimate_prompt_tokens(json("str")), 0);
}

TEST(CheckContext, GrossOverageIs400WithExtras) {
    json body = {{"messages", {{{"role", "user"}, {"content", std::string(4000, 'x')}}}}};
    EXPECT_TRUE(check_context(body, std::nullopt));
    EXPECT_TRUE(check_context(body, ModelLimit{}));
    EXPECT_TRUE(check_context(body, ModelLimit{1000, std::nullopt, std::nullopt}));
    auto over = check_context(body, ModelLimit{999, std::nullopt, std::nullopt});
    ASSERT_FALSE(over);
    EXPECT_EQ(over.error().code(), ErrorCode::kContextLengthExceeded);
    auto env = openai_envelope(over.error());
    EXPECT_EQ(env.http_status, 400);
    EXPECT_EQ(env.body["error"]["code"], "context_length_exceeded");
    EXPECT_EQ(env.body["error"]["prompt_len"], 1000);
    EXPECT_EQ(env.body["error"]["max"], 999);
}

TEST(Advice, ByUserAgent) {
    EXPECT_TRUE(advice_for_user_agent("litellm/1.40.0"));
    EXPECT_NE(advice_for_user_agent("LiteLLM/1.0")->find("litellm"), std::string::npos);
    EXPECT_TRUE(advice_for_user_agent("Agent-Zero/0.9"));
    EXPECT_TRUE(advice_for_user_agent("python-requests agent-zero"));
    EXPECT_TRUE(advice_for_user_agent("Zed/0.150.4 (macos; aarch64)"));
    EXPECT_FALSE(advice_for_user_agent("OpenAI/Python 1.40.0"));
    EXPECT_FALSE(advice_for_user_agent("curl/8.0"));
    EXPECT_FALSE(advice_for_user_agent(""));
    EXPECT_FALSE(advice_for_user_agent("seized-client/1"));
}

}  // namespace
}  // namespace helexa::gateway
