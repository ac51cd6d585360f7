// IoPool, shutdown signals and sleep_for.
#include <csignal>
#include <mutex>
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

namespace {

// Which pool context the current thread runs (set once per pool thread).
thread_local const void* t_pool = nullptr;
thread_local int t_index = -1;

}  // namespace

struct IoPool::Impl {
    explicit Impl(int n) {
        const int count = n < 1 ? 1 : n;
        contexts.reserve(static_cast<size_t>(count));
        for (int i = 0; i < count; ++i) {
            // Hint 1: this context is run by one thread. Asio then queues handlers posted from
            // that thread in a thread-local queue and never wakes another thread; locking stays
            // on, so other threads (engine, blocking pools, other contexts) may still post.
            contexts.push_back(std::make_unique<asio::io_context>(1));
        }
    }
    // Contexts go in reverse order: objects on context 0 (the acceptor, the server's shared
    // state, background tasks) may be owned by handlers still queued on the others, and must
    // outlive their destruction.
    ~Impl() {
        guards.clear();  // they refer to the contexts
        while (!contexts.empty()) {
            contexts.pop_back();
        }
    }

    std::vector<std::unique_ptr<asio::io_context>> contexts;
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    std::mutex mutex;
    std::vector<std::thread> threads;
};

IoPool::IoPool(int n_threads) : impl_(std::make_unique<Impl>(n_threads)) {}

IoPool::~IoPool() {
    stop();
    join();
}

asio::io_context& IoPool::context() {
    return *impl_->contexts.front();
}

asio::io_context& IoPool::context(size_t index) {
    return *impl_->contexts.at(index);
}

size_t IoPool::size() const {
    return impl_->contexts.size();
}

int IoPool::current_index() const {
    return t_pool == impl_.get() ? t_index : -1;
}

void IoPool::start() {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->threads.empty()) {
        return;
    }
    impl_->guards.clear();
    for (size_t i = 0; i < impl_->contexts.size(); ++i) {
        asio::io_context& io = *impl_->contexts[i];
        impl_->guards.emplace_back(io.get_executor());
        const Impl* owner = impl_.get();
        impl_->threads.emplace_back([&io, owner, i] {
            t_pool = owner;
            t_index = static_cast<int>(i);
            io.run();
            t_pool = nullptr;
            t_index = -1;
        });
    }
}

void IoPool::stop() {
    for (auto& io : impl_->contexts) {
        io->stop();
    }
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
