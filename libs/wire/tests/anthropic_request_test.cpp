// anthropic_to_openai: every mapping rule and every type error.
#include "helexa/wire/anthropic_request.h"

#include <cctype>
#include <string>

#include <gtest/gtest.h>

namespace helexa::wire {
namespace {

using nlohmann::json;

json base_request() {
    return json::parse(R"({"model":"claude-sonnet-4-5","max_tokens":1024,
        "messages":[{"role":"user","content":"hi"}]})");
}

AnthropicChatRequest translate_ok(const json& request) {
    auto out = anthropic_to_openai(request);
    EXPECT_TRUE(out.has_value()) << (out ? "" : out.error().message());
    return out ? *out : AnthropicChatRequest{};
}

Error translate_err(const json& request) {
    auto out = anthropic_to_openai(request);
    EXPECT_FALSE(out.has_value()) << request.dump();
    return out ? Error(ErrorCode::kInternal, "unexpected success") : out.error();
}

TEST(AnthropicRequest, MinimalRequest) {
    auto out = translate_ok(base_request());
    EXPECT_EQ(out.model, "claude-sonnet-4-5");
    EXPECT_EQ(out.body["model"], "claude-sonnet-4-5");
    EXPECT_EQ(out.body["max_tokens"], 1024);
    EXPECT_EQ(out.max_tokens, 1024);
    EXPECT_EQ(out.body["stream"], false);
    EXPECT_FALSE(out.body.contains("stream_options"));
    EXPECT_FALSE(out.show_thinking);
    ASSERT_EQ(out.body["messages"].size(), 1u);
    EXPECT_EQ(out.body["messages"][0], json({{"role", "user"}, {"content", "hi"}}));
}

TEST(AnthropicRequest, SystemStringAndBlocksAndSystemTurnsMergeIntoOneLeadingMessage) {
    json request = base_request();
    request["system"] = json::parse(R"([{"type":"text","text":"You are Claude Code."},
        {"type":"text","text":"Be terse.","cache_control":{"type":"ephemeral"}}])");
    request["messages"] = json::parse(R"([
        {"role":"user","content":"one"},
        {"role":"system","content":"late system note"},
        {"role":"assistant","content":"two"},
        {"role":"system","content":[{"type":"text","text":"block system"}]},
        {"role":"user","content":"three"}])");
    auto out = translate_ok(request);
    const json& messages = out.body["messages"];
    ASSERT_EQ(messages.size(), 4u);
    EXPECT_EQ(messages[0]["role"], "system");
    EXPECT_EQ(messages[0]["content"],
              "You are Claude Code.\n\nBe terse.\n\nlate system note\n\nblock system");
    EXPECT_EQ(messages[1]["content"], "one");
    EXPECT_EQ(messages[2]["role"], "assistant");
    EXPECT_EQ(messages[3]["content"], "three");
    for (size_t i = 1; i < messages.size(); ++i) {
        EXPECT_NE(messages[i]["role"], "system") << i;
    }
}

TEST(AnthropicRequest, SystemStringOnly) {
    json request = base_request();
    request["system"] = "sys";
    auto out = translate_ok(request);
    EXPECT_EQ(out.body["messages"][0], json({{"role", "system"}, {"content", "sys"}}));
}

TEST(AnthropicRequest, EmptySystemEmitsNoSystemMessage) {
    json request = base_request();
    request["system"] = json::array();
    auto out = translate_ok(request);
    EXPECT_EQ(out.body["messages"][0]["role"], "user");
}

TEST(AnthropicRequest, ToolsBecomeFunctionTools) {
    json request = base_request();
    request["tools"] = json::parse(R"([
        {"name":"Bash","description":"Run a command","input_schema":{"type":"object",
         "properties":{"command":{"type":"string"}},"required":["command"]}},
        {"name":"NoSchema"},
        {"type":"custom","name":"Custom","input_schema":{"type":"object"}},
        {"type":"web_search_20250305","name":"web_search","max_uses":5}])");
    auto out = translate_ok(request);
    const json& tools = out.body["tools"];
    ASSERT_EQ(tools.size(), 3u);
    EXPECT_EQ(tools[0]["type"], "function");
    EXPECT_EQ(tools[0]["function"]["name"], "Bash");
    EXPECT_EQ(tools[0]["function"]["description"], "Run a command");
    EXPECT_EQ(tools[0]["function"]["parameters"]["required"][0], "command");
    EXPECT_FALSE(tools[0]["function"].contains("input_schema"));
    EXPECT_EQ(tools[1]["function"]["parameters"],
              json({{"type", "object"}, {"properties", json::object()}}));
    EXPECT_FALSE(tools[1]["function"].contains("description"));
    EXPECT_EQ(tools[2]["function"]["name"], "Custom");
}

