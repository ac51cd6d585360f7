// responses_to_chat: input forms, items, tools, limits and errors.
#include "helexa/wire/responses_request.h"

#include <gtest/gtest.h>

namespace helexa::wire {
namespace {

using nlohmann::json;

ResponsesChatRequest ok_translate(const json& request) {
    auto out = responses_to_chat(request);
    EXPECT_TRUE(out) << (out ? "" : out.error().message());
    return out ? *out : ResponsesChatRequest{};
}

Error err_translate(const json& request) {
    auto out = responses_to_chat(request);
    EXPECT_FALSE(out) << request.dump();
    return out ? Error(ErrorCode::kInternal, "unexpected success") : out.error();
}

TEST(ResponsesRequest, StringInputWithInstructions) {
    auto out = ok_translate(json::parse(
        R"({"model":"m","instructions":"Be brief.","input":"Hi","max_output_tokens":64})"));
    EXPECT_EQ(out.model, "m");
    EXPECT_EQ(out.body["messages"], json::parse(R"([{"role":"system","content":"Be brief."},
        {"role":"user","content":"Hi"}])"));
    EXPECT_EQ(out.body["max_tokens"], 64);
    EXPECT_EQ(out.max_output_tokens, 64);
    EXPECT_EQ(out.body["stream"], false);
}

TEST(ResponsesRequest, MessageItemsAndParts) {
    auto out = ok_translate(json::parse(R"({"model":"m","input":[
        {"role":"developer","content":"dev rules"},
        {"type":"message","role":"user","content":[{"type":"input_text","text":"Hello "},
                                                   {"type":"input_text","text":"there"}]},
        {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Hi!"}]},
        {"role":"user","content":[{"type":"input_text","text":"What is this?"},
            {"type":"input_image","image_url":"data:image/png;base64,AAA","detail":"low"}]}]})"));
    const json& messages = out.body["messages"];
    ASSERT_EQ(messages.size(), 4u);
    EXPECT_EQ(messages[0], json({{"role", "system"}, {"content", "dev rules"}}));
    EXPECT_EQ(messages[1], json({{"role", "user"}, {"content", "Hello there"}}));
    EXPECT_EQ(messages[2], json({{"role", "assistant"}, {"content", "Hi!"}}));
    ASSERT_TRUE(messages[3]["content"].is_array());
    EXPECT_EQ(messages[3]["content"][0], json({{"type", "text"}, {"text", "What is this?"}}));
    EXPECT_EQ(messages[3]["content"][1]["image_url"]["url"], "data:image/png;base64,AAA");
    EXPECT_EQ(messages[3]["content"][1]["image_url"]["detail"], "low");
}

TEST(ResponsesRequest, FunctionCallsAndOutputs) {
    auto out = ok_translate(json::parse(R"({"model":"m","input":[
        {"role":"user","content":"weather in Brno and Praha?"},
        {"type":"reasoning","id":"rs_1","summary":[]},
        {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Checking."}]},
        {"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Brno\"}"},
        {"type":"function_call","call_id":"call_2","name":"get_weather","arguments":"not json"},
        {"type":"function_call_output","call_id":"call_1","output":"sunny"},
        {"type":"function_call_output","call_id":"call_2","output":[{"type":"input_text","text":"rain"}]},
        {"type":"function_call","call_id":"call_3","name":"noop"}]})"));
    const json& messages = out.body["messages"];
    ASSERT_EQ(messages.size(), 5u);
    EXPECT_EQ(messages[1]["role"], "assistant");
    EXPECT_EQ(messages[1]["content"], "Checking.");
    ASSERT_EQ(messages[1]["tool_calls"].size(), 2u);
    EXPECT_EQ(messages[1]["tool_calls"][0]["id"], "call_1");
    EXPECT_EQ(messages[1]["tool_calls"][0]["function"]["arguments"], json({{"city", "Brno"}}));
    EXPECT_EQ(messages[1]["tool_calls"][1]["function"]["arguments"], "not json");
    EXPECT_EQ(messages[2], json({{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "sunny"}}));
    EXPECT_EQ(messages[3]["content"], "rain");
    EXPECT_EQ(messages[4]["role"], "assistant");
    EXPECT_EQ(messages[4]["content"], "");
    EXPECT_EQ(messages[4]["tool_calls"][0]["function"]["arguments"], json::object());
}

TEST(ResponsesRequest, ToolsAndChoice) {
    auto out = ok_translate(json::parse(R"({"model":"m","input":"x","tools":[
        {"type":"function","name":"get_weather","description":"d","parameters":{"type":"object"},"strict":true},
        {"type":"function","function":{"name":"nested"}}],
        "tool_choice":{"type":"function","name":"get_weather"},"parallel_tool_calls":false})"));
    const json& tools = out.body["tools"];
    ASSERT_EQ(tools.size(), 2u);
    EXPECT_EQ(tools[0], json::parse(R"({"type":"function","function":{"name":"get_weather",
        "description":"d","parameters":{"type":"object"},"strict":true}})"));
    EXPECT_EQ(tools[1]["function"]["name"], "nested");
    EXPECT_EQ(out.body["tool_choice"], json::parse(R"({"type":"function","function":{"name":"get_weather"}})"));
    EXPECT_EQ(out.body["parallel_tool_calls"], false);
    for (const char* choice : {"auto", "none", "required"}) {
        json request = {{"model", "m"}, {"input", "x"}, {"tool_choice", choice}};
        EXPECT_EQ(ok_translate(request).body["tool_choice"], choice);
    }
}

