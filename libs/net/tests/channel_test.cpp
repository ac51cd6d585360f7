// Channel (cross-thread producers, one coroutine consumer) and TaskGroup (cancel + bounded wait).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "helexa/net/channel.h"
#include "helexa/net/deadline.h"
#include "helexa/net/task_group.h"
#include "test_util.h"

namespace helexa::net {
namespace {

using namespace std::chrono_literals;
using testing::run_co;

TEST(Channel, CrossThreadProducersInOrderThenClose) {
    IoPool io(2);
    io.start();
    auto ch = std::make_shared<Channel<int>>(io.context().get_executor());
    constexpr int kPerProducer = 2000;
    // The coroutine takes the channel as a parameter: a lambda's captures would dangle once the
    // temporary closure is gone.
    auto consume = [](std::shared_ptr<Channel<int>> c) -> asio::awaitable<std::vector<int>> {
        std::vector<int> got;
        while (auto v = co_await c->receive()) {
            got.push_back(*v);
        }
        co_return got;
    };
    auto consumer = asio::co_spawn(io.context(), consume(ch), asio::use_future);
    // Two producer threads (like engine scheduler threads); values encode producer and sequence.
    std::thread a([&] {
        for (int i = 0; i < kPerProducer; ++i) {
            ch->push(i);
        }
    });
    std::thread b([&] {
        for (int i = 0; i < kPerProducer; ++i) {
            ch->push(100000 + i);
        }
    });
    a.join();
    b.join();
    ch->close();
    EXPECT_FALSE(ch->push(-1));  // closed channels refuse
    auto got = consumer.get();
    ASSERT_EQ(got.size(), 2u * kPerProducer);
    int next_a = 0;
    int next_b = 100000;
    for (int v : got) {
        if (v < 100000) {
            EXPECT_EQ(v, next_a++);
        } else {
            EXPECT_EQ(v, next_b++);
        }
    }
    io.stop();
    io.join();
}

TEST(Channel, CloseWakesWaitingConsumerAndReceiveIsCancellable) {
    IoPool io(1);
    io.start();
    auto ch = std::make_shared<Channel<std::string>>(io.context().get_executor());
    // A receive that loses a race against a deadline returns without a value.
    auto raced = run_co(io.context(), with_timeout(ch->receive(), 50ms));
    EXPECT_FALSE(raced.has_value());
    EXPECT_FALSE(ch->closed());

    auto waiting = asio::co_spawn(io.context(), ch->receive(), asio::use_future);
    std::this_thread::sleep_for(50ms);
    ch->close();
    ASSERT_EQ(waiting.wait_for(2s), std::future_status::ready);
    EXPECT_FALSE(waiting.get().has_value());
    EXPECT_TRUE(ch->closed());
    io.stop();
    io.join();
}

TEST(TaskGroup, CancelAllAndWait) {
    IoPool io(2);
    io.start();
    TaskGroup group(io.context().get_executor());
    std::atomic<int> cancelled{0};
    std::atomic<int> finished{0};
    auto sleeper = [](std::atomic<int>* n_cancelled) -> asio::awaitable<void> {
        try {
            co_await sleep_for(30s);
        } catch (const boost::system::system_error&) {
            ++*n_cancelled;
            throw;
        }
    };
    auto quick = [](std::atomic<int>* n_finished) -> asio::awaitable<void> {
        co_await sleep_for(10ms);
        ++*n_finished;
    };
    for (int i = 0; i < 4; ++i) {
        group.spawn(sleeper(&cancelled));
    }
    group.spawn(quick(&finished));
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(finished.load(), 1);
    EXPECT_EQ(group.size(), 4u);
    EXPECT_FALSE(run_co(io.context(), group.wait(50ms)));  // still running: bounded wait fails
    group.cancel_all();
    auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(run_co(io.context(), group.wait(2s)));
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
    EXPECT_EQ(cancelled.load(), 4);
    EXPECT_EQ(group.size(), 0u);
    io.stop();
    io.join();
}

}  // namespace
}  // namespace helexa::net
