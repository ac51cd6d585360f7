// Token estimates and the /tokenize request built for count_tokens.
#include "helexa/wire/count_tokens.h"

#include <string>

#include <gtest/gtest.h>

namespace helexa::wire {
namespace {

using nlohmann::json;

TEST(CountTokens, EstimateIsCharsOverFourPlusOverheads) {
    json request = {{"model", "m"},
                    {"messages", {{{"role", "user"}, {"content", std::string(400, 'a')}}}}};
    EXPECT_EQ(estimate_anthropic_tokens(request), 100 + kPerMessageOverheadTokens);
    request["system"] = std::string(40, 's');
    EXPECT_EQ(estimate_anthropic_tokens(request), 110 + 2 * kPerMessageOverheadTokens);
    request["system"] = json::parse(R"([{"type":"text","text":"ssssssssss","cache_control":{"type":"ephemeral"}}])");
    // cache_control is not rendered, so it does not count.
    EXPECT_EQ(estimate_anthropic_tokens(request),
              (400 + 10 + 3) / 4 + 2 * kPerMessageOverheadTokens);
}

TEST(CountTokens, ToolsBlocksAndImagesCount) {
    json base = json::parse(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");
    int64_t plain = estimate_anthropic_tokens(base);
    json with_tools = base;
    with_tools["tools"] = json::parse(
        R"([{"name":"Bash","description":"Run a shell command in the workspace","input_schema":{"type":"object","properties":{"command":{"type":"string"}}}}])");
    EXPECT_GT(estimate_anthropic_tokens(with_tools),
              plain + static_cast<int64_t>(with_tools["tools"].dump().size()) / 4 - 1);

    json blocks = json::parse(R"({"model":"m","messages":[
        {"role":"assistant","content":[{"type":"thinking","thinking":"aaaaaaaa","signature":"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"},
            {"type":"tool_use","id":"t","name":"Read","input":{"file_path":"/a/b"}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"12345678"},
            {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}]})");
    int64_t estimate = estimate_anthropic_tokens(blocks);
    EXPECT_GE(estimate, kImageTokens + 2 * kPerMessageOverheadTokens + 4);
    // The signature is not model text and must not inflate the count.
    EXPECT_LT(estimate, kImageTokens + 2 * kPerMessageOverheadTokens + 20);
}

TEST(CountTokens, LenientOnGarbage) {
    EXPECT_EQ(estimate_anthropic_tokens(json::array()), 0);
    EXPECT_EQ(estimate_anthropic_tokens(json("x")), 0);
    EXPECT_GE(estimate_anthropic_tokens(json::parse(R"({"messages":[5,"x",{"content":{"odd":1}}]})")),
              3 * kPerMessageOverheadTokens);
    json deep = json::array();
    for (int i = 0; i < 500; ++i) {
        deep = json::array({deep});
    }
    json request = {{"messages", {{{"role", "user"}, {"content", deep}}}}};
    EXPECT_GE(estimate_anthropic_tokens(request), kPerMessageOverheadTokens);
}

TEST(CountTokens, OpenAiChatEstimate) {
    json body = json::parse(R"({"messages":[{"role":"system","content":"12345678"},
        {"role":"user","content":[{"type":"text","text":"1234"},{"type":"image_url","image_url":{"url":"data:x"}}]},
        {"role":"assistant","content":"","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]})");
    int64_t estimate = estimate_openai_chat_tokens(body);
    EXPECT_GE(estimate, 3 + kImageTokens + 3 * kPerMessageOverheadTokens);
    EXPECT_EQ(estimate_openai_chat_tokens(json::object()), 0);
}

TEST(CountTokens, TokenizeRequestFromAnthropic) {
    json request = json::parse(R"({"model":"claude-sonnet-4-5","system":"sys",
        "messages":[{"role":"user","content":"hi"}],
        "tools":[{"name":"Bash","input_schema":{"type":"object"}}],
        "thinking":{"type":"enabled","budget_tokens":1000}})");
    auto out = anthropic_to_tokenize_request(request, "Qwen/Qwen3-8B");
    ASSERT_TRUE(out) << out.error().message();
    EXPECT_EQ((*out)["model"], "Qwen/Qwen3-8B");
    EXPECT_EQ((*out)["add_generation_prompt"], true);
    EXPECT_EQ((*out)["messages"][0], json({{"role", "system"}, {"content", "sys"}}));
    EXPECT_EQ((*out)["tools"][0]["function"]["name"], "Bash");
    EXPECT_EQ((*out)["chat_template_kwargs"]["enable_thinking"], true);
    EXPECT_FALSE(out->contains("stream"));
    EXPECT_FALSE(out->contains("max_tokens"));

    auto bad = anthropic_to_tokenize_request(json::parse(R"({"model":"m","messages":5})"), "x");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().param(), "messages");
}

TEST(CountTokens, Response) {
    EXPECT_EQ(count_tokens_response(42), json({{"input_tokens", 42}}));
    EXPECT_EQ(count_tokens_response(-1), json({{"input_tokens", 0}}));
}

}  // namespace
}  // namespace helexa::wire
