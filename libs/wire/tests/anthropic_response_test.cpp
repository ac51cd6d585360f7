// openai_to_anthropic and the shared stop-reason / usage helpers.
#include "helexa/wire/anthropic_response.h"

#include <gtest/gtest.h>

namespace helexa::wire {
namespace {

using nlohmann::json;

json completion(const json& message, const json& finish_reason = "stop") {
    return {{"id", "chatcmpl-abc123"},
            {"object", "chat.completion"},
            {"model", "Qwen/Qwen3-8B"},
            {"choices", {{{"index", 0}, {"message", message}, {"finish_reason", finish_reason}}}},
            {"usage", {{"prompt_tokens", 100}, {"completion_tokens", 20}, {"total_tokens", 120}}}};
}

AnthropicResponseOptions options(bool show_thinking = false) {
    AnthropicResponseOptions o;
    o.model = "claude-sonnet-4-5";
    o.show_thinking = show_thinking;
    return o;
}

TEST(AnthropicResponse, StopReasonMapping) {
    EXPECT_EQ(map_stop_reason("stop"), "end_turn");
    EXPECT_EQ(map_stop_reason("length"), "max_tokens");
    EXPECT_EQ(map_stop_reason("tool_calls"), "tool_use");
    EXPECT_EQ(map_stop_reason("function_call"), "tool_use");
    EXPECT_EQ(map_stop_reason("content_filter"), "end_turn");
    EXPECT_EQ(map_stop_reason("banana"), "end_turn");
    EXPECT_EQ(map_stop_reason(std::nullopt), "end_turn");
}

TEST(AnthropicResponse, MessageIdFromUpstream) {
    EXPECT_EQ(message_id_from_upstream("chatcmpl-abc123"), "msg_abc123");
    EXPECT_EQ(message_id_from_upstream("resp_9f"), "msg_9f");
    EXPECT_EQ(message_id_from_upstream(""), "msg_helexa");
    EXPECT_EQ(message_id_from_upstream("chatcmpl-"), "msg_helexa");
    EXPECT_EQ(message_id_from_upstream("a b\"c"), "msg_abc");
}

TEST(AnthropicResponse, TextAnswer) {
    auto out = openai_to_anthropic(
        completion({{"role", "assistant"}, {"content", "Hello!"}}), options());
    ASSERT_TRUE(out);
    const json& body = out->body;
    EXPECT_EQ(body["id"], "msg_abc123");
    EXPECT_EQ(body["type"], "message");
    EXPECT_EQ(body["role"], "assistant");
    EXPECT_EQ(body["model"], "claude-sonnet-4-5");
    EXPECT_EQ(body["content"], json::parse(R"([{"type":"text","text":"Hello!"}])"));
    EXPECT_EQ(body["stop_reason"], "end_turn");
    EXPECT_TRUE(body["stop_sequence"].is_null());
    EXPECT_EQ(body["usage"]["input_tokens"], 100);
    EXPECT_EQ(body["usage"]["output_tokens"], 20);
    EXPECT_EQ(body["usage"]["cache_read_input_tokens"], 0);
}

TEST(AnthropicResponse, ExplicitMessageIdWins) {
    auto o = options();
    o.message_id = "msg_fixed";
    auto out = openai_to_anthropic(completion({{"content", "x"}}), o);
    ASSERT_TRUE(out);
    EXPECT_EQ(out->body["id"], "msg_fixed");
}

TEST(AnthropicResponse, ToolCallsBecomeToolUseBlocks) {
    json message = json::parse(R"({"role":"assistant","content":"Let me check.","tool_calls":[
        {"id":"call_1a_0","type":"function","function":{"name":"get_weather",
         "arguments":"{\"city\":\"Brno\",\"days\":3}"}},
        {"id":"call_1a_1","type":"function","function":{"name":"noop","arguments":""}},
        {"id":"call_1a_2","type":"function","function":{"name":"obj","arguments":{"k":true}}},
        {"type":"function","function":{"name":"double","arguments":"\"{\\\"a\\\":1}\""}}]})");
    auto out = openai_to_anthropic(completion(message, "tool_calls"), options());
    ASSERT_TRUE(out);
    const json& content = out->body["content"];
    ASSERT_EQ(content.size(), 5u);
    EXPECT_EQ(content[0]["type"], "text");
    EXPECT_EQ(content[1], json::parse(R"({"type":"tool_use","id":"call_1a_0",
        "name":"get_weather","input":{"city":"Brno","days":3}})"));
    EXPECT_EQ(content[2]["input"], json::object());
    EXPECT_EQ(content[3]["input"], json({{"k", true}}));
    EXPECT_EQ(content[4]["id"], "toolu_abc123_3");
    EXPECT_EQ(content[4]["input"], json({{"a", 1}}));
    EXPECT_EQ(out->body["stop_reason"], "tool_use");
    EXPECT_EQ(out->malformed_tool_arguments, 0);
}

TEST(AnthropicResponse, MalformedArgumentsBecomeEmptyInputAndAreReported) {
    json message = json::parse(R"({"content":null,"tool_calls":[
        {"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":"}},
        {"id":"d","type":"function","function":{"name":"g","arguments":"[1,2]"}}]})");
    auto out = openai_to_anthropic(completion(message, "tool_calls"), options());
    ASSERT_TRUE(out);
    EXPECT_EQ(out->body["content"].size(), 2u);
    EXPECT_EQ(out->body["content"][0]["input"], json::object());
    EXPECT_EQ(out->malformed_tool_arguments, 2);
    ASSERT_EQ(out->malformed_raw.size(), 2u);
    EXPECT_EQ(out->malformed_raw[0], "{\"a\":");
}

