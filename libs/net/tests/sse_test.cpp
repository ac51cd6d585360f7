// SSE parser: every split point, byte by byte, line-ending variants, comments, BOM, flush.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "helexa/net/sse.h"

namespace helexa::net {
namespace {

std::vector<SseEvent> parse_all(std::string_view input) {
    SseParser p;
    auto out = p.feed(input);
    p.finish(out);
    return out;
}

SseEvent ev(std::string event, std::string data, std::optional<std::string> id = std::nullopt,
            std::optional<int64_t> retry = std::nullopt) {
    return SseEvent{std::move(event), std::move(data), std::move(id), retry};
}

// A stream with named and unnamed events, multi-line data, a comment, id and retry, an empty
// data line, a field without a colon, and an event with no data (dropped).
const std::string kStream =
    ": keep-alive\n"
    "event: message_start\n"
    "data: {\"type\":\"message_start\"}\n"
    "\n"
    "data: line one\n"
    "data: line two\n"
    "id: 42\n"
    "\n"
    "retry: 1500\n"
    "data:no-space\n"
    "data\n"
    "\n"
    "event: ignored-no-data\n"
    "\n"
    "data: [DONE]\n"
    "\n";

const std::vector<SseEvent> kExpected = {
    ev("message_start", "{\"type\":\"message_start\"}"),
    ev("", "line one\nline two", "42"),
    ev("", "no-space\n", std::nullopt, 1500),
    ev("", "[DONE]"),
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    std::string out;
    size_t pos = 0;
    for (;;) {
        size_t next = s.find(from, pos);
        out.append(s, pos, next == std::string::npos ? std::string::npos : next - pos);
        if (next == std::string::npos) {
            break;
        }
        out.append(to);
        pos = next + from.size();
    }
    return out;
}

void expect_every_split(const std::string& input, const std::vector<SseEvent>& expected) {
    ASSERT_EQ(parse_all(input), expected);
    for (size_t split = 0; split <= input.size(); ++split) {
        SseParser p;
        auto out = p.feed(input.substr(0, split));
        p.feed(std::string_view(input).substr(split), out);
        p.finish(out);
        ASSERT_EQ(out, expected) << "split at " << split;
    }
    SseParser bytes;
    std::vector<SseEvent> out;
    for (char c : input) {
        bytes.feed(std::string_view(&c, 1), out);
    }
    bytes.finish(out);
    ASSERT_EQ(out, expected) << "byte by byte";
}

TEST(SseParser, EverySplitPointLf) {
    expect_every_split(kStream, kExpected);
}

TEST(SseParser, EverySplitPointCrLf) {
    expect_every_split(replace_all(kStream, "\n", "\r\n"), kExpected);
}

TEST(SseParser, EverySplitPointCr) {
    expect_every_split(replace_all(kStream, "\n", "\r"), kExpected);
}

TEST(SseParser, EverySplitPointWithBom) {
    expect_every_split("\xEF\xBB\xBF" + kStream, kExpected);
}

TEST(SseParser, BomOnlyStrippedAtStart) {
    // A BOM later in the stream is ordinary data; a partial BOM at the start is data too.
    auto out = parse_all("data: \xEF\xBB\xBFx\n\n");
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].data, "\xEF\xBB\xBFx");
    auto partial = parse_all("\xEF\xBB" "data: y\n\n");
    EXPECT_TRUE(partial.empty());  // the field name is "\xEF\xBBdata", unknown, ignored
}

TEST(SseParser, CommentsAreCounted) {
    SseParser p;
    auto out = p.feed(": ping\n\n: ping\n\n");
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(p.comments_seen(), 2u);
}

TEST(SseParser, FinalEventOnlyOnFinish) {
    SseParser p;
    auto out = p.feed("data: tail");
    EXPECT_TRUE(out.empty());
    out = p.feed("\n");
    EXPECT_TRUE(out.empty());  // line ended but no blank line yet
    out = p.finish();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].data, "tail");
    EXPECT_TRUE(p.finish().empty());  // nothing left
}

TEST(SseParser, CrLfSplitBetweenCrAndLfIsOneLineEnd) {
    SseParser p;
    auto out = p.feed("data: a\r");
    p.feed("\ndata: b\r", out);
    p.feed("\n\r", out);
    p.feed("\n", out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].data, "a\nb");
}

TEST(SseParser, BadRetryAndNulIdIgnored) {
    auto out = parse_all(std::string("retry: 12a\nid: a\0b\ndata: x\n\n", 27));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_FALSE(out[0].retry.has_value());
    EXPECT_FALSE(out[0].id.has_value());
}

TEST(SseFormat, RoundTripsThroughParser) {
    auto text = format_sse_event("a\nb\r\nc", "delta") + format_sse_comment("ping\nx") +
                format_sse_event("");
    EXPECT_EQ(format_sse_event("x", "e"), "event: e\ndata: x\n\n");
    EXPECT_EQ(format_sse_comment("ping\nx"), ": ping x\n\n");
    auto out = parse_all(text);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[0], ev("delta", "a\nb\nc"));
    EXPECT_EQ(out[1], ev("", ""));
}

}  // namespace
}  // namespace helexa::net