TEST(AnthropicRequest, ToolChoiceMapping) {
    auto choice = [](const json& tool_choice) {
        json request = base_request();
        request["tool_choice"] = tool_choice;
        return translate_ok(request).body;
    };
    EXPECT_EQ(choice({{"type", "auto"}})["tool_choice"], "auto");
    EXPECT_EQ(choice({{"type", "any"}})["tool_choice"], "required");
    EXPECT_EQ(choice({{"type", "none"}})["tool_choice"], "none");
    EXPECT_EQ(choice({{"type", "tool"}, {"name", "Bash"}})["tool_choice"],
              json::parse(R"({"type":"function","function":{"name":"Bash"}})"));
    json parallel = choice({{"type", "auto"}, {"disable_parallel_tool_use", true}});
    EXPECT_EQ(parallel["parallel_tool_calls"], false);
    EXPECT_FALSE(choice({{"type", "auto"}}).contains("parallel_tool_calls"));
    EXPECT_EQ(choice("any")["tool_choice"], "required");
}

TEST(AnthropicRequest, ToolChoiceErrors) {
    json request = base_request();
    request["tool_choice"] = {{"type", "tool"}};
    EXPECT_EQ(translate_err(request).param(), "tool_choice.name");
    request["tool_choice"] = {{"type", "sometimes"}};
    EXPECT_EQ(translate_err(request).param(), "tool_choice.type");
    request["tool_choice"] = 3;
    EXPECT_EQ(translate_err(request).param(), "tool_choice");
    request["tool_choice"] = {{"type", "auto"}, {"disable_parallel_tool_use", "yes"}};
    EXPECT_EQ(translate_err(request).param(), "tool_choice.disable_parallel_tool_use");
}

TEST(AnthropicRequest, AssistantToolUseBecomesToolCallsWithObjectArguments) {
    json request = base_request();
    request["messages"] = json::parse(R"([
        {"role":"user","content":"list files"},
        {"role":"assistant","content":[
            {"type":"thinking","thinking":"I should run ls.","signature":"abc"},
            {"type":"redacted_thinking","data":"xyz"},
            {"type":"text","text":"Running ls."},
            {"type":"tool_use","id":"toolu_1","name":"Bash","input":{"command":"ls","n":2}},
            {"type":"tool_use","id":"toolu_2","name":"Read","input":{}}]}])");
    auto out = translate_ok(request);
    const json& assistant = out.body["messages"][1];
    EXPECT_EQ(assistant["role"], "assistant");
    EXPECT_EQ(assistant["content"], "Running ls.");
    EXPECT_EQ(assistant["reasoning_content"], "I should run ls.");
    ASSERT_EQ(assistant["tool_calls"].size(), 2u);
    const json& call = assistant["tool_calls"][0];
    EXPECT_EQ(call["id"], "toolu_1");
    EXPECT_EQ(call["type"], "function");
    EXPECT_EQ(call["function"]["name"], "Bash");
    ASSERT_TRUE(call["function"]["arguments"].is_object());
    EXPECT_EQ(call["function"]["arguments"]["command"], "ls");
    EXPECT_EQ(call["function"]["arguments"]["n"], 2);
    EXPECT_EQ(assistant["tool_calls"][1]["function"]["arguments"], json::object());
}

TEST(AnthropicRequest, AssistantOnlyToolUseHasEmptyContent) {
    json request = base_request();
    request["messages"] = json::parse(R"([{"role":"user","content":"x"},
        {"role":"assistant","content":[{"type":"tool_use","id":"t","name":"A"}]}])");
    auto out = translate_ok(request);
    EXPECT_EQ(out.body["messages"][1]["content"], "");
    EXPECT_FALSE(out.body["messages"][1].contains("reasoning_content"));
    EXPECT_EQ(out.body["messages"][1]["tool_calls"][0]["function"]["arguments"], json::object());
}

