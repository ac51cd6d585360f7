// IoPool, shutdown signals and sleep_for.
#include <csignal>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "helexa/net/deadline.h"
#include "helexa/net/server.h"

namespace helexa::net {

struct IoPool::Impl {
    explicit Impl(int n) : n_threads(n < 1 ? 1 : n), io(n_threads) {}
    int n_threads;
    asio::io_context io;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
    std::mutex mutex;
    std::vector<std::thread> threads;
};

IoPool::IoPool(int n_threads) : impl_(std::make_unique<Impl>(n_threads)) {}

IoPool::~IoPool() {
    stop();
    join();
}

asio::io_context& IoPool::context() {
    return impl_->io;
}

void IoPool::start() {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->threads.empty()) {
        return;
    }
    impl_->guard.emplace(impl_->io.get_executor());
    for (int i = 0; i < impl_->n_threads; ++i) {
        impl_->threads.emplace_back([this] { impl_->io.run(); });
    }
}

void IoPool::stop() {
    impl_->io.stop();
}

void IoPool::join() {
    std::vector<std::thread> threads;
    {
        std::lock_guard lock(impl_->mutex);
        threads.swap(impl_->threads);
    }
    for (auto& t : threads) {
        if (t.joinable()) {
            t.join();
        }
    }
}

asio::awaitable<int> wait_for_shutdown_signal() {
    asio::signal_set signals(co_await asio::this_coro::executor, SIGINT, SIGTERM);
    auto [ec, signo] = co_await signals.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return ec ? 0 : signo;
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds duration) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_after(duration);
    co_await timer.async_wait(asio::use_awaitable);
}

}  // namespace helexa::net
