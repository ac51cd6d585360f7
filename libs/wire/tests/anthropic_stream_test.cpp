// AnthropicStreamTranslator: event order, block switching, indices, usage, truncation, errors.
#include "helexa/wire/anthropic_stream.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace helexa::wire {
namespace {

using nlohmann::json;

json chunk_delta(const json& delta, const json& finish_reason = nullptr) {
    return {{"id", "chatcmpl-s1"},
            {"object", "chat.completion.chunk"},
            {"choices", {{{"index", 0}, {"delta", delta}, {"finish_reason", finish_reason}}}}};
}

json text(const std::string& t) {
    return chunk_delta({{"content", t}});
}
json reasoning(const std::string& t) {
    return chunk_delta({{"reasoning_content", t}});
}
json tool(int index, const json& id, const json& name, const json& arguments) {
    json function = json::object();
    if (!name.is_null()) {
        function["name"] = name;
    }
    if (!arguments.is_null()) {
        function["arguments"] = arguments;
    }
    json call = {{"index", index}, {"function", function}};
    if (!id.is_null()) {
        call["id"] = id;
        call["type"] = "function";
    }
    return chunk_delta({{"tool_calls", {call}}});
}
json finish(const std::string& reason) {
    return chunk_delta(json::object(), reason);
}
json usage_chunk(int prompt, int completion) {
    return {{"id", "chatcmpl-s1"},
            {"choices", json::array()},
            {"usage", {{"prompt_tokens", prompt}, {"completion_tokens", completion}}}};
}

AnthropicStreamOptions opts(bool show_thinking = false) {
    AnthropicStreamOptions o;
    o.model = "claude-x";
    o.show_thinking = show_thinking;
    o.input_tokens_hint = 7;
    return o;
}

// Drives the translator and records every event.
struct StreamRun {
    AnthropicStreamTranslator translator;
    std::vector<SseEvent> events;

