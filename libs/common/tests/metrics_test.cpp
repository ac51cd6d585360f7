#include "helexa/common/metrics.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace helexa::metrics {
namespace {

using ::testing::HasSubstr;

TEST(Metrics, ExpositionExactText) {
    Registry r;
    auto& requests = r.counter("cortex_requests_total", "Requests served.", {"model", "status"});
    auto& inflight = r.gauge("cortex_inflight", "In-flight requests.");
    auto& latency =
        r.histogram("cortex_latency_seconds", "Latency.\nSecond line \\ here.", {"model"},
                    {0.1, 1, 2.5});
    requests.with({"qwen", "200"}).inc();
    requests.with({"qwen", "200"}).inc(2);
    requests.with({"a\"b\\c\nd", "500"}).inc();
    inflight.get().set(3);
    inflight.get().dec();
    auto& h = latency.with({"qwen"});
    h.observe(0.05);
    h.observe(0.1);  // le is inclusive
    h.observe(2);
    h.observe(7.5);
    EXPECT_EQ(r.expose(),
              "# HELP cortex_inflight In-flight requests.\n"
              "# TYPE cortex_inflight gauge\n"
              "cortex_inflight 2\n"
              "# HELP cortex_latency_seconds Latency.\\nSecond line \\\\ here.\n"
              "# TYPE cortex_latency_seconds histogram\n"
              "cortex_latency_seconds_bucket{model=\"qwen\",le=\"0.1\"} 2\n"
              "cortex_latency_seconds_bucket{model=\"qwen\",le=\"1\"} 2\n"
              "cortex_latency_seconds_bucket{model=\"qwen\",le=\"2.5\"} 3\n"
              "cortex_latency_seconds_bucket{model=\"qwen\",le=\"+Inf\"} 4\n"
              "cortex_latency_seconds_sum{model=\"qwen\"} 9.65\n"
              "cortex_latency_seconds_count{model=\"qwen\"} 4\n"
              "# HELP cortex_requests_total Requests served.\n"
              "# TYPE cortex_requests_total counter\n"
              "cortex_requests_total{model=\"a\\\"b\\\\c\\nd\",status=\"500\"} 1\n"
              "cortex_requests_total{model=\"qwen\",status=\"200\"} 3\n");
}

TEST(Metrics, UnlabelledFamiliesShowZeroAndLabelledShowHeaderOnly) {
    Registry r;
    r.counter("a_total", "A.");
    r.gauge("b", "B.", {"node"});
    EXPECT_EQ(r.expose(),
              "# HELP a_total A.\n# TYPE a_total counter\na_total 0\n"
              "# HELP b B.\n# TYPE b gauge\n");
}

TEST(Metrics, ValueFormatting) {
    EXPECT_EQ(format_value(0), "0");
    EXPECT_EQ(format_value(1.5), "1.5");
    EXPECT_EQ(format_value(-2), "-2");
    EXPECT_EQ(format_value(1e21), "1e+21");
    EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
    EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
    EXPECT_EQ(format_value(std::nan("")), "NaN");
    EXPECT_EQ(escape_label_value("x\\y\"z\n"), "x\\\\y\\\"z\\n");
}

TEST(Metrics, CounterIgnoresNegativeIncrements) {
    Registry r;
    auto& c = r.counter("c_total", "C.").get();
    c.inc(5);
    c.inc(-3);
    c.inc(std::nan(""));
    EXPECT_DOUBLE_EQ(c.value(), 5);
}

TEST(Metrics, RegistrationIsIdempotentAndValidated) {
    Registry r;
    auto& a = r.counter("x_total", "X.", {"model"});
    EXPECT_EQ(&a, &r.counter("x_total", "X.", {"model"}));
    EXPECT_THROW(r.counter("x_total", "X.", {"node"}), std::invalid_argument);
    EXPECT_THROW(r.gauge("x_total", "X.", {"model"}), std::invalid_argument);
    EXPECT_THROW(r.counter("1bad", "bad"), std::invalid_argument);
    EXPECT_THROW(r.counter("bad-name", "bad"), std::invalid_argument);
    EXPECT_THROW(r.counter("ok_total", "bad", {"__reserved"}), std::invalid_argument);
    EXPECT_THROW(r.counter("ok_total", "bad", {"a", "a"}), std::invalid_argument);
    EXPECT_THROW(r.histogram("h", "bad", {"le"}), std::invalid_argument);
    EXPECT_THROW(r.histogram("h", "bad", {}, {1, 1}), std::invalid_argument);
    EXPECT_THROW(r.histogram("h", "bad", {}, {2, 1}), std::invalid_argument);
    EXPECT_THROW(a.with({"m", "extra"}), std::invalid_argument);
    EXPECT_THROW(a.get(), std::invalid_argument);
    // Explicit +Inf at the end is accepted and not duplicated.
    auto& h = r.histogram("h", "H.", {}, {1, std::numeric_limits<double>::infinity()});
    EXPECT_EQ(h.bounds(), std::vector<double>{1});
}

TEST(Metrics, BucketHelpers) {
    EXPECT_EQ(exponential_buckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
    EXPECT_EQ(linear_buckets(0, 5, 3), (std::vector<double>{0, 5, 10}));
    EXPECT_THROW(exponential_buckets(0, 2, 3), std::invalid_argument);
    EXPECT_THROW(linear_buckets(0, 0, 3), std::invalid_argument);
    EXPECT_EQ(default_buckets().size(), 11u);
}

TEST(Metrics, ConcurrentUpdatesAreNotLost) {
    Registry r;
    auto& c = r.counter("c_total", "C.", {"t"}).with({"x"});
    auto& h = r.histogram("h_seconds", "H.", {}, {0.5}).get();
    auto& g = r.gauge("g", "G.").get();
    constexpr int kThreads = 4;
    constexpr int kPerThread = 20000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < kPerThread; ++i) {
                c.inc();
                h.observe(i % 2 == 0 ? 0.25 : 1.0);
                g.inc();
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_DOUBLE_EQ(c.value(), kThreads * kPerThread);
    EXPECT_DOUBLE_EQ(g.value(), kThreads * kPerThread);
    auto snap = h.snapshot();
    EXPECT_EQ(snap.count, static_cast<uint64_t>(kThreads * kPerThread));
    EXPECT_EQ(snap.cumulative[0], static_cast<uint64_t>(kThreads * kPerThread / 2));
    EXPECT_DOUBLE_EQ(snap.sum, kThreads * (kPerThread / 2) * 1.25);
}

TEST(Metrics, DefaultRegistryIsShared) {
    auto& a = default_registry().counter("helexa_test_default_total", "T.");
    a.get().inc();
    EXPECT_EQ(&default_registry(), &default_registry());
    EXPECT_THAT(default_registry().expose(), HasSubstr("helexa_test_default_total 1\n"));
}

// Runs promtool on the exposition; it exits non-zero on format errors and on lint problems.
TEST(Metrics, PromtoolAcceptsExposition) {
    const char* promtool = "/usr/bin/promtool";
    if (access(promtool, X_OK) != 0) {
        GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
    }
    Registry r;
    r.counter("cortex_prompt_tokens_total", "Prompt tokens.", {"model", "node"})
        .with({"qwen3", "n1"})
        .inc(42);
    r.counter("cortex_spend_tokens_total", "Spend.", {"account", "key"})
        .with({"team \"a\"", "k\\1\nx"})
        .inc(7);
    r.gauge("cortex_fleet_nodes", "Nodes known.").get().set(2);
    auto& ttft = r.histogram("cortex_time_to_first_token_seconds", "TTFT.", {"model", "node"});
    ttft.with({"qwen3", "n1"}).observe(0.2);
    ttft.with({"qwen3", "n2"}).observe(12);
    r.histogram("cortex_tokens_per_second", "TPS.", {}, exponential_buckets(1, 2, 8))
        .get()
        .observe(40);

    char path[] = "/tmp/helexa_metrics_XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    std::string text = r.expose();
    ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    close(fd);
    std::string cmd = std::string(promtool) + " check metrics < " + path + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string output;
    char buf[512];
    while (fgets(buf, sizeof(buf), p) != nullptr) {
        output += buf;
    }
    int status = pclose(p);
    unlink(path);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output << "\n" << text;
}

}  // namespace
}  // namespace helexa::metrics
