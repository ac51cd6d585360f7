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
    // Token ids count exactly, flat or as the one prompt of a list.
    EXPECT_EQ(estimate_prompt_tokens(json{{"prompt", json::array({101, 102, 103, 104, 105})}}), 5);
    EXPECT_EQ(estimate_prompt_tokens(json{{"prompt", json::array({json::array({7, 8, 9})})}}), 3);
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

TEST(RequestSummary, ReadsTopLevelRoutingFields) {
    auto s = summarize_request(
        R"({"messages":[{"role":"user","content":"hi","model":"inner"}],"model":"m",)"
        R"("stream":true,"tools":[],"max_tokens":7,"max_completion_tokens":0})");
    ASSERT_TRUE(s) << s.error().message();
    EXPECT_TRUE(s->is_object);
    EXPECT_EQ(s->model, "m");  // the nested "model" is not the request's
    EXPECT_EQ(s->stream, true);
    EXPECT_TRUE(s->has_tools);
    EXPECT_EQ(s->max_tokens, 7);
    EXPECT_EQ(s->max_completion_tokens, std::nullopt);  // non-positive: ignored
    EXPECT_EQ(max_output_tokens(*s, 99), 7);
    EXPECT_EQ(reservation_estimate(*s, 40, std::nullopt), 10 + 7);

    auto none = summarize_request(R"({"model":5,"stream":null})");
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->has_model);
    EXPECT_EQ(none->model, std::nullopt);
    EXPECT_FALSE(none->has_stream);  // null means "not set"
    EXPECT_FALSE(none->has_tools);
    EXPECT_EQ(max_output_tokens(*none, std::nullopt), kFallbackMaxOutput);

    auto odd = summarize_request(R"({"stream":"yes","model":"a","model":"b"})");
    ASSERT_TRUE(odd);
    EXPECT_TRUE(odd->has_stream);
    EXPECT_EQ(odd->stream, std::nullopt);
    EXPECT_EQ(odd->model, "b");  // duplicate keys: the last wins, as in a DOM parse

    auto array = summarize_request(R"([{"model":"m"}])");
    ASSERT_TRUE(array);
    EXPECT_FALSE(array->is_object);
    EXPECT_EQ(array->model, std::nullopt);
}

TEST(RequestSummary, InvalidJsonMatchesTheDomError) {
    for (std::string bad : {"", "{", "{\"model\":}", "{} x", "[1,]"}) {
        auto s = summarize_request(bad);
        ASSERT_FALSE(s) << bad;
        EXPECT_EQ(s.error().code(), ErrorCode::kInvalidJson);
        std::string dom_message;
        try {
            json parsed = json::parse(bad);
            ADD_FAILURE() << "parsed: " << parsed.dump();
        } catch (const json::parse_error& e) {
            dom_message = std::string("request body is not valid JSON: ") + e.what();
        }
        EXPECT_EQ(s.error().message(), dom_message) << bad;
    }
}

TEST(RequestSummary, AgreesWithTheDomForms) {
    for (std::string text :
         {R"({"max_completion_tokens":3,"max_tokens":9})",
          R"({"max_tokens":-1,"max_output_tokens":4})", R"({"max_tokens":1.5})",
          R"({"max_tokens":18446744073709551615})", R"({"x":{"max_tokens":2}})",
          R"({})"}) {
        auto s = summarize_request(text);
        ASSERT_TRUE(s) << text;
        auto dom = json::parse(text);
        EXPECT_EQ(max_output_tokens(*s, 11), max_output_tokens(dom, 11)) << text;
        EXPECT_EQ(reservation_estimate(*s, text.size(), std::nullopt),
                  reservation_estimate(dom, text.size(), std::nullopt))
            << text;
    }
}

TEST(RequestSummary, ContextCheckNeedsTheBodyOnlyWhenItCouldFail) {
    const ModelLimit limit{10, std::nullopt, std::nullopt};
    EXPECT_FALSE(may_exceed_context(40, limit));  // 10 tokens at most
    EXPECT_TRUE(may_exceed_context(41, limit));
    EXPECT_FALSE(may_exceed_context(1 << 20, std::nullopt));
    EXPECT_FALSE(may_exceed_context(1 << 20, ModelLimit{}));
    // Whenever the bound says "cannot exceed", the real check passes: decoded text never
    // outgrows the raw body (escapes shrink when decoded).
    const std::string body =
        R"({"messages":[{"role":"user","content":"\u00e9\u00e9\n\n"}],"prompt":"abcd"})";
    const ModelLimit tight{static_cast<int64_t>((body.size() + 3) / 4), std::nullopt,
                           std::nullopt};
    EXPECT_FALSE(may_exceed_context(body.size(), tight));
    EXPECT_TRUE(check_context(json::parse(body), tight));
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