    explicit StreamRun(AnthropicStreamOptions o) : translator(std::move(o)) {}
    void feed(const json& chunk) {
        auto out = translator.feed(chunk);
        events.insert(events.end(), out.begin(), out.end());
    }
    void finish() {
        auto out = translator.finish();
        events.insert(events.end(), out.begin(), out.end());
    }
    std::vector<std::string> names() const {
        std::vector<std::string> out;
        for (const auto& e : events) {
            out.push_back(e.event);
        }
        return out;
    }
    // Compact trace: "start:text@0", "delta:text_delta@0", "stop@0", ...
    std::vector<std::string> trace() const {
        std::vector<std::string> out;
        for (const auto& e : events) {
            if (e.event == "content_block_start") {
                out.push_back("start:" + e.data["content_block"]["type"].get<std::string>() + "@" +
                              std::to_string(e.data["index"].get<int>()));
            } else if (e.event == "content_block_delta") {
                out.push_back(e.data["delta"]["type"].get<std::string>() + "@" +
                              std::to_string(e.data["index"].get<int>()));
            } else if (e.event == "content_block_stop") {
                out.push_back("stop@" + std::to_string(e.data["index"].get<int>()));
            } else {
                out.push_back(e.event);
            }
        }
        return out;
    }
    const SseEvent& last(const std::string& name) const {
        for (auto it = events.rbegin(); it != events.rend(); ++it) {
            if (it->event == name) {
                return *it;
            }
        }
        static SseEvent none{"none", nullptr};
        return none;
    }
    // Reassembles block contents as a client SDK would (by index).
    std::vector<json> blocks() const {
        std::vector<json> out;
        for (const auto& e : events) {
            if (e.event == "content_block_start") {
                EXPECT_EQ(e.data["index"].get<size_t>(), out.size());
                out.push_back(e.data["content_block"]);
                out.back()["partial"] = "";
            } else if (e.event == "content_block_delta") {
                json& block = out.at(e.data["index"].get<size_t>());
                const json& d = e.data["delta"];
                if (d["type"] == "text_delta") {
                    block["text"] = block["text"].get<std::string>() + d["text"].get<std::string>();
                } else if (d["type"] == "thinking_delta") {
                    block["thinking"] =
                        block["thinking"].get<std::string>() + d["thinking"].get<std::string>();
                } else if (d["type"] == "signature_delta") {
                    block["signature"] = d["signature"];
                } else if (d["type"] == "input_json_delta") {
                    block["partial"] =
                        block["partial"].get<std::string>() + d["partial_json"].get<std::string>();
                }
            }
        }
        for (auto& block : out) {
            if (block["type"] == "tool_use" && !block["partial"].get<std::string>().empty()) {
                block["input"] = json::parse(block["partial"].get<std::string>());
            }
            block.erase("partial");
        }
        return out;
    }
};

using Trace = std::vector<std::string>;

TEST(AnthropicStream, PlainTextFlow) {
    StreamRun run(opts());
    run.feed(chunk_delta({{"role", "assistant"}, {"content", ""}}));
    run.feed(text("Hel"));
    run.feed(text("lo"));
    run.feed(finish("stop"));
    run.feed(usage_chunk(12, 2));
    run.finish();
    EXPECT_EQ(run.trace(), (Trace{"message_start", "start:text@0", "text_delta@0", "text_delta@0",
                                  "stop@0", "message_delta", "message_stop"}));
    const json& start = run.events[0].data;
    EXPECT_EQ(start["type"], "message_start");
    EXPECT_EQ(start["message"]["id"], "msg_s1");
    EXPECT_EQ(start["message"]["model"], "claude-x");
    EXPECT_EQ(start["message"]["role"], "assistant");
    EXPECT_EQ(start["message"]["content"], json::array());
    EXPECT_EQ(start["message"]["usage"]["input_tokens"], 7);
    EXPECT_EQ(run.blocks()[0]["text"], "Hello");
    const json& delta = run.last("message_delta").data;
    EXPECT_EQ(delta["delta"]["stop_reason"], "end_turn");
    EXPECT_TRUE(delta["delta"]["stop_sequence"].is_null());
    EXPECT_EQ(delta["usage"]["output_tokens"], 2);
    EXPECT_EQ(delta["usage"]["input_tokens"], 12);
    EXPECT_EQ(run.last("message_stop").data, json({{"type", "message_stop"}}));
    EXPECT_TRUE(run.translator.done());
}

TEST(AnthropicStream, ThinkingThenText) {
    StreamRun run(opts(true));
    run.feed(reasoning("Let me "));
    run.feed(reasoning("think."));
    run.feed(text("Answer"));
    run.feed(finish("stop"));
    run.finish();
    EXPECT_EQ(run.trace(),
              (Trace{"message_start", "start:thinking@0", "thinking_delta@0", "thinking_delta@0",
                     "signature_delta@0", "stop@0", "start:text@1", "text_delta@1", "stop@1",
                     "message_delta", "message_stop"}));
    auto blocks = run.blocks();
    EXPECT_EQ(blocks[0]["thinking"], "Let me think.");
    EXPECT_EQ(blocks[0]["signature"], "helexa-unsigned-thinking");
    EXPECT_EQ(blocks[1]["text"], "Answer");
    // No usage arrived: output falls back to the delta count (reasoning included).
    EXPECT_EQ(run.last("message_delta").data["usage"]["output_tokens"], 3);
}

TEST(AnthropicStream, ThinkingHiddenUnlessShown) {
    StreamRun run(opts(false));
    run.feed(reasoning("secret"));
    run.feed(chunk_delta({{"reasoning", "more"}}));
    run.feed(text("ok"));
    run.finish();
    EXPECT_EQ(run.trace(), (Trace{"message_start", "start:text@0", "text_delta@0", "stop@0",
                                  "message_delta", "message_stop"}));
    EXPECT_EQ(run.last("message_delta").data["usage"]["output_tokens"], 3);
}

TEST(AnthropicStream, SingleToolCallStreamedArguments) {
    StreamRun run(opts());
    run.feed(tool(0, "call_x_0", "get_weather", ""));
    run.feed(tool(0, nullptr, nullptr, "{\"city\":"));
    run.feed(tool(0, nullptr, nullptr, "\"Brno\"}"));
    run.feed(finish("tool_calls"));
    run.finish();
    EXPECT_EQ(run.trace(), (Trace{"message_start", "start:tool_use@0", "input_json_delta@0",
                                  "input_json_delta@0", "stop@0", "message_delta",
                                  "message_stop"}));
    auto blocks = run.blocks();
    EXPECT_EQ(blocks[0]["id"], "call_x_0");
    EXPECT_EQ(blocks[0]["name"], "get_weather");
    EXPECT_EQ(blocks[0]["input"], json({{"city", "Brno"}}));
    EXPECT_EQ(run.last("message_delta").data["delta"]["stop_reason"], "tool_use");
}

TEST(AnthropicStream, SeveralToolCallsInterleavedWithText) {
    StreamRun run(opts());
    run.feed(text("I'll read both files."));
    run.feed(tool(0, "call_a", "Read", "{\"path\":\"a\"}"));  // neuron: whole call per chunk
    run.feed(tool(1, "call_b", "Read", "{\"pa"));
    run.feed(tool(1, nullptr, nullptr, "th\":\"b\"}"));
    run.feed(text(" Then "));
    run.feed(text("grep."));
    run.feed(tool(2, "call_c", "Grep", "{}"));
    run.feed(finish("tool_calls"));
    run.feed(usage_chunk(300, 41));
    run.finish();
    EXPECT_EQ(run.trace(),
              (Trace{"message_start", "start:text@0", "text_delta@0", "stop@0",
                     "start:tool_use@1", "input_json_delta@1", "stop@1", "start:tool_use@2",
                     "input_json_delta@2", "input_json_delta@2", "stop@2", "start:text@3",
                     "text_delta@3", "text_delta@3", "stop@3", "start:tool_use@4",
                     "input_json_delta@4", "stop@4", "message_delta", "message_stop"}));
    auto blocks = run.blocks();
    ASSERT_EQ(blocks.size(), 5u);
    EXPECT_EQ(blocks[1]["input"], json({{"path", "a"}}));
    EXPECT_EQ(blocks[2]["id"], "call_b");
    EXPECT_EQ(blocks[2]["input"], json({{"path", "b"}}));
    EXPECT_EQ(blocks[3]["text"], " Then grep.");
    EXPECT_EQ(blocks[4]["name"], "Grep");
    EXPECT_EQ(blocks[4]["input"], json::object());
    const json& delta = run.last("message_delta").data;
    EXPECT_EQ(delta["delta"]["stop_reason"], "tool_use");
    EXPECT_EQ(delta["usage"]["output_tokens"], 41);
    EXPECT_EQ(delta["usage"]["input_tokens"], 300);
    EXPECT_EQ(run.translator.dropped_fragments(), 0);
}

TEST(AnthropicStream, ParallelToolCallsInOneChunk) {
    StreamRun run(opts());
    json both = chunk_delta(json::parse(R"({"tool_calls":[
        {"index":0,"id":"c0","type":"function","function":{"name":"A","arguments":"{}"}},
        {"index":1,"id":"c1","type":"function","function":{"name":"B","arguments":"{\"x\":1}"}}]})"));
    run.feed(both);
    run.finish();
    auto blocks = run.blocks();
    ASSERT_EQ(blocks.size(), 2u);
    EXPECT_EQ(blocks[0]["name"], "A");
    EXPECT_EQ(blocks[1]["input"], json({{"x", 1}}));
    // finish_reason never arrived but tool_use blocks were sent: the agent must run them.
    EXPECT_EQ(run.last("message_delta").data["delta"]["stop_reason"], "tool_use");
}

