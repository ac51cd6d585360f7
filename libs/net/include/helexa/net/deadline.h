// Deadlines for coroutine operations: race an awaitable against a steady_timer (Boost 1.81 has no
// cancel_after). The loser is cancelled with terminal cancellation, so the raced operation must
// support per-operation cancellation (Asio sockets, timers, channels, net::Client calls do).
//
// Use: `auto r = co_await net::with_timeout(client.get(url), 2s); if (!r) { /* timed out */ }`
// Thread-safety: each call is independent; runs on the awaiting coroutine's executor.
#pragma once

#include <chrono>
#include <optional>
#include <utility>
#include <variant>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace helexa::net {

namespace asio = boost::asio;

// `op`'s result, or std::nullopt when `timeout` elapsed first.
template <typename T>
asio::awaitable<std::optional<T>> with_timeout(asio::awaitable<T> op,
                                               std::chrono::milliseconds timeout) {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_after(timeout);
    auto result = co_await (std::move(op) || timer.async_wait(asio::use_awaitable));
    if (result.index() == 0) {
        co_return std::optional<T>(std::move(std::get<0>(result)));
    }
    co_return std::nullopt;
}

// Sleeps for `duration` (cancellable).
asio::awaitable<void> sleep_for(std::chrono::milliseconds duration);

}  // namespace helexa::net
