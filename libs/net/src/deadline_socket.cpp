// DeadlineSocket: one watchdog timer per connection instead of one timer operation per socket
// operation (see internal/deadline_socket.h).
#include "internal/deadline_socket.h"

#include <sys/socket.h>

#include <algorithm>

namespace helexa::net::detail {

namespace {

std::chrono::steady_clock::duration clamp_period(std::chrono::milliseconds period) {
    return std::max<std::chrono::steady_clock::duration>(period, std::chrono::milliseconds(1));
}

}  // namespace

DeadlineSocket::DeadlineSocket(const asio::any_io_executor& executor,
                               std::chrono::milliseconds check_period)
    : socket_(executor), timer_(executor), period_(clamp_period(check_period)) {}

DeadlineSocket::DeadlineSocket(tcp::socket socket, const asio::any_io_executor& timer_executor,
                               std::chrono::milliseconds check_period)
    : socket_(std::move(socket)), timer_(timer_executor), period_(clamp_period(check_period)) {
    error_code ec;
    socket_.non_blocking(true, ec);
}

DeadlineSocket::~DeadlineSocket() {
    error_code ec;
    socket_.close(ec);
}

error_code DeadlineSocket::open(const tcp& protocol) {
    std::lock_guard lock(mutex_);
    error_code ec;
    if (socket_.is_open()) {
        socket_.close(ec);
    }
    ec = {};
    socket_.open(protocol, ec);
    if (!ec) {
        socket_.non_blocking(true, ec);
    }
    closed_ = false;
    aborted_.store(Abort::kNone, std::memory_order_release);
    return ec;
}

void DeadlineSocket::set_deadline(Clock::time_point at) {
    std::lock_guard lock(mutex_);
    deadline_ = at;
    if (closed_) {
        return;
    }
    // Normally the armed expiry (at most one period from when it was armed) is already earlier
    // than any deadline set since: nothing to do. A shorter timeout than the period re-arms.
    if (at < armed_at_) {
        arm_locked(std::min<Clock::time_point>(at, Clock::now() + period_));
    }
}

void DeadlineSocket::clear_deadline() {
    std::lock_guard lock(mutex_);
    deadline_ = Clock::time_point::max();
}

void DeadlineSocket::arm_locked(Clock::time_point at) {
    uint64_t generation = ++generation_;
    armed_at_ = at;
    timer_.expires_at(at);  // cancels a pending wait; its handler sees a stale generation
    timer_.async_wait([self = shared_from_this(), generation](const error_code& ec) {
        self->on_timer(ec, generation);
    });
}

void DeadlineSocket::on_timer(const error_code& ec, uint64_t generation) {
    std::lock_guard lock(mutex_);
    if (generation != generation_ || closed_) {
        return;  // re-armed or closed since: a newer wait (or none) is in charge
    }
    armed_at_ = Clock::time_point::max();
    if (ec == asio::error::operation_aborted) {
        return;
    }
    if (deadline_ == Clock::time_point::max()) {
        return;  // nothing in flight: stay unarmed until the next deadline is set
    }
    auto now = Clock::now();
    if (deadline_ <= now) {
        deadline_ = Clock::time_point::max();
        abort_locked(Abort::kTimeout);
        return;
    }
    arm_locked(std::min<Clock::time_point>(deadline_, now + period_));
}

void DeadlineSocket::abort(Abort why) {
    std::lock_guard lock(mutex_);
    abort_locked(why);
}

void DeadlineSocket::abort_locked(Abort why) {
    if (closed_ || !socket_.is_open()) {
        return;
    }
    Abort expected = Abort::kNone;
    aborted_.compare_exchange_strong(expected, why, std::memory_order_acq_rel);
    // NOTE: ::shutdown rather than socket_.cancel(): it is safe while the owner is inside an
    // Asio call on another thread, wakes the pending operation through the reactor (EPOLLHUP),
    // and fails operations started after it too, so a timeout can never be missed by an
    // operation that began just after the check.
    ::shutdown(socket_.native_handle(), SHUT_RDWR);
}

void DeadlineSocket::close() {
    std::lock_guard lock(mutex_);
    if (closed_) {
        return;
    }
    closed_ = true;
    deadline_ = Clock::time_point::max();
    armed_at_ = Clock::time_point::max();
    ++generation_;
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    timer_.cancel();
}

asio::awaitable<error_code> write_all(DeadlineSocket& s,
                                      std::span<const asio::const_buffer> buffers,
                                      std::chrono::milliseconds timeout) {
    const size_t total = asio::buffer_size(buffers);
    if (total == 0) {
        co_return error_code{};
    }
    if (s.aborted() != Abort::kNone) {
        co_return error_code(asio::error::operation_aborted);
    }
    error_code ec;
    size_t n = s.socket().write_some(buffers, ec);
    if (!ec && n == total) {
        co_return error_code{};
    }
    if (ec && ec != asio::error::would_block && ec != asio::error::try_again) {
        co_return ec;
    }
    if (ec) {
        n = 0;
    }
    beast::buffers_suffix<std::span<const asio::const_buffer>> rest(buffers);
    rest.consume(n);
    s.set_deadline_after(timeout);
    auto [wec, wn] = co_await asio::async_write(s.socket(), rest, kTuple);
    s.clear_deadline();
    co_return wec;
}

asio::awaitable<std::pair<error_code, size_t>> read_into(
    DeadlineSocket& s, beast::flat_buffer& buffer, size_t max_bytes,
    std::chrono::steady_clock::time_point deadline) {
    if (s.aborted() != Abort::kNone) {
        co_return std::pair<error_code, size_t>(asio::error::operation_aborted, 0);
    }
    auto space = buffer.prepare(max_bytes);
    s.set_deadline(deadline);
    auto [ec, n] = co_await s.socket().async_read_some(space, kTuple);
    s.clear_deadline();
    buffer.commit(n);
    co_return std::pair<error_code, size_t>(ec, n);
}

}  // namespace helexa::net::detail