TEST(AnthropicStream, ArgumentsBeforeNameAreHeldBack) {
    StreamRun run(opts());
    run.feed(tool(0, "c0", nullptr, "{\"a\""));
    EXPECT_EQ(run.trace(), (Trace{"message_start"}));
    run.feed(tool(0, nullptr, "Late", ":1}"));
    run.finish();
    auto blocks = run.blocks();
    ASSERT_EQ(blocks.size(), 1u);
    EXPECT_EQ(blocks[0]["name"], "Late");
    EXPECT_EQ(blocks[0]["input"], json({{"a", 1}}));
}

TEST(AnthropicStream, NamelessToolStillEmittedAtFinish) {
    StreamRun run(opts());
    run.feed(tool(0, "c0", nullptr, "{}"));
    run.finish();
    auto blocks = run.blocks();
    ASSERT_EQ(blocks.size(), 1u);
    EXPECT_EQ(blocks[0]["id"], "c0");
    EXPECT_EQ(blocks[0]["name"], "");
}

TEST(AnthropicStream, LateFragmentForClosedToolIsCounted) {
    StreamRun run(opts());
    run.feed(tool(0, "c0", "A", "{"));
    run.feed(tool(1, "c1", "B", "{}"));
    run.feed(tool(0, nullptr, nullptr, "}"));  // out of order: block 0 already closed
    run.finish();
    EXPECT_EQ(run.translator.dropped_fragments(), 1);
    for (const auto& e : run.events) {
        if (e.event == "content_block_delta") {
            EXPECT_NE(e.data["delta"].value("partial_json", ""), "}");
        }
    }
}