TEST(AnthropicRequest, ToolResultsBecomeToolMessagesBeforeUserText) {
    json request = base_request();
    request["messages"] = json::parse(R"([
        {"role":"assistant","content":[{"type":"tool_use","id":"a","name":"A","input":{}},
                                       {"type":"tool_use","id":"b","name":"B","input":{}}]},
        {"role":"user","content":[
            {"type":"text","text":"<system-reminder>note</system-reminder>"},
            {"type":"tool_result","tool_use_id":"a","content":"result a"},
            {"type":"tool_result","tool_use_id":"b","is_error":true,
             "content":[{"type":"text","text":"line 1"},{"type":"text","text":"line 2"},
                        {"type":"image","source":{"type":"url","url":"http://x/y.png"}}]},
            {"type":"tool_result","tool_use_id":"c"},
            {"type":"text","text":"continue"}]}])");
    auto out = translate_ok(request);
    const json& messages = out.body["messages"];
    ASSERT_EQ(messages.size(), 5u);
    EXPECT_EQ(messages[1], json({{"role", "tool"}, {"tool_call_id", "a"}, {"content", "result a"}}));
    EXPECT_EQ(messages[2]["tool_call_id"], "b");
    EXPECT_EQ(messages[2]["content"], "line 1\n\nline 2\n\n[image]");
    EXPECT_EQ(messages[3]["tool_call_id"], "c");
    EXPECT_EQ(messages[3]["content"], "");
    EXPECT_EQ(messages[4]["role"], "user");
    EXPECT_EQ(messages[4]["content"], "<system-reminder>note</system-reminder>\n\ncontinue");
}

TEST(AnthropicRequest, ToolResultOnlyTurnEmitsNoEmptyUserMessage) {
    json request = base_request();
    request["messages"] = json::parse(R"([{"role":"user","content":[
        {"type":"tool_result","tool_use_id":"a","content":"ok"}]}])");
    auto out = translate_ok(request);
    ASSERT_EQ(out.body["messages"].size(), 1u);
    EXPECT_EQ(out.body["messages"][0]["role"], "tool");
}

TEST(AnthropicRequest, ImagesBecomeImageUrlParts) {
    json request = base_request();
    request["messages"] = json::parse(R"([{"role":"user","content":[
        {"type":"text","text":"what is this?"},
        {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0"}},
        {"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}}]}])");
    auto out = translate_ok(request);
    const json& content = out.body["messages"][0]["content"];
    ASSERT_TRUE(content.is_array());
    ASSERT_EQ(content.size(), 3u);
    EXPECT_EQ(content[0], json({{"type", "text"}, {"text", "what is this?"}}));
    EXPECT_EQ(content[1]["type"], "image_url");
    EXPECT_EQ(content[1]["image_url"]["url"], "data:image/png;base64,iVBORw0");
    EXPECT_EQ(content[2]["image_url"]["url"], "https://example.com/cat.jpg");
}

TEST(AnthropicRequest, ImageErrorsNameTheField) {
    json request = base_request();
    request["messages"] = json::parse(R"([{"role":"user","content":[
        {"type":"image","source":{"type":"base64","data":"x"}}]}])");
    EXPECT_EQ(translate_err(request).param(), "messages[0].content[0].source.media_type");
    request["messages"][0]["content"][0]["source"] = {{"type", "file"}, {"file_id", "f"}};
    EXPECT_EQ(translate_err(request).param(), "messages[0].content[0].source.type");
    request["messages"][0]["content"][0].erase("source");
    EXPECT_EQ(translate_err(request).param(), "messages[0].content[0].source");
}

TEST(AnthropicRequest, SamplingFields) {
    json request = base_request();
    request["temperature"] = 0.7;
    request["top_p"] = 0.9;
    request["top_k"] = 40;
    request["stop_sequences"] = {"END", "STOP"};
    request["metadata"] = {{"user_id", "user_abc"}};
    auto out = translate_ok(request);
    EXPECT_DOUBLE_EQ(out.body["temperature"].get<double>(), 0.7);
    EXPECT_DOUBLE_EQ(out.body["top_p"].get<double>(), 0.9);
    EXPECT_EQ(out.body["top_k"], 40);
    EXPECT_EQ(out.body["stop"], json({"END", "STOP"}));
    EXPECT_EQ(out.stop_sequences, (std::vector<std::string>{"END", "STOP"}));
    EXPECT_EQ(out.body["user"], "user_abc");
}

