// Reasoning routing: markers from the vocabulary, never reaching the client, at any split.
#include <gtest/gtest.h>

#include "helexa/text/reasoning_router.h"
#include "stream_test_util.h"

namespace helexa::text {
namespace {

using testing::check_split_invariance;
using testing::run_whole;

StreamParserOptions think(bool starts_in_reasoning = false) {
    StreamParserOptions o;
    o.reasoning_markers = {"<think>", "</think>"};
    o.starts_in_reasoning = starts_in_reasoning;
    o.call_id_hex = "ab12";
    return o;
}

TEST(StreamReasoning, RoutesBlockAndDropsMarkers) {
    EXPECT_EQ(run_whole(think(), "<think>plan it</think>Answer."), "R[plan it]T[Answer.]");
    EXPECT_EQ(run_whole(think(), "pre<think>x</think>post"), "T[pre]R[x]T[post]");
}

TEST(StreamReasoning, StartsInReasoningWhenPromptOpenedBlock) {
    EXPECT_EQ(run_whole(think(true), "thinking...</think>\n\nHello"),
              "R[thinking...]T[\n\nHello]");
    // Without the prompt hint, a stray close marker is dropped and earlier text stays text.
    EXPECT_EQ(run_whole(think(false), "thinking...</think>Hello"), "T[thinking...Hello]");
}

TEST(StreamReasoning, UnclosedBlockStaysReasoningAtFinish) {
    EXPECT_EQ(run_whole(think(), "<think>still going"), "R[still going]");
    EXPECT_EQ(run_whole(think(true), "never closed </thi"), "R[never closed </thi]");
}

TEST(StreamReasoning, NestedOpenIsDroppedAndSecondBlockWorks) {
    EXPECT_EQ(run_whole(think(), "<think>a<think>b</think>c<think>d</think>e"),
              "R[ab]T[c]R[d]T[e]");
}

TEST(StreamReasoning, PartialMarkerLookalikesStayText) {
    EXPECT_EQ(run_whole(think(), "a <thin b </thinker> <think"),
              "T[a <thin b </thinker> <think]");
}

TEST(StreamReasoning, BracketMarkers) {
    StreamParserOptions o;
    o.reasoning_markers = {"[THINK]", "[/THINK]"};
    EXPECT_EQ(run_whole(o, "[THINK]why[/THINK]because"), "R[why]T[because]");
    EXPECT_EQ(check_split_invariance(o, "x[THINK]w[hy][/THINK]be[/THINK]cause[THINK"), "");
}

TEST(StreamReasoning, NoMarkersIsPassThrough) {
    StreamParserOptions o;
    o.starts_in_reasoning = true;  // ignored without markers
    EXPECT_EQ(run_whole(o, "<think>x</think>"), "T[<think>x</think>]");
}

TEST(StreamReasoning, EverySplitPointGivesSameEvents) {
    for (const char* input : {
             "<think>plan it</think>Answer.",
             "pre<think>x</think>post<think></think>",
             "a <thin b </thinker> <think",
             "<<think><</think></think>>",
             "<think>a<think>b</think>c<think>d</think>e",
         }) {
        EXPECT_EQ(check_split_invariance(think(), input), "") << input;
        EXPECT_EQ(check_split_invariance(think(true), input), "") << input;
    }
}

TEST(StreamReasoning, IncludeThinkingRewrapsIntoText) {
    StreamParserOptions o = think();
    o.include_thinking = true;
    EXPECT_EQ(run_whole(o, "<think>plan</think>Answer"), "T[<think>plan</think>Answer]");
    o.starts_in_reasoning = true;
    EXPECT_EQ(run_whole(o, "plan</think>Answer"), "T[<think>plan</think>Answer]");
    EXPECT_EQ(run_whole(o, "plan only"), "T[<think>plan only</think>]");
    EXPECT_EQ(check_split_invariance(o, "plan</think>Ans<think>more</think>wer"), "");
}

TEST(StreamReasoning, CountsReasoningBytes) {
    StreamParser parser(think());
    parser.push("<think>abc");
    EXPECT_TRUE(parser.in_reasoning());
    parser.push("de</think>xyz");
    EXPECT_FALSE(parser.in_reasoning());
    parser.finish();
    EXPECT_EQ(parser.reasoning_bytes(), 5);
}

TEST(StreamReasoning, HoldsBackOnlyPossibleMarkerPrefix) {
    ReasoningRouter router({"<think>", "</think>"}, false);
    std::vector<StreamEvent> out;
    router.push("hello <th", out);
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].text, "hello ");
    out.clear();
    router.push("x", out);  // "<thx" can no longer be a marker: released
    ASSERT_EQ(out.size(), 1U);
    EXPECT_EQ(out[0].text, "<thx");
}

TEST(StreamReasoning, MultiByteTextNeverSplitMidCodePoint) {
    // Markers made of multi-byte characters, and emoji / CJK text around ASCII markers.
    const std::string input =
        "前言😀<think>思考🤔中</think>答案✅<think>再想</think>結束🎉";
    StreamParserOptions o = think();
    EXPECT_EQ(run_whole(o, input), "T[前言😀]R[思考🤔中]T[答案✅]R[再想]T[結束🎉]");
    EXPECT_EQ(check_split_invariance(o, input), "");
    std::vector<StreamEvent> raw;
    testing::run_chunks(o, testing::bytewise(input), &raw);
    for (const StreamEvent& e : raw) {
        EXPECT_TRUE(testing::valid_utf8(e.text)) << e.text;
    }
    StreamParserOptions cjk;
    cjk.reasoning_markers = {"◁think▷", "◁/think▷"};
    const std::string input2 = "▷◁a◁think▷内◁/thi◁/think▷外◁";
    EXPECT_EQ(run_whole(cjk, input2), "T[▷◁a]R[内◁/thi]T[外◁]");
    EXPECT_EQ(check_split_invariance(cjk, input2), "");
    raw.clear();
    testing::run_chunks(cjk, testing::bytewise(input2), &raw);
    for (const StreamEvent& e : raw) {
        EXPECT_TRUE(testing::valid_utf8(e.text)) << e.text;
    }
}

}  // namespace
}  // namespace helexa::text