TEST(AnthropicStream, MissingToolIdIsSynthesised) {
    StreamRun run(opts());
    run.feed(tool(3, nullptr, "X", "{}"));
    run.finish();
    EXPECT_EQ(run.blocks()[0]["id"], "toolu_s1_3");
}

TEST(AnthropicStream, TruncatedStreamWithoutDoneStillCloses) {
    StreamRun run(opts());
    run.feed(text("partial ans"));
    run.finish();  // upstream EOF without finish_reason or [DONE]
    EXPECT_EQ(run.trace(), (Trace{"message_start", "start:text@0", "text_delta@0", "stop@0",
                                  "message_delta", "message_stop"}));
    EXPECT_FALSE(run.translator.saw_finish_reason());
    EXPECT_EQ(run.last("message_delta").data["delta"]["stop_reason"], "end_turn");
    EXPECT_EQ(run.last("message_delta").data["usage"]["output_tokens"], 1);
}

TEST(AnthropicStream, TruncatedInsideThinkingClosesWithSignature) {
    StreamRun run(opts(true));
    run.feed(reasoning("hmm"));
    run.finish();
    EXPECT_EQ(run.trace(), (Trace{"message_start", "start:thinking@0", "thinking_delta@0",
                                  "signature_delta@0", "stop@0", "message_delta",
                                  "message_stop"}));
}

TEST(AnthropicStream, EmptyStreamStillWellFormed) {
    StreamRun run(opts());
    run.finish();
    EXPECT_EQ(run.trace(), (Trace{"message_start", "message_delta", "message_stop"}));
    EXPECT_EQ(run.last("message_delta").data["usage"]["output_tokens"], 0);
    EXPECT_EQ(run.last("message_delta").data["usage"]["input_tokens"], 7);
}

TEST(AnthropicStream, FinishIsIdempotentAndFeedAfterFinishIgnored) {
    StreamRun run(opts());
    run.feed(text("x"));
    run.finish();
    size_t n = run.events.size();
    run.finish();
    run.feed(text("more"));
    EXPECT_EQ(run.events.size(), n);
    EXPECT_TRUE(run.translator.fail("late").empty());
}

