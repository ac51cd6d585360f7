// Tool-call bodies (JSON, Qwen XML), coercion, repair, and streaming extraction at any split.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "helexa/text/tool_call.h"
#include "stream_test_util.h"

namespace helexa::text {
namespace {

using nlohmann::json;
using testing::check_split_invariance;
using testing::run_whole;

json weather_tools() {
    return json::parse(R"([
      {"type":"function","function":{"name":"get_weather","parameters":{"type":"object",
        "properties":{"city":{"type":"string"},"days":{"type":"integer"},
                      "metric":{"type":"boolean"},"lat":{"type":"number"},
                      "opts":{"type":"object"},"tags":{"type":"array"},
                      "zip":{"type":["string","null"]},"n":{"type":["null","integer"]}}}}},
      {"name":"anthropic_tool","input_schema":{"properties":{"k":{"type":"integer"}}}},
      "garbage", {"function":{"name":3}}
    ])");
}

StreamParserOptions tools_opts() {
    StreamParserOptions o;
    o.reasoning_markers = {"<think>", "</think>"};
    o.tool_call_markers = {hermes_tool_call_markers()};
    o.tool_schemas = build_tool_schemas(weather_tools());
    o.call_id_hex = "beef";
    return o;
}

TEST(StreamToolSchemas, BuildsFromOpenAiAndAnthropicForms) {
    const ToolSchemas s = build_tool_schemas(weather_tools());
    EXPECT_EQ(s.type_of("get_weather", "days"), "integer");
    EXPECT_EQ(s.type_of("get_weather", "zip"), "string");
    EXPECT_EQ(s.type_of("get_weather", "n"), "integer");
    EXPECT_EQ(s.type_of("anthropic_tool", "k"), "integer");
    EXPECT_EQ(s.type_of("get_weather", "nope"), "");
    EXPECT_EQ(s.type_of("nope", "k"), "");
    EXPECT_TRUE(build_tool_schemas(json("not an array")).types.empty());
}

TEST(StreamToolCoercion, Table) {
    struct Case {
        const char* raw;
        const char* type;
        const char* expected_json;
    };
    const Case cases[] = {
        {"Brno", "string", R"("Brno")"},
        {" 42 ", "string", R"(" 42 ")"},
        {"42", "integer", "42"},
        {" -7\n", "integer", "-7"},
        {"4.5", "integer", R"("4.5")"},
        {"abc", "integer", R"("abc")"},
        {"99999999999999999999", "integer", R"("99999999999999999999")"},
        {"3.25", "number", "3.25"},
        {"12", "number", "12"},
        {"1e999", "number", R"("1e999")"},
        {"x1", "number", R"("x1")"},
        {"true", "boolean", "true"},
        {" False ", "boolean", "false"},
        {"yes", "boolean", R"("yes")"},
        {R"({"a":[1,2]})", "object", R"({"a":[1,2]})"},
        {"[1,2]", "object", R"("[1,2]")"},
        {"[1, \"x\"]", "array", R"([1,"x"])"},
        {"{broken", "array", R"("{broken")"},
        {"null", "null", "null"},
        {"5", "", "5"},
        {"true", "", "true"},
        {"[1]", "", "[1]"},
        {"hello world", "", R"("hello world")"},
        {"\"quoted\"", "", R"("\"quoted\"")"},
        {"", "", R"("")"},
        {"7", "weird-type", "7"},
    };
    for (const Case& c : cases) {
        EXPECT_EQ(coerce_parameter(c.raw, c.type).dump(), c.expected_json)
            << c.raw << " as " << c.type;
    }
}

TEST(StreamToolParse, JsonForm) {
    const ToolSchemas none;
    auto call = parse_tool_call_body(R"( {"name":"f","arguments":{"a":1,"s":"}"}} )", none);
    ASSERT_TRUE(call);
    EXPECT_EQ(call->name, "f");
    EXPECT_EQ(call->arguments_json, R"({"a":1,"s":"}"})");
    call = parse_tool_call_body(R"({"name":"f","parameters":{"b":true}})", none);
    ASSERT_TRUE(call);
    EXPECT_EQ(call->arguments_json, R"({"b":true})");
    call = parse_tool_call_body(R"({"name":"f"})", none);
    ASSERT_TRUE(call);
    EXPECT_EQ(call->arguments_json, "{}");
}

