// Server internals shared by server.cpp (accept loop, shutdown) and connection.cpp (one client
// connection: request parsing, the middleware chain, responses, the hang-up watch).
// Threads: Server::Impl is shared by all connections, which live on different contexts of the
// IoPool (mutex for the connection table); every member of a Connection is touched only on its
// context's thread, except through DeadlineSocket's thread-safe abort/timer.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <spdlog/logger.h>

#include "helexa/net/server.h"
#include "internal/deadline_socket.h"

namespace helexa::net {

class Connection;

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
    Impl(IoPool& pool_in, ServerOptions opts, Router r);

    asio::awaitable<void> accept_loop();
    void register_connection(uint64_t id, std::shared_ptr<Connection> conn);
    void unregister_connection(uint64_t id);
    std::vector<std::shared_ptr<Connection>> snapshot() const;
    asio::awaitable<bool> wait_empty(std::chrono::steady_clock::time_point deadline);
    void close_acceptor();
    void force_close_all();

    IoPool& pool;
    asio::io_context& io;  // pool.context(): the acceptor and shutdown run here
    ServerOptions options;
    Router router;
    std::shared_ptr<spdlog::logger> log;
    asio::ip::tcp::acceptor acceptor;
    size_t next_context = 0;  // round-robin cursor, touched only by the accept loop
    std::atomic<bool> started{false};
    std::atomic<bool> stopping{false};
    std::atomic<uint16_t> port{0};
    std::string local_address;
    // The watchdog period of every connection: the shortest of the server's timeouts.
    std::chrono::milliseconds check_period{};

    mutable std::mutex mutex;
    // Not owning: each connection is owned by its coroutine (whose completion unregisters it).
    // Owning here would make a cycle (connections hold the Impl) and leak both when a context is
    // torn down with connections still on it.
    std::map<uint64_t, std::weak_ptr<Connection>> connections;
    uint64_t next_id = 0;
    asio::experimental::concurrent_channel<void(boost::system::error_code)> empty_bell;
};

// One client connection. Every member is touched only on its context's thread (`executor_`).
class Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(std::shared_ptr<Server::Impl> server, asio::ip::tcp::socket socket,
               std::string remote);
    // Stops the watchdog (whose pending wait would keep the socket open for up to a period).
    ~Connection() { sock_->close(); }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // The executor of the context this connection lives on (one thread).
    asio::any_io_executor executor() const { return executor_; }
    asio::cancellation_signal& cancel_signal() { return cancel_; }

    asio::awaitable<void> run();

    // Graceful: an idle connection closes now, a busy one after its current response.
    void begin_shutdown();
    // Drain time is over: the client counts as gone, the handler is cancelled, the socket closes.
    void force_close();

    // --- used by the writer ---
    bool gone() const { return gone_; }
    void mark_gone();
    void add_gone_callback(std::function<void()> cb);
    asio::awaitable<void> wait_gone();
    // Starts the hang-up watch for the current request if it is not running (lazily: only
    // handlers that ask about hang-ups pay for the extra reactor registration).
    void ensure_watch();
    detail::DeadlineSocket& sock() { return *sock_; }
    const ServerOptions& options() const { return server_->options; }
    bool stopping() const { return stopping_; }
    // Writes `buffers` within write_timeout; false (and the client counts as gone) on failure.
    asio::awaitable<bool> send(std::span<const asio::const_buffer> buffers);
    // Reused for response heads (no allocation per response once grown).
    std::string& head_buffer() { return head_; }

private:
    asio::awaitable<bool> handle_one();
    asio::awaitable<Response> invoke(Request& req, ResponseWriter& w, const Router::Match& m,
                                     size_t index);
    asio::awaitable<bool> send_response(Response resp, bool head, bool keep_alive,
                                        const Headers* extra);
    asio::awaitable<void> send_error_and_close(const Error& error);
    asio::awaitable<void> linger_close();
    void start_watch();
    void stop_watch();
    // The read ahead (see start_watch): started during a request, adopted by the idle read.
    void start_read_ahead();
    struct AheadWait;
    void on_read_ahead(const boost::system::error_code& ec, size_t n, AheadWait& wait);
    asio::awaitable<std::pair<boost::system::error_code, size_t>> adopt_read_ahead(
        std::chrono::steady_clock::time_point deadline);

    std::shared_ptr<Server::Impl> server_;
    asio::any_io_executor executor_;
    std::shared_ptr<detail::DeadlineSocket> sock_;
    boost::beast::flat_buffer buffer_;
    std::string head_;
    std::string remote_;
    bool busy_ = false;
    bool stopping_ = false;
    bool gone_ = false;
    bool in_request_ = false;  // between the request's parse and the end of its handler
    asio::steady_timer gone_timer_;
    std::vector<std::function<void()>> gone_callbacks_;
    asio::cancellation_signal cancel_;
    // Hang-up watch: the next read from the client, started while the handler runs (a "read
    // ahead" into buffer_). EOF or an error means the client hung up; bytes mean it is alive (a
    // pipelined request). The read is not cancelled when the request ends: the connection loop
    // adopts it as the wait for the next request, so a watched request costs no reactor
    // re-registration (epoll_ctl) and no cancelled operation. While it is in flight nothing
    // else may touch buffer_ (its storage is the read's target).
    bool watching_ = false;
    bool ahead_pending_ = false;  // the read ahead is in flight
    bool ahead_done_ = false;     // it completed and the loop has not adopted it yet
    boost::system::error_code ahead_ec_;
    size_t ahead_n_ = 0;
    // Where the loop parks while the read ahead is in flight. Owned by the read's completion
    // handler only (never by this object): the parked handler owns the loop's coroutine, which
    // owns this connection, so holding it here would leak the connection if the context were
    // destroyed with the read still pending.
    std::weak_ptr<AheadWait> ahead_wait_;
};

}  // namespace helexa::net
