// scan_usage / UsageTailScanner over OpenAI, Responses and Anthropic bodies, at every split.
#include "helexa/wire/usage_scan.h"

#include <string>

#include <gtest/gtest.h>

namespace helexa::wire {
namespace {

const std::string kChatSse =
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}],"
    "\"usage\":null}\n\n"
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":123,"
    "\"completion_tokens_details\":{\"reasoning_tokens\":5},\"completion_tokens\":45,"
    "\"total_tokens\":168,\"prompt_tokens_details\":{\"cached_tokens\":100}}}\n\n"
    "data: [DONE]\n\n";

TEST(UsageScan, ChatSseTrailingUsage) {
    auto usage = scan_usage(kChatSse);
    ASSERT_TRUE(usage);
    EXPECT_EQ(*usage, (UsageCounts{123, 45}));
}

TEST(UsageScan, DetailsNeverShadowCounts) {
    // completion_tokens_details appears before and after; a nested "completion_tokens" key
    // inside details must not be read either.
    std::string body = R"({"usage":{"completion_tokens_details":{"completion_tokens":999},
        "prompt_tokens":7,"completion_tokens":8}})";
    EXPECT_EQ(scan_usage(body), (UsageCounts{7, 8}));
}

TEST(UsageScan, LastUsageWins) {
    std::string body = R"({"usage":{"prompt_tokens":1,"completion_tokens":1}}
        {"usage":{"prompt_tokens":2,"completion_tokens":9}})";
    EXPECT_EQ(scan_usage(body), (UsageCounts{2, 9}));
}

TEST(UsageScan, NonStreamingJson) {
    std::string body = R"({"id":"x","choices":[{"message":{"content":"the \"usage\": {\"prompt_tokens\": 1}"}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}})";
    EXPECT_EQ(scan_usage(body), (UsageCounts{10, 20}));
}

TEST(UsageScan, UsageLookalikeInsideStringIgnored) {
    std::string body = R"({"choices":[{"message":{"content":"x \"usage\":{\"prompt_tokens\":5}"}}]})";
    EXPECT_FALSE(scan_usage(body));
}

TEST(UsageScan, ResponsesCompleted) {
    std::string body =
        "event: response.created\ndata: {\"response\":{\"status\":\"in_progress\",\"usage\":null}}\n\n"
        "event: response.completed\ndata: {\"response\":{\"status\":\"completed\",\"usage\":"
        "{\"input_tokens\":50,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":"
        "12,\"output_tokens_details\":{\"reasoning_tokens\":3},\"total_tokens\":62}}}\n\n";
    EXPECT_EQ(scan_usage(body), (UsageCounts{50, 12}));
}

TEST(UsageScan, AnthropicMergesMessageStartAndDelta) {
    std::string body =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":"
        "{\"input_tokens\":400,\"output_tokens\":1}}}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":"
        "77}}\n\n";
    EXPECT_EQ(scan_usage(body), (UsageCounts{400, 77}));
}

TEST(UsageScan, NothingFound) {
    EXPECT_FALSE(scan_usage(""));
    EXPECT_FALSE(scan_usage("data: [DONE]\n\n"));
    EXPECT_FALSE(scan_usage(R"({"usage":null})"));
    EXPECT_FALSE(scan_usage(R"({"usage":{}})"));
    EXPECT_FALSE(scan_usage(R"({"usage":{"prompt_tokens":null}})"));
    EXPECT_FALSE(scan_usage(R"({"usage":)"));
    EXPECT_FALSE(scan_usage(R"("usage")"));
}

TEST(UsageScan, TruncatedLastObjectFallsBackToEarlierOne) {
    std::string body = R"({"usage":{"prompt_tokens":3,"completion_tokens":4}} {"usage":{"prompt_tokens":5,"compl)";
    EXPECT_EQ(scan_usage(body), (UsageCounts{3, 4}));
}

TEST(UsageScan, EveryTailStartIsSafe) {
    // A tail can begin anywhere; the scan must never misread, only find or not find.
    for (size_t start = 0; start < kChatSse.size(); ++start) {
        auto usage = scan_usage(std::string_view(kChatSse).substr(start));
        if (usage) {
            EXPECT_EQ(*usage, (UsageCounts{123, 45})) << start;
        }
    }
}

TEST(UsageTailScanner, EverySplitPoint) {
    for (size_t split = 0; split <= kChatSse.size(); ++split) {
        UsageTailScanner scanner;
        scanner.feed(std::string_view(kChatSse).substr(0, split));
        scanner.feed(std::string_view(kChatSse).substr(split));
        EXPECT_EQ(scanner.result(), (UsageCounts{123, 45})) << split;
        EXPECT_EQ(scanner.bytes_seen(), kChatSse.size());
    }
}

TEST(UsageTailScanner, ByteByByte) {
    UsageTailScanner scanner;
    for (char c : kChatSse) {
        scanner.feed(std::string_view(&c, 1));
    }
    EXPECT_EQ(scanner.result(), (UsageCounts{123, 45}));
}

TEST(UsageTailScanner, KeepsOnlyTheTail) {
    UsageTailScanner scanner(64);
    std::string early = R"({"usage":{"prompt_tokens":1,"completion_tokens":1}})";
    scanner.feed(early);
    std::string filler(500, 'x');
    scanner.feed(filler);
    EXPECT_FALSE(scanner.result());  // the early usage fell out of the window
    EXPECT_LE(scanner.tail().size(), 64u);
    std::string late = R"({"usage":{"prompt_tokens":2,"completion_tokens":3}})";
    scanner.feed(late);
    EXPECT_EQ(scanner.result(), (UsageCounts{2, 3}));
    for (int i = 0; i < 1000; ++i) {
        scanner.feed("abc");
    }
    EXPECT_EQ(scanner.tail().size(), 64u);
}

TEST(UsageTailScanner, LongStreamBoundedAndFindsFinalUsage) {
    UsageTailScanner scanner;
    std::string token_chunk =
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok\"}}]}\n\n";
    for (int i = 0; i < 5000; ++i) {
        scanner.feed(token_chunk);
    }
    scanner.feed("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":5000}}\n\n");
    scanner.feed("data: [DONE]\n\n");
    EXPECT_EQ(scanner.result(), (UsageCounts{9, 5000}));
    EXPECT_EQ(scanner.tail().size(), kUsageTailBytes);
}

TEST(UsageScan, AbsurdNumbersDoNotOverflow) {
    std::string body = R"({"usage":{"prompt_tokens":99999999999999999999999,"completion_tokens":2}})";
    auto usage = scan_usage(body);
    ASSERT_TRUE(usage);
    EXPECT_EQ(usage->completion_tokens, 2);
    EXPECT_EQ(usage->prompt_tokens, 0);
}

}  // namespace
}  // namespace helexa::wire
