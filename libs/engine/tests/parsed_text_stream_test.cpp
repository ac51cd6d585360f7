// ParsedTextStream: the engine's text stage over libs/text's StreamParser — reasoning routing,
// tool-call extraction, finish-reason and reasoning-token accounting.
#include "helexa/engine/parsed_text_stream.h"

#include <gtest/gtest.h>

namespace helexa::engine {
namespace {

ParsedTextStreamMarkers qwen_markers() {
    return {text::MarkerPair{"<think>", "</think>", 10, 11},
            text::MarkerPair{"<tool_call>", "</tool_call>", 20, 21}};
}

struct Fed {
    std::string text;
    std::string reasoning;
    std::vector<ToolCall> calls;
    FinishReason reason = FinishReason::kStop;
    Usage usage;
};

// Feeds (token id, text) pairs the way the scheduler does: on_token, then push.
Fed feed(TextStream& stream, const std::vector<std::pair<int32_t, std::string>>& tokens) {
    Fed fed;
    std::vector<EngineEvent> events;
    for (const auto& [id, piece] : tokens) {
        stream.on_token(id);
        stream.push(piece, events);
    }
    fed.usage.completion_tokens = static_cast<int64_t>(tokens.size());
    stream.finish(fed.reason, fed.usage, events);
    for (auto& ev : events) {
        switch (ev.kind) {
            case EngineEvent::Kind::kTextDelta: fed.text += ev.text; break;
            case EngineEvent::Kind::kReasoningDelta: fed.reasoning += ev.text; break;
            case EngineEvent::Kind::kToolCall: fed.calls.push_back(*ev.tool_call); break;
            default: ADD_FAILURE() << "unexpected event kind"; break;
        }
    }
    return fed;
}

TEST(ParsedTextStream, RoutesReasoningAndCountsItsTokens) {
    GenerateRequest request;
    auto stream = parsed_text_stream_factory(qwen_markers())(request);
    Fed fed = feed(*stream, {{10, "<think>"}, {1, "let me"}, {2, " think"}, {11, "</think>"},
                             {3, "\n\nHello"}, {4, "!"}});
    EXPECT_EQ(fed.reasoning, "let me think");
    EXPECT_EQ(fed.text, "\n\nHello!");
    EXPECT_EQ(fed.usage.reasoning_tokens, 3);  // two words and the close marker
    EXPECT_EQ(fed.reason, FinishReason::kStop);
}

TEST(ParsedTextStream, PromptThatOpenedReasoningStartsInsideIt) {
    GenerateRequest request;
    request.starts_in_reasoning = true;
    auto stream = parsed_text_stream_factory(qwen_markers())(request);
    Fed fed = feed(*stream, {{1, "hmm"}, {11, "</think>"}, {2, "Answer"}});
    EXPECT_EQ(fed.reasoning, "hmm");
    EXPECT_EQ(fed.text, "Answer");
    EXPECT_EQ(fed.usage.reasoning_tokens, 2);
}

TEST(ParsedTextStream, ToolCallBecomesAnEventAndTheFinishReason) {
    GenerateRequest request;
    request.tools = nlohmann::json::parse(R"([{"type":"function","function":{"name":"get_weather",
        "parameters":{"type":"object","properties":{"days":{"type":"integer"}}}}}])");
    auto stream = parsed_text_stream_factory(qwen_markers())(request);
    Fed fed = feed(*stream, {{20, "<tool_call>"},
                             {1, "\n<function=get_weather>\n<parameter=days>\n3\n"},
                             {2, "</parameter>\n</function>\n"},
                             {21, "</tool_call>"}});
    ASSERT_EQ(fed.calls.size(), 1u);
    EXPECT_EQ(fed.calls[0].name, "get_weather");
    EXPECT_EQ(nlohmann::json::parse(fed.calls[0].arguments), nlohmann::json({{"days", 3}}));
    EXPECT_EQ(fed.reason, FinishReason::kToolCalls);
    EXPECT_EQ(fed.text, "");
}

TEST(ParsedTextStream, LengthFinishIsNotTurnedIntoToolCalls) {
    GenerateRequest request;
    auto stream = parsed_text_stream_factory(qwen_markers())(request);
    std::vector<EngineEvent> events;
    stream->on_token(20);
    stream->push("<tool_call>{\"name\":\"f\",\"arguments\":{}}</tool_call>", events);
    FinishReason reason = FinishReason::kLength;
    Usage usage;
    stream->finish(reason, usage, events);
    EXPECT_EQ(reason, FinishReason::kLength);
}

TEST(ParsedTextStream, WithoutMarkersEverythingIsText) {
    GenerateRequest request;
    request.starts_in_reasoning = true;  // ignored: the vocabulary has no reasoning markers
    auto stream = parsed_text_stream_factory({})(request);
    Fed fed = feed(*stream, {{10, "<think>"}, {1, "x"}, {11, "</think>"}});
    EXPECT_EQ(fed.text, "<think>x</think>");
    EXPECT_EQ(fed.usage.reasoning_tokens, 0);
}

}  // namespace
}  // namespace helexa::engine
