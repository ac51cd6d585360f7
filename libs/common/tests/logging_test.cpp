#include "helexa/common/logging.h"

#include <set>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include "helexa/common/config.h"

namespace helexa {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(LogDirectives, DefaultAndTargets) {
    auto d = log::parse_directives("info,neuron=debug,cortex::proxy=trace");
    ASSERT_TRUE(d.has_value()) << d.error().message();
    EXPECT_EQ(d->default_level, log::Level::kInfo);
    ASSERT_EQ(d->targets.size(), 2u);
    EXPECT_EQ(d->targets[0], (log::Directive{"neuron", log::Level::kDebug}));
    EXPECT_EQ(d->targets[1], (log::Directive{"cortex::proxy", log::Level::kTrace}));
}

TEST(LogDirectives, EmptyMeansInfoAndWhitespaceIsIgnored) {
    auto d = log::parse_directives("");
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->default_level, log::Level::kInfo);
    EXPECT_TRUE(d->targets.empty());
    d = log::parse_directives(" WARN , neuron = Error ,");
    ASSERT_TRUE(d.has_value()) << d.error().message();
    EXPECT_EQ(d->default_level, log::Level::kWarn);
    EXPECT_EQ(d->level_for("neuron::x"), log::Level::kError);
}

TEST(LogDirectives, BareTargetMeansTrace) {
    auto d = log::parse_directives("neuron::harness::candle");
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->level_for("neuron::harness::candle"), log::Level::kTrace);
    EXPECT_EQ(d->level_for("neuron"), log::Level::kInfo);
}

TEST(LogDirectives, InvalidPartsAreNamed) {
    auto d = log::parse_directives("info,neuron=loud");
    ASSERT_FALSE(d.has_value());
    EXPECT_EQ(d.error().code(), ErrorCode::kConfig);
    EXPECT_THAT(d.error().message(),
                HasSubstr("invalid log directive 'neuron=loud': unknown level 'loud'"));
    d = log::parse_directives("=debug");
    ASSERT_FALSE(d.has_value());
    EXPECT_THAT(d.error().message(), HasSubstr("'=debug': empty target"));
    d = log::parse_directives("info,neu ron=debug");
    ASSERT_FALSE(d.has_value());
    EXPECT_THAT(d.error().message(), HasSubstr("'neu ron=debug': invalid target"));
    d = log::parse_directives("neuron[span]=debug");
    ASSERT_FALSE(d.has_value());
}

TEST(LogDirectives, MostSpecificTargetWinsOnPathBoundaries) {
    auto d = log::parse_directives("warn,cortex=info,cortex::proxy=trace,neuron=debug");
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->level_for("cortex"), log::Level::kInfo);
    EXPECT_EQ(d->level_for("cortex::router"), log::Level::kInfo);
    EXPECT_EQ(d->level_for("cortex::proxy"), log::Level::kTrace);
    EXPECT_EQ(d->level_for("cortex::proxy::sse"), log::Level::kTrace);
    EXPECT_EQ(d->level_for("cortex::proxyx"), log::Level::kInfo);  // not a `::` boundary
    EXPECT_EQ(d->level_for("cortexx"), log::Level::kWarn);
    EXPECT_EQ(d->level_for("neuron::engine"), log::Level::kDebug);
    EXPECT_EQ(d->level_for("other"), log::Level::kWarn);
    // Order does not matter for specificity.
    d = log::parse_directives("cortex::proxy=trace,cortex=error");
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->level_for("cortex::proxy::x"), log::Level::kTrace);
    EXPECT_EQ(d->level_for("cortex::y"), log::Level::kError);
}

TEST(Logging, InitRejectsBadDirectivesWithConfigError) {
    EXPECT_THROW(init_logging("info,x=nope"), ConfigError);
}

// Captures all logging of a test into a string.
class LoggingCapture : public ::testing::Test {
protected:
    void TearDown() override { init_logging("info"); }
    void capture(std::string_view directives) {
        init_logging(directives, std::make_shared<spdlog::sinks::ostream_sink_mt>(out_));
    }
    std::string text() {
        for (const char* name : {"test::a", "test::a::b", "test::c"}) {
            log::get(name)->flush();
        }
        return out_.str();
    }
    std::ostringstream out_;
};

TEST_F(LoggingCapture, ComponentLoggersFollowDirectivesAndLaterInit) {
    auto early = log::get("test::a::b");  // created before the directives are installed
    capture("warn,test::a=debug");
    EXPECT_EQ(log::get("test::a"), log::get("test::a"));  // cached
    log::get("test::a")->debug("a-debug");
    log::get("test::a")->trace("a-trace");
    early->debug("b-debug");
    log::get("test::c")->info("c-info");
    log::get("test::c")->warn("c-warn");
    std::string s = text();
    EXPECT_THAT(s, HasSubstr("test::a: a-debug"));
    EXPECT_THAT(s, HasSubstr("test::a::b: b-debug"));
    EXPECT_THAT(s, HasSubstr("test::c: c-warn"));
    EXPECT_THAT(s, Not(HasSubstr("a-trace")));
    EXPECT_THAT(s, Not(HasSubstr("c-info")));
}

TEST_F(LoggingCapture, RequestLogPrefixesEveryLineWithRequestId) {
    capture("info,test::c=debug");
    RequestLog rlog(log::get("test::a"), "abc123");
    rlog.info("routing model={} node={}", "qwen", "n1");
    rlog.debug("hidden at info");
    RequestLog other = rlog.with_logger(log::get("test::c"));
    other.debug("proxy detail {}", 7);
    other.error("upstream failed");
    EXPECT_EQ(other.id(), "abc123");
    std::string s = text();
    EXPECT_THAT(s, HasSubstr("test::a: req=abc123 routing model=qwen node=n1"));
    EXPECT_THAT(s, HasSubstr("test::c: req=abc123 proxy detail 7"));
    EXPECT_THAT(s, HasSubstr("test::c: req=abc123 upstream failed"));
    EXPECT_THAT(s, Not(HasSubstr("hidden at info")));
    // Timestamp (UTC) then level before the component.
    EXPECT_THAT(s, testing::ContainsRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z info +test::a:"));
}

TEST(RequestId, ShortRandomHex) {
    std::set<std::string> seen;
    for (int i = 0; i < 100; ++i) {
        std::string id = new_request_id();
        EXPECT_EQ(id.size(), 16u);
        EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
        seen.insert(id);
    }
    EXPECT_EQ(seen.size(), 100u);
}

}  // namespace
}  // namespace helexa