TEST(AnthropicRequest, NullFieldsAreUnset) {
    json request = base_request();
    request["temperature"] = nullptr;
    request["system"] = nullptr;
    request["tools"] = nullptr;
    request["max_tokens"] = nullptr;
    auto out = translate_ok(request);
    EXPECT_FALSE(out.body.contains("temperature"));
    EXPECT_FALSE(out.body.contains("tools"));
    EXPECT_FALSE(out.body.contains("max_tokens"));
    EXPECT_FALSE(out.max_tokens.has_value());
}

TEST(AnthropicRequest, IntegralFloatMaxTokensAccepted) {
    json request = base_request();
    request["max_tokens"] = 32000.0;
    EXPECT_EQ(translate_ok(request).body["max_tokens"], 32000);
}

TEST(AnthropicRequest, StreamingAddsIncludeUsage) {
    json request = base_request();
    request["stream"] = true;
    auto out = translate_ok(request);
    EXPECT_TRUE(out.stream);
    EXPECT_EQ(out.body["stream"], true);
    EXPECT_EQ(out.body["stream_options"], json({{"include_usage", true}}));
}

TEST(AnthropicRequest, ThinkingEnabledTurnsReasoningOn) {
    json request = base_request();
    request["thinking"] = {{"type", "enabled"}, {"budget_tokens", 31999}};
    auto out = translate_ok(request);
    EXPECT_TRUE(out.show_thinking);
    EXPECT_EQ(out.thinking_budget_tokens, 31999);
    EXPECT_EQ(out.body["chat_template_kwargs"]["enable_thinking"], true);

    request["thinking"] = {{"type", "disabled"}};
    auto off = translate_ok(request);
    EXPECT_FALSE(off.show_thinking);
    EXPECT_FALSE(off.body.contains("chat_template_kwargs"));

    request["thinking"] = {{"type", "adaptive"}};
    EXPECT_TRUE(translate_ok(request).show_thinking);
}

struct TypeErrorCase {
    const char* patch;  // JSON merge patch applied to base_request()
    const char* param;
};

class AnthropicRequestTypeErrors : public ::testing::TestWithParam<TypeErrorCase> {};

TEST_P(AnthropicRequestTypeErrors, NamesTheField) {
    json request = base_request();
    request.merge_patch(json::parse(GetParam().patch));
    Error error = translate_err(request);
    EXPECT_EQ(error.code(), ErrorCode::kInvalidRequest);
    ASSERT_TRUE(error.param().has_value()) << error.message();
    EXPECT_EQ(*error.param(), GetParam().param) << error.message();
    EXPECT_NE(error.message().find(GetParam().param), std::string::npos) << error.message();
}

