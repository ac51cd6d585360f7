// Server internals shared by server.cpp (accept loop, shutdown) and connection.cpp (one client
// connection: request parsing, the middleware chain, responses, the hang-up watch).
// Threads: Server::Impl is shared by all connections (mutex for the connection table); every
// member of a Connection is touched only on its strand, except through DeadlineSocket's
// thread-safe abort/timer.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <spdlog/logger.h>

#include "helexa/net/server.h"
#include "internal/deadline_socket.h"

namespace helexa::net {

class Connection;

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
    Impl(asio::io_context& io_in, ServerOptions opts, Router r);

    asio::awaitable<void> accept_loop();
    void register_connection(uint64_t id, std::shared_ptr<Connection> conn);
    void unregister_connection(uint64_t id);
    std::vector<std::shared_ptr<Connection>> snapshot() const;
    asio::awaitable<bool> wait_empty(std::chrono::steady_clock::time_point deadline);
    void close_acceptor();
    void force_close_all();

    asio::io_context& io;
    ServerOptions options;
    Router router;
    std::shared_ptr<spdlog::logger> log;
    asio::strand<asio::io_context::executor_type> acceptor_strand;
    asio::ip::tcp::acceptor acceptor;
    std::atomic<bool> started{false};
    std::atomic<bool> stopping{false};
    std::atomic<uint16_t> port{0};
    std::string local_address;
    // The watchdog period of every connection: the shortest of the server's timeouts.
    std::chrono::milliseconds check_period{};

    mutable std::mutex mutex;
    std::map<uint64_t, std::shared_ptr<Connection>> connections;
    uint64_t next_id = 0;
    asio::experimental::concurrent_channel<void(boost::system::error_code)> empty_bell;
};

// One client connection. Every member is touched only on `strand_`.
class Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(std::shared_ptr<Server::Impl> server, asio::ip::tcp::socket socket,
               std::string remote);
    // Stops the watchdog (whose pending wait would keep the socket open for up to a period).
    ~Connection() { sock_->close(); }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    asio::any_io_executor strand() const { return strand_; }
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

    std::shared_ptr<Server::Impl> server_;
    asio::any_io_executor strand_;
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
    // Hang-up watch: a socket wait_read that is cancelled when the request ends.
    bool watching_ = false;
    uint64_t watch_gen_ = 0;
    asio::cancellation_signal watch_cancel_;
};

}  // namespace helexa::net
