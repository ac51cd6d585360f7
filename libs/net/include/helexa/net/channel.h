// Channel<T>: an unbounded multi-producer, single-consumer queue that producers on any thread
// (e.g. an engine scheduler thread) push into without blocking, and one coroutine consumer awaits.
// close() wakes the consumer; it drains what is queued, then receives std::nullopt.
//
// Use: hold it in a shared_ptr when producer and consumer lifetimes differ:
//   auto ch = std::make_shared<net::Channel<Event>>(co_await asio::this_coro::executor);
//   engine.submit(req, [ch](Event e) { ch->push(std::move(e)); }, [ch] { ch->close(); });
//   while (auto e = co_await ch->receive()) { ... }
//
// Thread-safety: push/close/try_receive/closed/size are thread-safe. receive() is for one
// consumer coroutine at a time. receive() supports per-operation cancellation (it then returns
// std::nullopt with closed() still false), so it can be raced with `||`.
#pragma once

#include <deque>
#include <mutex>
#include <optional>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace helexa::net {

namespace asio = boost::asio;

template <typename T>
class Channel {
public:
    explicit Channel(asio::any_io_executor executor) : bell_(std::move(executor), 1) {}

    // Queues `value`; false (value dropped) once closed. Never blocks beyond a short lock.
    bool push(T value) {
        {
            std::lock_guard lock(mutex_);
            if (closed_) {
                return false;
            }
            queue_.push_back(std::move(value));
        }
        ring();
        return true;
    }

    // No more values; the consumer drains the queue then receives std::nullopt. Idempotent.
    void close() {
        {
            std::lock_guard lock(mutex_);
            closed_ = true;
        }
        ring();
    }

    bool closed() const {
        std::lock_guard lock(mutex_);
        return closed_;
    }

    size_t size() const {
        std::lock_guard lock(mutex_);
        return queue_.size();
    }

    std::optional<T> try_receive() {
        std::lock_guard lock(mutex_);
        if (queue_.empty()) {
            return std::nullopt;
        }
        T value = std::move(queue_.front());
        queue_.pop_front();
        return value;
    }

    // The next value, or std::nullopt when closed and drained (or when cancelled).
    asio::awaitable<std::optional<T>> receive() {
        for (;;) {
            {
                std::lock_guard lock(mutex_);
                if (!queue_.empty()) {
                    T value = std::move(queue_.front());
                    queue_.pop_front();
                    co_return value;
                }
                if (closed_) {
                    co_return std::nullopt;
                }
            }
            // The bell holds at most one ring; a push after the check above leaves it rung, so
            // this wait cannot miss it.
            auto [ec] = co_await bell_.async_receive(asio::as_tuple(asio::use_awaitable));
            if (ec) {
                co_return std::nullopt;  // cancelled (or the bell was torn down)
            }
        }
    }

private:
    void ring() {
        // Full means a ring is already pending, which is all the consumer needs.
        (void)bell_.try_send(boost::system::error_code{});
    }

    mutable std::mutex mutex_;
    std::deque<T> queue_;
    bool closed_ = false;
    asio::experimental::concurrent_channel<void(boost::system::error_code)> bell_;
};

}  // namespace helexa::net