TEST(AnthropicStream, LengthFinishMapsToMaxTokens) {
    StreamRun run(opts());
    run.feed(text("x"));
    run.feed(finish("length"));
    run.finish();
    EXPECT_EQ(run.last("message_delta").data["delta"]["stop_reason"], "max_tokens");
}

TEST(AnthropicStream, StopSequenceReported) {
    auto o = opts();
    o.stop_sequences = {"###"};
    StreamRun run(o);
    run.feed(text("x"));
    json last = finish("stop");
    last["choices"][0]["stop_reason"] = "###";
    run.feed(last);
    run.finish();
    EXPECT_EQ(run.last("message_delta").data["delta"]["stop_reason"], "stop_sequence");
    EXPECT_EQ(run.last("message_delta").data["delta"]["stop_sequence"], "###");
}

TEST(AnthropicStream, UsageWithoutCompletionTokensFallsBackToDeltaCount) {
    StreamRun run(opts());
    run.feed(text("a"));
    run.feed(text("b"));
    run.feed({{"choices", json::array()}, {"usage", {{"prompt_tokens", 9}}}});
    run.finish();
    EXPECT_EQ(run.last("message_delta").data["usage"]["output_tokens"], 2);
    EXPECT_EQ(run.last("message_delta").data["usage"]["input_tokens"], 9);
}

TEST(AnthropicStream, UpstreamErrorMidStream) {
    StreamRun run(opts());
    run.feed(text("so far"));
    run.feed(json::parse(R"({"error":{"message":"device fault","type":"api_error"}})"));
    EXPECT_TRUE(run.translator.done());
    const SseEvent& error = run.events.back();
    EXPECT_EQ(error.event, "error");
    EXPECT_EQ(error.data["type"], "error");
    EXPECT_EQ(error.data["error"]["type"], "api_error");
    EXPECT_EQ(error.data["error"]["message"], "upstream error: device fault");
    run.finish();
    EXPECT_EQ(run.events.back().event, "error");  // nothing after the error
}

TEST(AnthropicStream, ExplicitFailAndCustomType) {
    AnthropicStreamTranslator translator(opts());
    auto events = translator.fail("busy", "overloaded_error");
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].data["error"]["type"], "overloaded_error");
    EXPECT_TRUE(translator.finish().empty());
}

TEST(AnthropicStream, StartThenPingsThenChunks) {
    auto o = opts();
    o.message_id = "msg_given";
    AnthropicStreamTranslator translator(o);
    auto first = translator.start();
    ASSERT_EQ(first.size(), 1u);
    EXPECT_EQ(first[0].data["message"]["id"], "msg_given");
    EXPECT_TRUE(translator.start().empty());
    SseEvent ping = AnthropicStreamTranslator::ping();
    EXPECT_EQ(ping.event, "ping");
    EXPECT_EQ(ping.data, json({{"type", "ping"}}));
    auto next = translator.feed(text("x"));
    ASSERT_FALSE(next.empty());
    EXPECT_EQ(next[0].event, "content_block_start");  // no second message_start
}

TEST(AnthropicStream, JunkChunksAreIgnored) {
    StreamRun run(opts());
    for (const char* junk : {R"(5)", R"("x")", R"([])", R"({"choices":5})", R"({"choices":[5]})",
                             R"({"choices":[{"delta":5}]})",
                             R"({"choices":[{"delta":{"content":5,"tool_calls":[5,{"index":"x"}]}}]})",
                             R"({"usage":"x"})"}) {
        run.feed(json::parse(junk));
    }
    run.finish();
    EXPECT_EQ(run.events.back().event, "message_stop");
}

TEST(AnthropicStream, FormatSse) {
    SseEvent e{"message_stop", {{"type", "message_stop"}}};
    EXPECT_EQ(format_sse(e), "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
}

}  // namespace
}  // namespace helexa::wire
