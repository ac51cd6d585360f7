#include "helexa/common/error_envelope.h"

#include <gtest/gtest.h>

#include "helexa/common/result.h"

namespace helexa {
namespace {

TEST(ErrorEnvelope, ContextLengthCarriesExtrasAndStandardFields) {
    Envelope env = openai_envelope(context_length_exceeded_error(40000, 32768));
    EXPECT_EQ(env.http_status, 400);
    const auto& e = env.body.at("error");
    EXPECT_EQ(e.at("type"), "invalid_request_error");
    EXPECT_EQ(e.at("code"), "context_length_exceeded");
    EXPECT_TRUE(e.at("param").is_null());
    EXPECT_EQ(e.at("prompt_len"), 40000);
    EXPECT_EQ(e.at("max"), 32768);
    EXPECT_NE(e.at("message").get<std::string>().find("maximum context length is 32768 tokens"),
              std::string::npos);
    EXPECT_FALSE(env.retry_after_secs.has_value());
}

TEST(ErrorEnvelope, RateLimitAndQuotaDifferOnRetryAfter) {
    Envelope rate = openai_envelope(rate_limit_error("window exhausted", 17));
    EXPECT_EQ(rate.http_status, 429);
    EXPECT_EQ(rate.body["error"]["code"], "rate_limit_exceeded");
    ASSERT_TRUE(rate.retry_after_secs.has_value());
    EXPECT_EQ(*rate.retry_after_secs, 17);

    Envelope quota = openai_envelope(insufficient_quota_error("balance exhausted"));
    EXPECT_EQ(quota.http_status, 429);
    EXPECT_EQ(quota.body["error"]["code"], "insufficient_quota");
    EXPECT_FALSE(quota.retry_after_secs.has_value());
}

TEST(ErrorEnvelope, InternalErrorsHideDetailAndHaveNullCode) {
    Error err(ErrorCode::kInternal, "segfault in /opt/secret/path");
    Envelope env = openai_envelope(err);
    EXPECT_EQ(env.http_status, 500);
    EXPECT_EQ(env.body["error"]["message"], "internal server error");
    EXPECT_TRUE(env.body["error"]["code"].is_null());
    EXPECT_EQ(env.body["error"]["type"], "api_error");
}

TEST(ErrorEnvelope, ExtrasCannotOverrideStandardFields) {
    Error err = Error(ErrorCode::kModelNotFound, "model 'x' not found").with_extra("type", "evil");
    Envelope env = openai_envelope(err);
    EXPECT_EQ(env.http_status, 404);
    EXPECT_EQ(env.body["error"]["type"], "invalid_request_error");
    EXPECT_EQ(env.body["error"]["code"], "model_not_found");
}

TEST(ErrorEnvelope, AnthropicShape) {
    Envelope env = anthropic_envelope(service_unavailable_error("no healthy neuron", 5));
    EXPECT_EQ(env.http_status, 503);
    EXPECT_EQ(env.body["type"], "error");
    EXPECT_EQ(env.body["error"]["type"], "overloaded_error");
    EXPECT_EQ(env.body["error"]["message"], "no healthy neuron");
    EXPECT_EQ(env.retry_after_secs, 5);
    EXPECT_EQ(anthropic_envelope(invalid_api_key_error()).body["error"]["type"],
              "authentication_error");
}

TEST(ErrorEnvelope, EveryCodeHasAStatusAndType) {
    for (int i = 0; i <= static_cast<int>(ErrorCode::kInternal); ++i) {
        const auto& info = error_code_info(static_cast<ErrorCode>(i));
        EXPECT_GE(info.http_status, 400) << info.name;
        EXPECT_FALSE(info.type.empty()) << info.name;
    }
}

TEST(Error, ContextChainsOutermostFirst) {
    Error err = Error(ErrorCode::kIo, "no such file").with_context("reading config.json")
                    .with_context("loading model qwen3");
    EXPECT_EQ(err.full_message(), "loading model qwen3: reading config.json: no such file");
}

Result<int> parse_positive(int v) {
    if (v <= 0) {
        return fail(ErrorCode::kInvalidRequest, "not positive");
    }
    return v;
}

Status use_parse(int v) {
    HELEXA_TRY_STATUS(parse_positive(v));
    return ok();
}

TEST(Result, TryPropagates) {
    EXPECT_TRUE(use_parse(3).has_value());
    auto bad = use_parse(-1);
    ASSERT_FALSE(bad.has_value());
    EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidRequest);
}

}  // namespace
}  // namespace helexa
