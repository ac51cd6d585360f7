// A TCP socket with one watchdog timer per connection that enforces a deadline on whatever
// operation is in flight, plus the read/write helpers the server and the client share.
//
// Why: Beast's tcp_stream arms and cancels a timer around every socket operation
// (expires_after / expires_never), and each arm of the earliest timer is a timerfd_settime
// syscall; on the proxy path that was 6 syscalls per request. Here setting a deadline only stores
// a time point under a mutex. The timer is armed at most once per `check_period` (the shortest
// timeout the owner uses), so a new deadline is almost never earlier than the armed expiry; when
// it fires early it re-arms for the stored deadline. Only a deadline earlier than the armed
// expiry (a per-request timeout shorter than the period) re-arms at once.
//
// On expiry (or abort()) the socket is shut down in both directions: every operation in flight or
// started later fails (EOF, EPIPE), which makes the abort sticky without touching Asio's socket
// state from the timer's thread. The owner then asks aborted() to tell a timeout from a
// cancellation from a genuine I/O error. Connections that time out are never reused.
//
// Threads: one owner runs operations on socket() at a time (a coroutine); set_deadline,
// clear_deadline, close and open are for the owner. abort() and the timer may run on any thread:
// they only shut the descriptor down, under the mutex that close() also takes, so a descriptor
// number is never shut down after it was closed (and possibly reused).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

namespace helexa::net::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using boost::system::error_code;

inline constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

enum class Abort : uint8_t { kNone, kTimeout, kCancelled };

class DeadlineSocket : public std::enable_shared_from_this<DeadlineSocket> {
public:
    using Clock = std::chrono::steady_clock;

    // A closed socket (client side: open() before connecting).
    DeadlineSocket(const asio::any_io_executor& executor, std::chrono::milliseconds check_period);
    // An accepted, open socket (server side); the timer runs on `timer_executor` (the strand).
    DeadlineSocket(tcp::socket socket, const asio::any_io_executor& timer_executor,
                   std::chrono::milliseconds check_period);
    ~DeadlineSocket();
    DeadlineSocket(const DeadlineSocket&) = delete;
    DeadlineSocket& operator=(const DeadlineSocket&) = delete;

    tcp::socket& socket() { return socket_; }

    // Opens a fresh socket (closing any previous one) in non-blocking mode; clears abort state.
    error_code open(const tcp& protocol);

    // The current operation must finish by `at` / within `timeout`; otherwise the socket is shut
    // down and aborted() reports kTimeout.
    void set_deadline(Clock::time_point at);
    void set_deadline_after(std::chrono::milliseconds timeout) {
        set_deadline(Clock::now() + timeout);
    }
    // No deadline (between operations, while the owner is busy elsewhere).
    void clear_deadline();

    // Any thread: fail whatever is in flight (and every later operation) with `why`.
    void abort(Abort why);
    Abort aborted() const { return aborted_.load(std::memory_order_acquire); }

    // Closes the descriptor and stops the timer. Idempotent.
    void close();
    bool is_open() const { return socket_.is_open(); }

private:
    void arm_locked(Clock::time_point at);
    void on_timer(const error_code& ec, uint64_t generation);
    void abort_locked(Abort why);

    tcp::socket socket_;
    asio::steady_timer timer_;
    const Clock::duration period_;
    std::mutex mutex_;
    Clock::time_point deadline_ = Clock::time_point::max();    // guarded by mutex_
    Clock::time_point armed_at_ = Clock::time_point::max();    // guarded by mutex_
    uint64_t generation_ = 0;                                  // guarded by mutex_
    bool closed_ = false;                                      // guarded by mutex_
    std::atomic<Abort> aborted_{Abort::kNone};
};

// Writes all of `buffers` within `timeout`: first a non-blocking send (on loopback and with an
// empty send buffer it nearly always takes everything, with no reactor round trip), then
// asynchronously for the rest. The socket must be in non-blocking mode.
// NOTE: not a template: GCC 12 emitted a stray ud2 in a templated coroutine calling this.
asio::awaitable<error_code> write_all(DeadlineSocket& s,
                                      std::span<const asio::const_buffer> buffers,
                                      std::chrono::milliseconds timeout);

// One read of at most `max_bytes` into `buffer`, failing (aborted() == kTimeout) at `deadline`.
asio::awaitable<std::pair<error_code, size_t>> read_into(
    DeadlineSocket& s, beast::flat_buffer& buffer, size_t max_bytes,
    std::chrono::steady_clock::time_point deadline);

// Feeds `parser` from `buffer`, reading from the socket only when the buffered bytes are not
// enough, until `done(parser)` holds or an error; `deadline` bounds the whole call. Parsing what is already buffered costs no I/O
// and no reactor round trip (Beast's async_read_some posts even then). EOF maps like Beast:
// end_of_stream before any byte, otherwise put_eof (partial_message if incomplete).
// http::error::need_buffer (a full buffer_body) is returned to the caller.
// `enough_before_read` (optional) ends the call instead of reading more once the buffered bytes
// are used up (a body piece is ready even though the next chunk's framing is incomplete).
template <bool isRequest, typename Done, typename Enough>
asio::awaitable<error_code> parse_until(DeadlineSocket& s, beast::flat_buffer& buffer,
                                        beast::http::basic_parser<isRequest>& parser,
                                        std::chrono::steady_clock::time_point deadline,
                                        size_t read_size, Done done, Enough enough_before_read) {
    namespace http = beast::http;
    for (;;) {
        if (done(parser)) {
            co_return error_code{};
        }
        if (buffer.size() > 0) {
            error_code ec;
            size_t used = parser.put(buffer.data(), ec);
            buffer.consume(used);
            if (!ec) {
                continue;
            }
            if (ec != http::error::need_more) {
                co_return ec;
            }
        }
        if (enough_before_read(parser)) {
            co_return error_code{};
        }
        auto [ec, n] = co_await read_into(s, buffer, read_size, deadline);
        if (ec == asio::error::eof) {
            if (!parser.got_some()) {
                co_return error_code(http::error::end_of_stream);
            }
            error_code eec;
            parser.put_eof(eec);
            if (eec) {
                co_return eec;
            }
            continue;
        }
        if (ec) {
            co_return ec;
        }
    }
}

template <bool isRequest, typename Done>
asio::awaitable<error_code> parse_until(DeadlineSocket& s, beast::flat_buffer& buffer,
                                        beast::http::basic_parser<isRequest>& parser,
                                        std::chrono::steady_clock::time_point deadline,
                                        size_t read_size, Done done) {
    return parse_until(s, buffer, parser, deadline, read_size, std::move(done),
                       [](const auto&) { return false; });
}

}  // namespace helexa::net::detail
