// Engine events -> OpenAI chat chunks / completion, text completions, Responses events; request
// bodies -> SamplingParams and render input.
#include <gtest/gtest.h>

#include "fake_engine.h"
#include "helexa/node/chat_request.h"
#include "helexa/node/projection.h"

namespace helexa::node {
namespace {

using nlohmann::json;
using namespace testing;

std::vector<json> feed_all(ChatProjector& p, const std::vector<engine::EngineEvent>& events) {
    std::vector<json> out = p.start();
    for (const auto& e : events) {
        auto chunks = p.on_event(e);
        out.insert(out.end(), chunks.begin(), chunks.end());
    }
    return out;
}

std::string contents(const std::vector<json>& chunks) {
    std::string s;
    for (const auto& c : chunks) {
        if (!c["choices"].empty() && c["choices"][0]["delta"].contains("content")) {
            s += c["choices"][0]["delta"]["content"].get<std::string>();
        }
    }
    return s;
}

const std::vector<engine::EngineEvent> kThinkThenAnswer = {
    started_event(), reasoning_event("hmm"), reasoning_event(" ok"), text_event("Paris"),
    finish_event(engine::FinishReason::kStop, {10, 5, 3, 4})};

TEST(ChatProjector, RoleContentFinishAndUsageChunks) {
    ChatProjector p({"chatcmpl-1", "m", 7, ReasoningDisplay::kHidden, {}});
    auto chunks = feed_all(p, kThinkThenAnswer);
    ASSERT_EQ(chunks.size(), 4U);  // role, "Paris", finish, usage
    EXPECT_EQ(chunks[0]["object"], "chat.completion.chunk");
    EXPECT_EQ(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    EXPECT_EQ(chunks[1]["choices"][0]["delta"]["content"], "Paris");
    EXPECT_TRUE(chunks[1]["choices"][0]["finish_reason"].is_null());
    EXPECT_EQ(chunks[2]["choices"][0]["finish_reason"], "stop");
    EXPECT_TRUE(chunks[3]["choices"].empty());
    const auto& u = chunks[3]["usage"];
    EXPECT_EQ(u["prompt_tokens"], 10);
    EXPECT_EQ(u["completion_tokens"], 5);
    EXPECT_EQ(u["total_tokens"], 15);
    EXPECT_EQ(u["completion_tokens_details"]["reasoning_tokens"], 3);
    EXPECT_EQ(u["prompt_tokens_details"]["cached_tokens"], 4);
    auto full = p.completion();
    EXPECT_EQ(full["object"], "chat.completion");
    EXPECT_EQ(full["choices"][0]["message"]["content"], "Paris");
    EXPECT_FALSE(full["choices"][0]["message"].contains("reasoning_content"));
    EXPECT_EQ(full["usage"]["completion_tokens_details"]["reasoning_tokens"], 3);
}

TEST(ChatProjector, WrappedReasoningKeepsMarkers) {
    ChatProjector p({"c", "m", 0, ReasoningDisplay::kWrapped, {}});
    auto chunks = feed_all(p, kThinkThenAnswer);
    EXPECT_EQ(contents(chunks), "<think>hmm ok</think>Paris");
    EXPECT_EQ(p.completion()["choices"][0]["message"]["content"], "<think>hmm ok</think>Paris");
    // A stream ending inside reasoning still closes the marker before the finish chunk.
    ChatProjector q({"c", "m", 0, ReasoningDisplay::kWrapped, {"[THINK]", "[/THINK]"}});
    auto c2 = feed_all(q, {reasoning_event("x"), finish_event(engine::FinishReason::kLength)});
    EXPECT_EQ(contents(c2), "[THINK]x[/THINK]");
    EXPECT_EQ(c2[c2.size() - 2]["choices"][0]["finish_reason"], "length");
}

TEST(ChatProjector, ReasoningFieldsWhenAsked) {
    ChatProjector p({"c", "m", 0, ReasoningDisplay::kField, {}});
    auto chunks = feed_all(p, kThinkThenAnswer);
    EXPECT_EQ(chunks[1]["choices"][0]["delta"]["reasoning_content"], "hmm");
    EXPECT_EQ(chunks[1]["choices"][0]["delta"]["reasoning"], "hmm");
    EXPECT_EQ(contents(chunks), "Paris");
    auto msg = p.completion()["choices"][0]["message"];
    EXPECT_EQ(msg["reasoning_content"], "hmm ok");
}

TEST(ChatProjector, ToolCallDeltasAndPromotion) {
    ChatProjector p({"c", "m", 0, ReasoningDisplay::kHidden, {}});
    auto chunks = feed_all(p, {tool_event("call_ab_0", "get_weather", R"({"city":"Paris"})"),
                               tool_event("call_ab_1", "get_time", "{}"),
                               finish_event(engine::FinishReason::kStop)});
    ASSERT_EQ(chunks.size(), 5U);
    auto tc = chunks[1]["choices"][0]["delta"]["tool_calls"][0];
    EXPECT_EQ(tc["index"], 0);
    EXPECT_EQ(tc["id"], "call_ab_0");
    EXPECT_EQ(tc["type"], "function");
    EXPECT_EQ(tc["function"]["name"], "get_weather");
    EXPECT_EQ(tc["function"]["arguments"], R"({"city":"Paris"})");
    EXPECT_EQ(chunks[2]["choices"][0]["delta"]["tool_calls"][0]["index"], 1);
    EXPECT_EQ(chunks[3]["choices"][0]["finish_reason"], "tool_calls");
    auto msg = p.completion()["choices"][0]["message"];
    EXPECT_TRUE(msg["content"].is_null());
    EXPECT_EQ(msg["tool_calls"].size(), 2U);
    EXPECT_FALSE(msg["tool_calls"][0].contains("index"));
}

TEST(ChatProjector, ErrorStopsTheProjection) {
    ChatProjector p({"c", "m", 0, ReasoningDisplay::kHidden, {}});
    feed_all(p, {text_event("a"), error_event(Error(ErrorCode::kInternal, "device fault"))});
    EXPECT_TRUE(p.finished());
    ASSERT_TRUE(p.error());
    EXPECT_EQ(p.error()->message(), "device fault");
    EXPECT_TRUE(p.on_event(text_event("late")).empty());
}

TEST(CompletionProjector, TextChunksAndUsage) {
    CompletionProjector p("cmpl-1", "m", 3);
    std::string text;
    for (const auto& e : {text_event("a"), text_event("b"),
                          finish_event(engine::FinishReason::kLength, {2, 2, 0, 0})}) {
        for (const auto& c : p.on_event(e)) {
            EXPECT_EQ(c["object"], "text_completion");
            if (!c["choices"].empty()) {
                text += c["choices"][0]["text"].get<std::string>();
            }
        }
    }
    EXPECT_EQ(text, "ab");
    auto full = p.completion();
    EXPECT_EQ(full["choices"][0]["text"], "ab");
    EXPECT_EQ(full["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(full["usage"]["total_tokens"], 4);
}

std::vector<std::string> names(const std::vector<SseEvent>& events) {
    std::vector<std::string> out;
    for (const auto& e : events) {
        out.push_back(e.name);
        EXPECT_EQ(e.data["type"], e.name);
    }
    return out;
}

TEST(ResponsesProjector, MessageEventFamily) {
    ResponsesProjector p({"resp_1", "m", 9, false, {{"instructions", "be brief"}}});
    std::vector<SseEvent> all;
    for (const auto& e : kThinkThenAnswer) {
        auto ev = p.on_event(e);  // start frames are synthesised on the first event
        all.insert(all.end(), ev.begin(), ev.end());
    }
    EXPECT_EQ(names(all), (std::vector<std::string>{
                              "response.created", "response.in_progress",
                              "response.output_item.added", "response.content_part.added",
                              "response.output_text.delta", "response.output_text.done",
                              "response.content_part.done", "response.output_item.done",
                              "response.completed"}));
    for (size_t i = 0; i < all.size(); ++i) {
        EXPECT_EQ(all[i].data["sequence_number"], i);
    }
    EXPECT_EQ(all[0].data["response"]["status"], "in_progress");
    EXPECT_TRUE(all[0].data["response"]["output"].empty());
    EXPECT_TRUE(all[0].data["response"]["usage"].is_null());
    auto done = all.back().data["response"];
    EXPECT_EQ(done["status"], "completed");
    EXPECT_EQ(done["instructions"], "be brief");
    EXPECT_EQ(done["output"][0]["content"][0]["text"], "Paris");
    EXPECT_EQ(done["output_text"], "Paris");
    EXPECT_EQ(done["usage"]["input_tokens"], 10);
    EXPECT_EQ(done["usage"]["output_tokens_details"]["reasoning_tokens"], 3);
    EXPECT_EQ(done["usage"]["input_tokens_details"]["cached_tokens"], 4);
    EXPECT_EQ(p.response(), done);
}

TEST(ResponsesProjector, ReasoningItemAndFunctionCalls) {
    ResponsesProjector p({"resp_2", "m", 0, true, {}});
    std::vector<SseEvent> all = p.start();
    for (const auto& e : {reasoning_event("think"), tool_event("call_1", "f", R"({"a":1})"),
                          finish_event(engine::FinishReason::kLength)}) {
        auto ev = p.on_event(e);
        all.insert(all.end(), ev.begin(), ev.end());
    }
    auto n = names(all);
    EXPECT_NE(std::find(n.begin(), n.end(), "response.reasoning_text.delta"), n.end());
    EXPECT_NE(std::find(n.begin(), n.end(), "response.function_call_arguments.delta"), n.end());
    EXPECT_NE(std::find(n.begin(), n.end(), "response.function_call_arguments.done"), n.end());
    auto r = p.response();
    EXPECT_EQ(r["status"], "incomplete");
    EXPECT_EQ(r["incomplete_details"]["reason"], "max_output_tokens");
    ASSERT_EQ(r["output"].size(), 2U);
    EXPECT_EQ(r["output"][0]["type"], "reasoning");
    EXPECT_EQ(r["output"][1]["type"], "function_call");
    EXPECT_EQ(r["output"][1]["call_id"], "call_1");
    EXPECT_EQ(r["output"][1]["arguments"], R"({"a":1})");
}

TEST(ResponsesProjector, EmptyOutputStillHasOneMessage) {
    ResponsesProjector p({"resp_3", "m", 0, false, {}});
    p.on_event(reasoning_event("hidden"));
    p.on_event(finish_event(engine::FinishReason::kStop));
    auto r = p.response();
    ASSERT_EQ(r["output"].size(), 1U);
    EXPECT_EQ(r["output"][0]["type"], "message");
    EXPECT_EQ(r["output"][0]["content"][0]["text"], "");
}

// ---- request mapping ----

TEST(ChatRequest, MapsEverySamplingField) {
    auto body = json::parse(R"({
        "model": "m", "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.5, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
        "repetition_penalty": 1.2, "presence_penalty": 0.1, "frequency_penalty": -0.3,
        "seed": 42, "logit_bias": {"50256": -100}, "max_completion_tokens": 64,
        "max_tokens": 999, "stop": ["END", ""], "stream": true})");
    auto plan = parse_chat_request(body, false);
    ASSERT_TRUE(plan) << plan.error().message();
    const auto& s = plan->sampling;
    EXPECT_FLOAT_EQ(*s.temperature, 0.5F);
    EXPECT_FLOAT_EQ(*s.top_p, 0.9F);
    EXPECT_EQ(*s.top_k, 40);
    EXPECT_FLOAT_EQ(*s.min_p, 0.05F);
    EXPECT_FLOAT_EQ(*s.repetition_penalty, 1.2F);
    EXPECT_FLOAT_EQ(*s.presence_penalty, 0.1F);
    EXPECT_FLOAT_EQ(*s.frequency_penalty, -0.3F);
    EXPECT_EQ(*s.seed, 42U);
    EXPECT_FLOAT_EQ(s.logit_bias.at(50256), -100.0F);
    EXPECT_EQ(*s.max_tokens, 64);
    EXPECT_EQ(s.stop, std::vector<std::string>{"END"});
    EXPECT_TRUE(plan->stream);
    EXPECT_EQ(plan->render.template_kwargs["enable_thinking"], false);
}

TEST(ChatRequest, ThinkingDefaultsAndReasoningDisplay) {
    auto base = json::parse(R"({"model":"m","messages":[{"role":"user","content":"x"}]})");
    EXPECT_EQ(parse_chat_request(base, true)->reasoning, ReasoningDisplay::kWrapped);
    EXPECT_FALSE(parse_chat_request(base, true)->render.template_kwargs.contains("enable_thinking"));
    auto explicit_on = base;
    explicit_on["chat_template_kwargs"] = {{"enable_thinking", true}, {"x", 1}};
    auto p = parse_chat_request(explicit_on, false);
    EXPECT_EQ(p->render.template_kwargs["enable_thinking"], true);
    EXPECT_EQ(p->render.template_kwargs["x"], 1);
    for (const char* extra : {R"({"include_reasoning": true})", R"({"reasoning_effort": "high"})",
                              R"({"reasoning": {"effort": "low"}})"}) {
        auto b = base;
        b.update(json::parse(extra));
        EXPECT_EQ(parse_chat_request(b, false)->reasoning, ReasoningDisplay::kField) << extra;
    }
    auto off = base;
    off["reasoning"] = {{"enabled", "weird"}, {"exclude", true}};
    EXPECT_EQ(parse_chat_request(off, false)->reasoning, ReasoningDisplay::kHidden);
}

TEST(ChatRequest, NormalisesToolArgumentsAndSpotsImages) {
    auto body = json::parse(R"({"model":"m","messages":[
        {"role":"user","content":[{"type":"text","text":"look"},
                                  {"type":"image_url","image_url":{"url":"data:x"}}]},
        {"role":"assistant","content":null,"tool_calls":[
            {"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},
            {"id":"d","type":"function","function":{"name":"g","arguments":"not json"}}]}],
        "tools":[{"type":"function","function":{"name":"f"}}]})");
    auto plan = parse_chat_request(body, false);
    ASSERT_TRUE(plan);
    EXPECT_TRUE(plan->has_images);
    EXPECT_TRUE(plan->has_tools);
    const auto& calls = plan->render.messages[1]["tool_calls"];
    EXPECT_EQ(calls[0]["function"]["arguments"]["a"], 1);
    EXPECT_EQ(calls[1]["function"]["arguments"], "not json");
}

TEST(ChatRequest, RejectsBadFieldsWithTheirName) {
    auto check = [](const char* text, const char* param) {
        auto r = parse_chat_request(json::parse(text), false);
        ASSERT_FALSE(r) << text;
        EXPECT_EQ(r.error().code(), ErrorCode::kInvalidRequest);
        EXPECT_EQ(r.error().param(), std::optional<std::string>(param)) << text;
    };
    check(R"({"messages":[{"role":"user","content":"x"}]})", "model");
    check(R"({"model":"m"})", "messages");
    check(R"({"model":"m","messages":[]})", "messages");
    check(R"({"model":"m","messages":[{"content":"x"}]})", "messages");
    check(R"({"model":"m","messages":[{"role":"user"}],"temperature":-1})", "temperature");
    check(R"({"model":"m","messages":[{"role":"user"}],"top_p":0})", "top_p");
    check(R"({"model":"m","messages":[{"role":"user"}],"max_tokens":0})", "max_tokens");
    check(R"({"model":"m","messages":[{"role":"user"}],"stop":[1]})", "stop");
    check(R"({"model":"m","messages":[{"role":"user"}],"logit_bias":{"x":1}})", "logit_bias");
    check(R"({"model":"m","messages":[{"role":"user"}],"n":2})", "n");
    check(R"({"model":"m","messages":[{"role":"user"}],"tools":{}})", "tools");
    EXPECT_FALSE(parse_chat_request(json::array(), false));
}

TEST(CompletionRequest, PromptForms) {
    auto a = parse_completion_request(json::parse(R"({"model":"m","prompt":"hi","max_tokens":3})"));
    ASSERT_TRUE(a);
    EXPECT_EQ(a->prompt, "hi");
    EXPECT_EQ(*a->sampling.max_tokens, 3);
    EXPECT_TRUE(parse_completion_request(json::parse(R"({"model":"m","prompt":["x"]})")));
    EXPECT_FALSE(a->prompt_tokens);
    EXPECT_FALSE(parse_completion_request(json::parse(R"({"model":"m","prompt":["x","y"]})")));
    EXPECT_FALSE(parse_completion_request(json::parse(R"({"model":"m"})")));
    // Token ids, flat or as the one prompt of a list: used as given.
    for (const char* text : {R"({"model":"m","prompt":[5,0,2147483647]})",
                             R"({"model":"m","prompt":[[5,0,2147483647]]})"}) {
        auto ids = parse_completion_request(json::parse(text));
        ASSERT_TRUE(ids) << text;
        ASSERT_TRUE(ids->prompt_tokens) << text;
        EXPECT_EQ(*ids->prompt_tokens, (std::vector<int32_t>{5, 0, 2147483647})) << text;
    }
    for (const char* bad :
         {R"({"model":"m","prompt":[]})", R"({"model":"m","prompt":[1,-1]})",
          R"({"model":"m","prompt":[1,2147483648]})", R"({"model":"m","prompt":[1,"x"]})",
          R"({"model":"m","prompt":[1,2.5]})", R"({"model":"m","prompt":[[1],[2]]})",
          R"({"model":"m","prompt":[[]]})"}) {
        auto r = parse_completion_request(json::parse(bad));
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().param(), std::optional<std::string>("prompt")) << bad;
    }
}

TEST(SamplingRequest, IgnoreEosIsABooleanOffByDefault) {
    EXPECT_FALSE(parse_sampling(json::parse(R"({})"))->ignore_eos);
    EXPECT_TRUE(parse_sampling(json::parse(R"({"ignore_eos":true})"))->ignore_eos);
    EXPECT_FALSE(parse_sampling(json::parse(R"({"ignore_eos":null})"))->ignore_eos);
    auto r = parse_sampling(json::parse(R"({"ignore_eos":"yes"})"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().param(), std::optional<std::string>("ignore_eos"));
}

TEST(Headers, Truthy) {
    EXPECT_TRUE(header_truthy("TRUE"));
    EXPECT_TRUE(header_truthy("1"));
    EXPECT_TRUE(header_truthy("Yes"));
    EXPECT_FALSE(header_truthy("no"));
    EXPECT_FALSE(header_truthy(std::nullopt));
}

}  // namespace
}  // namespace helexa::node