TEST(ResponsesRequest, SamplingStreamAndFormat) {
    auto out = ok_translate(json::parse(R"({"model":"m","input":"x","temperature":0.2,"top_p":0.5,
        "top_k":20,"user":"u","stream":true,"reasoning":{"effort":"low"},"store":false,
        "text":{"format":{"type":"json_schema","name":"answer","schema":{"type":"object"},"strict":true}}})"));
    EXPECT_DOUBLE_EQ(out.body["temperature"].get<double>(), 0.2);
    EXPECT_EQ(out.body["top_k"], 20);
    EXPECT_EQ(out.body["user"], "u");
    EXPECT_TRUE(out.stream);
    EXPECT_EQ(out.body["stream_options"]["include_usage"], true);
    EXPECT_EQ(out.body["response_format"]["type"], "json_schema");
    EXPECT_EQ(out.body["response_format"]["json_schema"]["name"], "answer");
    EXPECT_FALSE(out.body.contains("store"));
    auto obj = ok_translate(json::parse(
        R"({"model":"m","input":"x","text":{"format":{"type":"json_object"}}})"));
    EXPECT_EQ(obj.body["response_format"], json({{"type", "json_object"}}));
}

TEST(ResponsesRequest, PreviousResponseIdIsChainedConversationError) {
    Error error = err_translate(
        json::parse(R"({"model":"m","input":"x","previous_response_id":"resp_1"})"));
    EXPECT_EQ(error.code(), ErrorCode::kChainedConversationUnsupported);
    EXPECT_EQ(error.param(), "previous_response_id");
    // null means unset
    EXPECT_TRUE(responses_to_chat(
        json::parse(R"({"model":"m","input":"x","previous_response_id":null})")));
}

TEST(ResponsesRequest, Errors) {
    struct Case {
        const char* body;
        const char* param;
    };
    for (const Case& c : {
             Case{R"({"input":"x"})", "model"},
             Case{R"({"model":"m"})", "input"},
             Case{R"({"model":"m","input":5})", "input"},
             Case{R"({"model":"m","input":[5]})", "input[0]"},
             Case{R"({"model":"m","input":[{"content":"x"}]})", "input[0].role"},
             Case{R"({"model":"m","input":[{"role":"tool","content":"x"}]})", "input[0].role"},
             Case{R"({"model":"m","input":[{"role":"user"}]})", "input[0].content"},
             Case{R"({"model":"m","input":[{"role":"user","content":[{"type":"input_file"}]}]})",
                  "input[0].content[0].type"},
             Case{R"({"model":"m","input":[{"role":"user","content":[{"type":"input_image","file_id":"f"}]}]})",
                  "input[0].content[0].image_url"},
             Case{R"({"model":"m","input":[{"type":"item_reference","id":"x"}]})", "input[0].type"},
             Case{R"({"model":"m","input":[{"type":"function_call","name":"f"}]})",
                  "input[0].call_id"},
             Case{R"({"model":"m","input":[{"type":"function_call","call_id":"c"}]})",
                  "input[0].name"},
             Case{R"({"model":"m","input":[{"type":"function_call_output"}]})", "input[0].call_id"},
             Case{R"({"model":"m","input":"x","tools":[{"type":"web_search"}]})", "tools[0].type"},
             Case{R"({"model":"m","input":"x","tools":[{"type":"function"}]})", "tools[0].name"},
             Case{R"({"model":"m","input":"x","tool_choice":"sometimes"})", "tool_choice"},
             Case{R"({"model":"m","input":"x","max_output_tokens":0})", "max_output_tokens"},
             Case{R"({"model":"m","input":"x","temperature":"hot"})", "temperature"},
             Case{R"({"model":"m","input":"x","stream":1})", "stream"},
             Case{R"({"model":"m","input":"x","instructions":[]})", "instructions"},
         }) {
        Error error = err_translate(json::parse(c.body));
        EXPECT_EQ(error.code(), ErrorCode::kInvalidRequest) << c.body;
        EXPECT_EQ(error.param(), std::optional<std::string>(c.param)) << c.body << " -> "
                                                                      << error.message();
    }
    EXPECT_EQ(err_translate(json::array()).code(), ErrorCode::kInvalidRequest);
}

}  // namespace
}  // namespace helexa::wire