TEST(AnthropicResponse, ToolUseWithStopFinishIsPromotedToToolUse) {
    json message = json::parse(R"({"content":"","tool_calls":[
        {"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]})");
    auto out = openai_to_anthropic(completion(message, "stop"), options());
    ASSERT_TRUE(out);
    EXPECT_EQ(out->body["stop_reason"], "tool_use");
    EXPECT_EQ(out->body["content"].size(), 1u);  // empty text is not a block
}

TEST(AnthropicResponse, ReasoningShownAsLeadingThinkingBlock) {
    json message = {{"content", "42"}, {"reasoning_content", "6 times 7"}};
    auto shown = openai_to_anthropic(completion(message), options(true));
    ASSERT_TRUE(shown);
    const json& content = shown->body["content"];
    ASSERT_EQ(content.size(), 2u);
    EXPECT_EQ(content[0]["type"], "thinking");
    EXPECT_EQ(content[0]["thinking"], "6 times 7");
    EXPECT_EQ(content[0]["signature"], std::string(kThinkingSignature));
    EXPECT_EQ(content[1]["text"], "42");

    auto hidden = openai_to_anthropic(completion(message), options(false));
    ASSERT_TRUE(hidden);
    ASSERT_EQ(hidden->body["content"].size(), 1u);
    EXPECT_EQ(hidden->body["content"][0]["type"], "text");

    json alt = {{"content", "x"}, {"reasoning", "via reasoning field"}};
    auto via = openai_to_anthropic(completion(alt), options(true));
    ASSERT_TRUE(via);
    EXPECT_EQ(via->body["content"][0]["thinking"], "via reasoning field");
}

TEST(AnthropicResponse, LengthAndUnknownFinish) {
    auto length = openai_to_anthropic(completion({{"content", "x"}}, "length"), options());
    ASSERT_TRUE(length);
    EXPECT_EQ(length->body["stop_reason"], "max_tokens");
    auto missing = openai_to_anthropic(completion({{"content", "x"}}, nullptr), options());
    ASSERT_TRUE(missing);
    EXPECT_EQ(missing->body["stop_reason"], "end_turn");
    auto filtered = openai_to_anthropic(completion({{"content", "x"}}, "content_filter"), options());
    ASSERT_TRUE(filtered);
    EXPECT_EQ(filtered->body["stop_reason"], "end_turn");
}

TEST(AnthropicResponse, StopSequenceReportedWhenUpstreamNamesIt) {
    json body = completion({{"content", "partial"}});
    body["choices"][0]["stop_reason"] = "END";
    auto o = options();
    o.stop_sequences = {"END"};
    auto out = openai_to_anthropic(body, o);
    ASSERT_TRUE(out);
    EXPECT_EQ(out->body["stop_reason"], "stop_sequence");
    EXPECT_EQ(out->body["stop_sequence"], "END");
    // A stop string the client did not ask for (e.g. the EOS text) is a plain end_turn.
    o.stop_sequences = {"OTHER"};
    auto other = openai_to_anthropic(body, o);
    ASSERT_TRUE(other);
    EXPECT_EQ(other->body["stop_reason"], "end_turn");
}

TEST(AnthropicResponse, UsageWithCachedTokens) {
    json usage = json::parse(R"({"prompt_tokens":1000,"completion_tokens":50,
        "prompt_tokens_details":{"cached_tokens":800},
        "completion_tokens_details":{"reasoning_tokens":30}})");
    json out = anthropic_usage(usage);
    EXPECT_EQ(out["input_tokens"], 200);
    EXPECT_EQ(out["cache_read_input_tokens"], 800);
    EXPECT_EQ(out["cache_creation_input_tokens"], 0);
    EXPECT_EQ(out["output_tokens"], 50);
    EXPECT_EQ(anthropic_usage(json::object())["output_tokens"], 0);
    EXPECT_EQ(anthropic_usage(json("junk"))["input_tokens"], 0);
    // cached larger than prompt (buggy upstream) never yields negative input tokens
    EXPECT_EQ(anthropic_usage(json::parse(
                  R"({"prompt_tokens":5,"prompt_tokens_details":{"cached_tokens":9}})"))
                  ["input_tokens"],
              0);
}

TEST(AnthropicResponse, ContentPartsArrayIsJoined) {
    json message = json::parse(R"({"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]})");
    auto out = openai_to_anthropic(completion(message), options());
    ASSERT_TRUE(out);
    EXPECT_EQ(out->body["content"][0]["text"], "ab");
}

TEST(AnthropicResponse, MissingChoicesIsUpstreamError) {
    for (const char* body : {R"({})", R"({"choices":[]})", R"({"choices":[{}]})",
                             R"({"choices":[{"message":"x"}]})", R"([1])"}) {
        auto out = openai_to_anthropic(json::parse(body), options());
        ASSERT_FALSE(out) << body;
        EXPECT_EQ(out.error().code(), ErrorCode::kUpstream);
    }
}

TEST(AnthropicResponse, ParseToolArguments) {
    EXPECT_EQ(parse_tool_arguments(json("{\"a\":1}")), json({{"a", 1}}));
    EXPECT_EQ(parse_tool_arguments(json("  ")), json::object());
    EXPECT_EQ(parse_tool_arguments(json({{"b", 2}})), json({{"b", 2}}));
    EXPECT_FALSE(parse_tool_arguments(json("nope")).has_value());
    EXPECT_FALSE(parse_tool_arguments(json(5)).has_value());
    EXPECT_FALSE(parse_tool_arguments(json("\"not an object\"")).has_value());
}

}  // namespace
}  // namespace helexa::wire
