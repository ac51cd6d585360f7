// Admission (queue full, wait timeout, per-principal share, FIFO hand-over) and discovery (NVML
// absent, version mismatch reason, kernel module parsing).
#include <gtest/gtest.h>

#include <future>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include "helexa/net/deadline.h"
#include "helexa/net/server.h"
#include "helexa/node/admission.h"
#include "helexa/node/discovery.h"

namespace helexa::node {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

class AdmissionTest : public ::testing::Test {
protected:
    void SetUp() override { io_.start(); }
    void TearDown() override {
        io_.stop();
        io_.join();
    }
    std::future<Result<Permit>> enter(const std::shared_ptr<AdmissionController>& c,
                                      std::string principal) {
        return asio::co_spawn(io_.context(), c->enter(std::move(principal)), asio::use_future);
    }
    net::IoPool io_{2};
};

TEST_F(AdmissionTest, AdmitsQueuesAndRejectsWhenFull) {
    auto c = AdmissionController::make({1, 1, 30, 0});
    auto first = enter(c, "").get();
    ASSERT_TRUE(first);
    EXPECT_EQ(c->load().in_flight, 1);
    auto queued = enter(c, "");
    while (c->load().queue_depth == 0) {
        std::this_thread::sleep_for(1ms);
    }
    auto full = enter(c, "").get();
    ASSERT_FALSE(full);
    EXPECT_EQ(full.error().code(), ErrorCode::kOverloaded);
    EXPECT_EQ(error_code_info(full.error().code()).http_status, 503);
    EXPECT_GE(full.error().retry_after_secs().value_or(0), 1);
    // Releasing the running permit hands its slot to the queued request.
    first->release();
    auto second = queued.get();
    ASSERT_TRUE(second);
    EXPECT_EQ(c->load().in_flight, 1);
    EXPECT_EQ(c->load().queue_depth, 0);
    second->release();
    EXPECT_EQ(c->load().in_flight, 0);
}

TEST_F(AdmissionTest, WaitTimeoutIsOverloaded) {
    auto c = AdmissionController::make({1, 4, 1, 0});
    auto first = enter(c, "").get();
    ASSERT_TRUE(first);
    auto start = std::chrono::steady_clock::now();
    auto late = enter(c, "").get();
    ASSERT_FALSE(late);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 900ms);
    EXPECT_EQ(late.error().code(), ErrorCode::kOverloaded);
    EXPECT_NE(late.error().message().find("waited 1 s"), std::string::npos);
    EXPECT_EQ(c->load().queue_depth, 0);  // the timed-out waiter left the queue
}

TEST_F(AdmissionTest, PerPrincipalShareWhileAnotherPrincipalIsServed) {
    auto c = AdmissionController::make({1, 8, 30, 2});
    auto a1 = enter(c, "acct/a").get();  // A running
    ASSERT_TRUE(a1);
    auto a2 = enter(c, "acct/a");  // A queued (its second and last share)
    while (c->load().queue_depth < 1) {
        std::this_thread::sleep_for(1ms);
    }
    auto a3 = enter(c, "acct/a").get();
    ASSERT_FALSE(a3);
    EXPECT_EQ(a3.error().code(), ErrorCode::kRateLimited);
    EXPECT_EQ(error_code_info(a3.error().code()).http_status, 429);
    EXPECT_EQ(a3.error().retry_after_secs(), std::optional<int64_t>(1));
    // B still gets a queue slot and is served after A's requests.
    auto b1 = enter(c, "acct/b");
    // Anonymous callers are exempt from the per-principal cap.
    auto anon1 = enter(c, "");
    auto anon2 = enter(c, "");
    while (c->load().queue_depth < 4) {
        std::this_thread::sleep_for(1ms);
    }
    a1->release();
    auto a2p = a2.get();
    ASSERT_TRUE(a2p);
    a2p->release();
    auto b1p = b1.get();
    ASSERT_TRUE(b1p);
    b1p->release();
    auto x = anon1.get();
    ASSERT_TRUE(x);
    x->release();
    auto y = anon2.get();
    ASSERT_TRUE(y);
    y->release();
    EXPECT_EQ(c->load().in_flight, 0);
}

TEST_F(AdmissionTest, CancelledWaiterLeavesNoSlotBehind) {
    auto c = AdmissionController::make({1, 4, 30, 0});
    auto first = enter(c, "").get();
    ASSERT_TRUE(first);
    // A waiter that loses a race against a short timer is torn down while queued.
    auto raced = asio::co_spawn(
        io_.context(),
        [c]() -> asio::awaitable<bool> {
            auto r = co_await net::with_timeout(c->enter(""), 50ms);
            co_return r.has_value();
        },
        asio::use_future);
    EXPECT_FALSE(raced.get());
    EXPECT_EQ(c->load().queue_depth, 0);
    first->release();
    EXPECT_EQ(c->load().in_flight, 0);
    EXPECT_TRUE(enter(c, "").get());
}

// ---- discovery ----

TEST(Discovery, NvmlAbsentIsASilentCpuHost) {
    auto monitor = make_nvml_monitor("libnvidia-ml-does-not-exist.so.1");
    auto d = monitor->discover();
    EXPECT_EQ(d.status, GpuStatus::kAbsent);
    EXPECT_TRUE(d.devices.empty());
    EXPECT_FALSE(cuda_unavailable_reason(d));
    EXPECT_TRUE(monitor->health().empty());
}

TEST(Discovery, LibraryWithoutNvmlSymbolsFails) {
    auto monitor = make_nvml_monitor("libc.so.6");
    auto d = monitor->discover();
    EXPECT_EQ(d.status, GpuStatus::kFailed);
    EXPECT_NE(d.error.find("NVML entry points"), std::string::npos);
    EXPECT_FALSE(cuda_unavailable_reason(d));
}

TEST(Discovery, MismatchReasonNamesBothVersions) {
    GpuDiscovery d;
    d.status = GpuStatus::kVersionMismatch;
    d.userspace_version = "12.550.54";
    d.kernel_module_version = parse_kernel_module_version(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.129.03  Thu Oct 19 18:56:32 UTC "
        "2023\nGCC version:  gcc version 12.2.0\n");
    EXPECT_EQ(d.kernel_module_version, std::optional<std::string>("535.129.03"));
    auto reason = cuda_unavailable_reason(d);
    ASSERT_TRUE(reason);
    EXPECT_NE(reason->find("12.550.54"), std::string::npos);
    EXPECT_NE(reason->find("535.129.03"), std::string::npos);
    EXPECT_NE(reason->find("reboot"), std::string::npos);
    EXPECT_FALSE(parse_kernel_module_version("garbage"));
    EXPECT_EQ(parse_kernel_module_version("NVRM version: NVIDIA UNIX Open Kernel Module for "
                                          "x86_64  550.54.14  Release Build"),
              std::optional<std::string>("550.54.14"));
    EXPECT_EQ(format_cuda_version(12040), "12.4");
}

}  // namespace
}  // namespace helexa::node