TEST(StreamToolParse, Repairs) {
    const ToolSchemas none;
    // Up to three extra closing braces.
    for (const char* body : {R"({"name":"f","arguments":{"a":1}}})",
                             R"({"name":"f","arguments":{"a":1}}}}  )",
                             R"({"name":"f","arguments":{"a":1}}}}})"}) {
        auto call = parse_tool_call_body(body, none);
        ASSERT_TRUE(call) << body;
        EXPECT_EQ(call->arguments_json, R"({"a":1})");
    }
    EXPECT_FALSE(parse_tool_call_body(R"({"name":"f","arguments":{"a":1}}}}}})", none));
    // name nested in arguments.
    auto call = parse_tool_call_body(R"({"arguments":{"name":"bash","command":"ls"}})", none);
    ASSERT_TRUE(call);
    EXPECT_EQ(call->name, "bash");
    EXPECT_EQ(call->arguments_json, R"({"command":"ls"})");
    // A top-level name wins; a `name` argument is then kept.
    call = parse_tool_call_body(R"({"name":"f","arguments":{"name":"x"}})", none);
    ASSERT_TRUE(call);
    EXPECT_EQ(call->name, "f");
    EXPECT_EQ(call->arguments_json, R"({"name":"x"})");
    // Arguments double-encoded as a string.
    call = parse_tool_call_body(R"({"name":"f","arguments":"{\"a\":[1]}"})", none);
    ASSERT_TRUE(call);
    EXPECT_EQ(call->arguments_json, R"({"a":[1]})");
}

TEST(StreamToolParse, Unparseable) {
    const ToolSchemas none;
    for (const char* body : {"", "   ", "{", R"({"arguments":{"a":1}})", R"({"name":""})",
                             R"({"name":"f","arguments":"not json"})",
                             R"({"name":"f","arguments":[1]})", "[1,2]", "just prose",
                             "<function=>", "<function=f", "text <function=f></function>",
                             "<function=f><parameter=p</function>"}) {
        EXPECT_FALSE(parse_tool_call_body(body, none)) << body;
    }
}

TEST(StreamToolParse, QwenXmlFormWithCoercion) {
    const ToolSchemas s = build_tool_schemas(weather_tools());
    const char* body =
        "\n<function=get_weather>\n<parameter=city>\nBrno\n</parameter>\n"
        "<parameter=days>\n3\n</parameter>\n<parameter=metric>\ntrue\n</parameter>\n"
        "<parameter=lat>\nnorth\n</parameter>\n<parameter=opts>\n{\"u\": \"c\"}\n</parameter>\n"
        "<parameter=extra>\n12\n</parameter>\n</function>\n";
    auto call = parse_tool_call_body(body, s);
    ASSERT_TRUE(call);
    EXPECT_EQ(call->name, "get_weather");
    EXPECT_EQ(json::parse(call->arguments_json),
              json::parse(R"({"city":"Brno","days":3,"metric":true,"lat":"north",
                              "opts":{"u":"c"},"extra":12})"));
    // Multi-line string values keep inner newlines; missing </parameter> ends at the next one.
    call = parse_tool_call_body(
        "<function=get_weather><parameter=city>a\nb<parameter=days>2</function>", s);
    ASSERT_TRUE(call);
    EXPECT_EQ(json::parse(call->arguments_json), json::parse(R"({"city":"a\nb","days":2})"));
    // require_complete demands </function>.
    EXPECT_FALSE(parse_tool_call_body("<function=f><parameter=a>1</parameter>", s, true));
    EXPECT_TRUE(parse_tool_call_body("<function=f><parameter=a>1</parameter>", s, false));
}

TEST(StreamToolExtract, JsonCallBetweenText) {
    EXPECT_EQ(run_whole(tools_opts(),
                        R"(Let me check.<tool_call>{"name":"get_weather",)"
                        R"("arguments":{"city":"Brno"}}</tool_call>)"),
              R"(T[Let me check.]C[call_beef_0|get_weather|{"city":"Brno"}])");
}