INSTANTIATE_TEST_SUITE_P(
    Fields, AnthropicRequestTypeErrors,
    ::testing::Values(
        TypeErrorCase{R"({"model":5})", "model"},
        TypeErrorCase{R"({"model":""})", "model"},
        TypeErrorCase{R"({"messages":"hi"})", "messages"},
        TypeErrorCase{R"({"messages":null})", "messages"},
        TypeErrorCase{R"({"messages":[3]})", "messages[0]"},
        TypeErrorCase{R"({"messages":[{"content":"x"}]})", "messages[0].role"},
        TypeErrorCase{R"({"messages":[{"role":"tool","content":"x"}]})", "messages[0].role"},
        TypeErrorCase{R"({"messages":[{"role":"user"}]})", "messages[0].content"},
        TypeErrorCase{R"({"messages":[{"role":"user","content":5}]})", "messages[0].content"},
        TypeErrorCase{R"({"messages":[{"role":"user","content":[7]}]})",
                      "messages[0].content[0]"},
        TypeErrorCase{R"({"messages":[{"role":"user","content":[{"text":"x"}]}]})",
                      "messages[0].content[0].type"},
        TypeErrorCase{R"({"messages":[{"role":"user","content":[{"type":"text"}]}]})",
                      "messages[0].content[0].text"},
        TypeErrorCase{R"({"messages":[{"role":"user","content":[{"type":"video"}]}]})",
                      "messages[0].content[0].type"},
        TypeErrorCase{R"({"messages":[{"role":"user","content":[{"type":"tool_result"}]}]})",
                      "messages[0].content[0].tool_use_id"},
        TypeErrorCase{R"({"messages":[{"role":"user","content":[{"type":"tool_result",
                      "tool_use_id":"a","content":{"x":1}}]}]})",
                      "messages[0].content[0].content"},
        TypeErrorCase{R"({"messages":[{"role":"assistant","content":[{"type":"tool_use",
                      "name":"A"}]}]})", "messages[0].content[0].id"},
        TypeErrorCase{R"({"messages":[{"role":"assistant","content":[{"type":"tool_use",
                      "id":"a"}]}]})", "messages[0].content[0].name"},
        TypeErrorCase{R"({"messages":[{"role":"assistant","content":[{"type":"tool_use",
                      "id":"a","name":"A","input":"{}"}]}]})", "messages[0].content[0].input"},
        TypeErrorCase{R"({"messages":[{"role":"assistant","content":[{"type":"image"}]}]})",
                      "messages[0].content[0].type"},
        TypeErrorCase{R"({"system":5})", "system"},
        TypeErrorCase{R"({"system":[{"type":"text","text":7}]})", "system[0].text"},
        TypeErrorCase{R"({"tools":{}})", "tools"},
        TypeErrorCase{R"({"tools":[{"description":"x"}]})", "tools[0].name"},
        TypeErrorCase{R"({"tools":[{"name":"a","description":1}]})", "tools[0].description"},
        TypeErrorCase{R"({"tools":[{"name":"a","input_schema":[]}]})", "tools[0].input_schema"},
        TypeErrorCase{R"({"max_tokens":"100"})", "max_tokens"},
        TypeErrorCase{R"({"max_tokens":1.5})", "max_tokens"},
        TypeErrorCase{R"({"max_tokens":0})", "max_tokens"},
        TypeErrorCase{R"({"temperature":"hot"})", "temperature"},
        TypeErrorCase{R"({"top_p":true})", "top_p"},
        TypeErrorCase{R"({"top_k":0.5})", "top_k"},
        TypeErrorCase{R"({"stop_sequences":"END"})", "stop_sequences"},
        TypeErrorCase{R"({"stop_sequences":["a",1]})", "stop_sequences[1]"},
        TypeErrorCase{R"({"metadata":"x"})", "metadata"},
        TypeErrorCase{R"({"metadata":{"user_id":5}})", "metadata.user_id"},
        TypeErrorCase{R"({"thinking":true})", "thinking"},
        TypeErrorCase{R"({"thinking":{"budget_tokens":5}})", "thinking.type"},
        TypeErrorCase{R"({"thinking":{"type":"maybe"}})", "thinking.type"},
        TypeErrorCase{R"({"thinking":{"type":"enabled","budget_tokens":"x"}})",
                      "thinking.budget_tokens"},
        TypeErrorCase{R"({"stream":"yes"})", "stream"}),
    // Stable test names for CTest: the field name, made identifier-safe, plus the case index.
    [](const ::testing::TestParamInfo<TypeErrorCase>& param_info) {
        std::string name = std::to_string(param_info.index) + "_";
        for (const char* c = param_info.param.param; *c != '\0'; ++c) {
            name += std::isalnum(static_cast<unsigned char>(*c)) != 0 ? *c : '_';
        }
        return name;
    });

TEST(AnthropicRequest, NonObjectBodyRejected) {
    for (const char* body : {"[]", "\"x\"", "3", "null"}) {
        Error error = translate_err(json::parse(body));
        EXPECT_EQ(error.code(), ErrorCode::kInvalidRequest);
    }
}

