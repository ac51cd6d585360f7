// Stop strings: detected across every split of the text, never emitted, held text released.
#include <gtest/gtest.h>

#include "helexa/engine/stop_strings.h"

namespace helexa::engine {
namespace {

struct Run {
    std::string text;
    bool stopped = false;
};

Run feed(const std::vector<std::string>& stops, const std::vector<std::string>& pieces) {
    StopStringMatcher m(stops);
    Run r;
    for (const auto& p : pieces) {
        auto out = m.push(p);
        r.text += out.text;
        if (out.stopped) {
            r.stopped = true;
            break;
        }
    }
    if (!r.stopped) {
        r.text += m.flush();
    }
    return r;
}

// Every way of cutting `text` into up to three pieces must give the same result.
void expect_all_splits(const std::vector<std::string>& stops, const std::string& text,
                       const std::string& expected, bool stopped) {
    for (size_t i = 0; i <= text.size(); ++i) {
        for (size_t j = i; j <= text.size(); ++j) {
            const std::vector<std::string> pieces = {text.substr(0, i), text.substr(i, j - i),
                                                     text.substr(j)};
            const Run r = feed(stops, pieces);
            ASSERT_EQ(r.text, expected) << "split at " << i << "," << j;
            ASSERT_EQ(r.stopped, stopped) << "split at " << i << "," << j;
        }
    }
}

TEST(StopStrings, StopAtEverySplitPoint) {
    expect_all_splits({"</end>"}, "hello </en world </end> tail", "hello </en world ", true);
}

TEST(StopStrings, NoStopPassesEverythingThrough) {
    expect_all_splits({"STOP"}, "a STO b ST", "a STO b ST", false);
    expect_all_splits({}, "anything", "anything", false);
}

TEST(StopStrings, TheStopThatCompletesFirstWins) {
    // "bcdx" starts earlier but "cd" completes first: a byte-by-byte stream would stop there.
    expect_all_splits({"xyz", "cd", "bcdx"}, "abcdxyz", "ab", true);
    expect_all_splits({"cdx", "bcdx"}, "abcdxyz", "a", true);  // same end: the longer one
    expect_all_splits({"aab"}, "aaaab!", "aa", true);
}

TEST(StopStrings, HoldsBackOnlyAPossiblePrefix) {
    StopStringMatcher m({"<stop>"});
    auto a = m.push("text <st");
    EXPECT_EQ(a.text, "text ");
    EXPECT_FALSE(a.stopped);
    auto b = m.push("ay>");  // the held "<st" was not a stop after all
    EXPECT_EQ(b.text, "<stay>");
    auto c = m.push("<");
    EXPECT_EQ(c.text, "");
    EXPECT_EQ(m.flush(), "<");
}

TEST(StopStrings, IgnoresInputAfterAStop) {
    StopStringMatcher m({"##"});
    auto a = m.push("one#");
    EXPECT_EQ(a.text, "one");
    auto b = m.push("#two");
    EXPECT_TRUE(b.stopped);
    EXPECT_EQ(b.text, "");
    EXPECT_TRUE(m.push("three").stopped);
    EXPECT_EQ(m.flush(), "");
}

TEST(StopStrings, EmptyStopsAreIgnoredAndMultibyteStopsWork) {
    expect_all_splits({"", "\xE3\x80\x82"}, "ok\xE3\x80\x82rest", "ok", true);
}

}  // namespace
}  // namespace helexa::engine