TEST(StreamToolExtract, SeveralCallsInOneTurnWithReasoning) {
    const std::string input =
        "<think>two calls</think>On it.\n<tool_call>\n{\"name\":\"a\",\"arguments\":{}}\n"
        "</tool_call>\n<tool_call>\n<function=get_weather>\n<parameter=days>\n5\n</parameter>\n"
        "</function>\n</tool_call><tool_call>{\"name\":\"c\",\"arguments\":{\"x\":\"y\"}}"
        "</tool_call>";
    std::vector<StreamEvent> raw;
    StreamParser parser(tools_opts());
    parser.push(input, raw);
    parser.finish(raw);
    EXPECT_EQ(testing::describe(testing::normalize(raw)),
              "R[two calls]T[On it.\n]C[call_beef_0|a|{}]T[\n]C[call_beef_1|get_weather|"
              "{\"days\":5}]C[call_beef_2|c|{\"x\":\"y\"}]");
    EXPECT_EQ(parser.n_tool_calls(), 3);
    EXPECT_EQ(check_split_invariance(tools_opts(), input), "");
}

TEST(StreamToolExtract, CloseMarkerAndBracesInsideJsonStrings) {
    const std::string input =
        "<tool_call>{\"name\":\"echo\",\"arguments\":{\"s\":\"a}b</tool_call>c\\\"}{\","
        "\"n\":{\"d\":[{}]}}}</tool_call>tail";
    EXPECT_EQ(run_whole(tools_opts(), input),
              "C[call_beef_0|echo|{\"n\":{\"d\":[{}]},\"s\":\"a}b</tool_call>c\\\"}{\"}]"
              "T[tail]");
    EXPECT_EQ(check_split_invariance(tools_opts(), input), "");
}

TEST(StreamToolExtract, RepairsInStream) {
    const std::string input =
        "<tool_call>{\"name\":\"f\",\"arguments\":{\"a\":1}}}}</tool_call>"
        "<tool_call>{\"arguments\":{\"name\":\"g\",\"b\":2}}</tool_call>";
    EXPECT_EQ(run_whole(tools_opts(), input),
              "C[call_beef_0|f|{\"a\":1}]C[call_beef_1|g|{\"b\":2}]");
    EXPECT_EQ(check_split_invariance(tools_opts(), input), "");
}

TEST(StreamToolExtract, UnparseableBodyComesBackAsText) {
    const std::string input =
        "x<tool_call>{\"oops\": tru}</tool_call>y<tool_call>  </tool_call>z";
    EXPECT_EQ(run_whole(tools_opts(), input), "T[x<tool_call>{\"oops\": tru}</tool_call>yz]");
    EXPECT_EQ(check_split_invariance(tools_opts(), input), "");
}

TEST(StreamToolExtract, UnterminatedCallAtFinish) {
    // Complete JSON: best-effort call.
    EXPECT_EQ(run_whole(tools_opts(), "a<tool_call>{\"name\":\"f\",\"arguments\":{}}"),
              "T[a]C[call_beef_0|f|{}]");
    // Complete XML function: best-effort call.
    EXPECT_EQ(run_whole(tools_opts(),
                        "<tool_call><function=f><parameter=p>1</parameter></function>"),
              "C[call_beef_0|f|{\"p\":1}]");
    // Incomplete: the raw text, open marker included.
    EXPECT_EQ(run_whole(tools_opts(), "a<tool_call>{\"name\":\"f\",\"argu"),
              "T[a<tool_call>{\"name\":\"f\",\"argu]");
    EXPECT_EQ(run_whole(tools_opts(), "<tool_call><function=f><parameter=p>1"),
              "T[<tool_call><function=f><parameter=p>1]");
    EXPECT_EQ(run_whole(tools_opts(), "<tool_call>{\"s\":\"</tool_call> never"),
              "T[<tool_call>{\"s\":\"</tool_call> never]");
    EXPECT_EQ(run_whole(tools_opts(), "ends with <tool_ca"), "T[ends with <tool_ca]");
    for (const char* input : {"a<tool_call>{\"name\":\"f\",\"arguments\":{}}",
                              "a<tool_call>{\"name\":\"f\",\"argu", "ends with <tool_ca"}) {
        EXPECT_EQ(check_split_invariance(tools_opts(), input), "") << input;
    }
}