// The shape a current Claude Code sends (features §3.10, issue 6 §7): two dozen tools,
// system blocks with cache_control, a system turn inside messages, max_tokens 32000, thinking,
// metadata, context_management and other unknown fields, tool history.
TEST(AnthropicRequest, ClaudeCodeRequestShape) {
    json request = json::parse(R"({
        "model":"claude-opus-4-1-20250805","max_tokens":32000,"stream":true,
        "thinking":{"type":"enabled","budget_tokens":31999},
        "metadata":{"user_id":"user_0123_account__session_abc"},
        "context_management":{"edits":[{"type":"clear_thinking_20251015","keep":"all"}]},
        "service_tier":"auto","temperature":1,
        "system":[{"type":"text","text":"You are Claude Code, Anthropic's official CLI.",
                   "cache_control":{"type":"ephemeral"}},
                  {"type":"text","text":"PROMPT","cache_control":{"type":"ephemeral","ttl":"1h"}}],
        "messages":[
          {"role":"user","content":[{"type":"text","text":"<system-reminder>ctx</system-reminder>"},
             {"type":"text","text":"fix the bug","cache_control":{"type":"ephemeral"}}]},
          {"role":"assistant","content":[
             {"type":"thinking","thinking":"Look at main.cpp","signature":"helexa-unsigned-thinking"},
             {"type":"tool_use","id":"call_ab_0","name":"Read","input":{"file_path":"/x/main.cpp"}}]},
          {"role":"user","content":[{"type":"tool_result","tool_use_id":"call_ab_0",
             "content":[{"type":"text","text":"int main() {}"}],"cache_control":{"type":"ephemeral"}}]}
        ],
        "tools":[]})");
    std::string big_prompt(27000, 'p');
    request["system"][1]["text"] = big_prompt;
    for (int i = 0; i < 24; ++i) {
        request["tools"].push_back(
            {{"name", "Tool" + std::to_string(i)},
             {"description", "does thing " + std::to_string(i)},
             {"input_schema",
              {{"type", "object"},
               {"$schema", "http://json-schema.org/draft-07/schema#"},
               {"additionalProperties", false},
               {"properties", {{"arg", {{"type", "string"}}}}},
               {"required", {"arg"}}}}});
    }
    auto out = translate_ok(request);
    EXPECT_EQ(out.model, "claude-opus-4-1-20250805");
    EXPECT_TRUE(out.stream);
    EXPECT_TRUE(out.show_thinking);
    EXPECT_EQ(out.max_tokens, 32000);
    EXPECT_EQ(out.body["user"], "user_0123_account__session_abc");
    EXPECT_EQ(out.body["stream_options"]["include_usage"], true);
    EXPECT_FALSE(out.body.contains("context_management"));
    EXPECT_FALSE(out.body.contains("service_tier"));
    EXPECT_FALSE(out.body.contains("metadata"));
    EXPECT_FALSE(out.body.contains("thinking"));
    ASSERT_EQ(out.body["tools"].size(), 24u);
    EXPECT_EQ(out.body["tools"][23]["function"]["name"], "Tool23");
    const json& messages = out.body["messages"];
    ASSERT_EQ(messages.size(), 4u);
    EXPECT_EQ(messages[0]["role"], "system");
    EXPECT_EQ(messages[0]["content"].get<std::string>().size(),
              std::string("You are Claude Code, Anthropic's official CLI.\n\n").size() + 27000);
    EXPECT_EQ(messages[1]["content"], "<system-reminder>ctx</system-reminder>\n\nfix the bug");
    EXPECT_EQ(messages[2]["tool_calls"][0]["function"]["arguments"]["file_path"], "/x/main.cpp");
    EXPECT_EQ(messages[2]["reasoning_content"], "Look at main.cpp");
    EXPECT_EQ(messages[3], json({{"role", "tool"},
                                 {"tool_call_id", "call_ab_0"},
                                 {"content", "int main() {}"}}));
    // Nothing Anthropic-specific leaks into the OpenAI body.
    std::string dumped = out.body.dump();
    EXPECT_EQ(dumped.find("cache_control"), std::string::npos);
    EXPECT_EQ(dumped.find("input_schema"), std::string::npos);
    EXPECT_EQ(dumped.find("tool_use_id"), std::string::npos);
}

TEST(AnthropicRequest, DocumentBlocksFlattenTextSources) {
    json request = base_request();
    request["messages"] = json::parse(R"([{"role":"user","content":[
        {"type":"document","source":{"type":"text","media_type":"text/plain","data":"doc body"}},
        {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"x"}},
        {"type":"text","text":"summarise"}]}])");
    auto out = translate_ok(request);
    EXPECT_EQ(out.body["messages"][0]["content"], "doc body\n\n[document]\n\nsummarise");
}

}  // namespace
}  // namespace helexa::wire