TEST(StreamToolExtract, ConfigurableMarkerPairs) {
    StreamParserOptions o;
    o.tool_call_markers = {hermes_tool_call_markers(), {"[TOOL_CALLS]", "[/TOOL_CALLS]"}};
    o.call_id_hex = "1";
    const std::string input =
        "[TOOL_CALLS]{\"name\":\"a\",\"arguments\":{}}[/TOOL_CALLS]"
        "<tool_call>{\"name\":\"b\",\"arguments\":{}}</tool_call>"
        "[TOOL_CALLS]{\"name\":\"c\"}</tool_call>[/TOOL_CALLS]";
    EXPECT_EQ(run_whole(o, input),
              "C[call_1_0|a|{}]C[call_1_1|b|{}]"
              "T[[TOOL_CALLS]{\"name\":\"c\"}</tool_call>[/TOOL_CALLS]]");
    EXPECT_EQ(check_split_invariance(o, input), "");
}

TEST(StreamToolExtract, NoToolMarkersPassesThrough) {
    StreamParserOptions o;
    EXPECT_EQ(run_whole(o, "<tool_call>{\"name\":\"f\"}</tool_call>"),
              "T[<tool_call>{\"name\":\"f\"}</tool_call>]");
}

TEST(StreamToolExtract, ReasoningNeverYieldsCalls) {
    const std::string input =
        "<think>maybe <tool_call>{\"name\":\"f\"}</tool_call></think>done";
    EXPECT_EQ(run_whole(tools_opts(), input),
              "R[maybe <tool_call>{\"name\":\"f\"}</tool_call>]T[done]");
    EXPECT_EQ(check_split_invariance(tools_opts(), input), "");
}

TEST(StreamToolExtract, IncludeThinkingWithCall) {
    StreamParserOptions o = tools_opts();
    o.include_thinking = true;
    o.starts_in_reasoning = true;
    const std::string input = "hmm</think><tool_call>{\"name\":\"f\"}</tool_call>";
    EXPECT_EQ(run_whole(o, input), "T[<think>hmm</think>]C[call_beef_0|f|{}]");
    EXPECT_EQ(check_split_invariance(o, input), "");
}

TEST(StreamToolExtract, MultiByteAroundAndInsideCalls) {
    const std::string input =
        "天気を調べます🌦<tool_call>{\"name\":\"get_weather\","
        "\"arguments\":{\"city\":\"東京🗼\"}}</tool_call>完了✅<tool_call>"
        "<function=get_weather><parameter=city>\n北京\n</parameter></function></tool_call>";
    EXPECT_EQ(run_whole(tools_opts(), input),
              "T[天気を調べます🌦]C[call_beef_0|get_weather|{\"city\":\"東京🗼\"}]"
              "T[完了✅]"
              "C[call_beef_1|get_weather|{\"city\":\"北京\"}]");
    EXPECT_EQ(check_split_invariance(tools_opts(), input), "");
    std::vector<StreamEvent> raw;
    testing::run_chunks(tools_opts(), testing::bytewise(input), &raw);
    for (const StreamEvent& e : raw) {
        EXPECT_TRUE(testing::valid_utf8(e.text)) << e.text;
    }
}

TEST(StreamToolExtract, RandomIdsAreHexAndDistinctPerParser) {
    StreamParserOptions o = tools_opts();
    o.call_id_hex.clear();
    auto id_of = [&] {
        StreamParser p(o);
        auto events = p.push("<tool_call>{\"name\":\"f\"}</tool_call>");
        EXPECT_EQ(events.size(), 1U);
        return events.empty() ? std::string() : events[0].call.id;
    };
    const std::string a = id_of();
    const std::string b = id_of();
    ASSERT_EQ(a.size(), std::string("call_0123456789abcdef_0").size());
    EXPECT_EQ(a.substr(0, 5), "call_");
    EXPECT_EQ(a.substr(a.size() - 2), "_0");
    EXPECT_EQ(a.find_first_not_of("0123456789abcdef", 5), a.size() - 2);
    EXPECT_NE(a, b);
}

}  // namespace
}  // namespace helexa::text
