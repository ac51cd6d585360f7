// The HTTP server: accept loop, one coroutine per connection on its own strand, request parsing
// with deadlines, the middleware chain, complete and streamed responses, client hang-up watch, and
// bounded graceful shutdown.
#include "helexa/net/server.h"

#include <atomic>
#include <future>
#include <map>
#include <mutex>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <fmt/format.h>

#include "helexa/common/logging.h"

namespace helexa::net {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// How long a force-closed connection gets to unwind before shutdown() returns anyway.
constexpr std::chrono::milliseconds kForceGrace{2'000};
// Lingering close: how long to drain unread request bytes so the client sees our answer.
constexpr std::chrono::milliseconds kLingerTime{500};

bool is_hop_by_hop(std::string_view name) {
    return iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding") ||
           iequals(name, "Connection") || iequals(name, "Keep-Alive");
}

std::string endpoint_string(const tcp::endpoint& ep) {
    auto addr = ep.address();
    if (addr.is_v6()) {
        return fmt::format("[{}]:{}", addr.to_string(), ep.port());
    }
    return fmt::format("{}:{}", addr.to_string(), ep.port());
}

}  // namespace

class Connection;

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
    Impl(asio::io_context& io_in, ServerOptions opts, Router r)
        : io(io_in),
          options(std::move(opts)),
          router(std::move(r)),
          log(log::get(options.log_component)),
          acceptor_strand(asio::make_strand(io)),
          acceptor(acceptor_strand),
          empty_bell(io, 1) {}

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
    tcp::acceptor acceptor;
    std::atomic<bool> started{false};
    std::atomic<bool> stopping{false};
    std::atomic<uint16_t> port{0};
    std::string local_address;

    mutable std::mutex mutex;
    std::map<uint64_t, std::shared_ptr<Connection>> connections;
    uint64_t next_id = 0;
    asio::experimental::concurrent_channel<void(error_code)> empty_bell;
};

// One client connection. Every member is touched only on `strand_`.
class Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(std::shared_ptr<Server::Impl> server, tcp::socket socket, std::string remote)
        : server_(std::move(server)),
          strand_(socket.get_executor()),
          stream_(std::move(socket)),
          remote_(std::move(remote)),
          gone_timer_(strand_) {
        gone_timer_.expires_at(asio::steady_timer::time_point::max());
        error_code ec;
        // The hang-up watch peeks without blocking.
        stream_.socket().non_blocking(true, ec);
    }

    asio::any_io_executor strand() const { return strand_; }
    asio::cancellation_signal& cancel_signal() { return cancel_; }

    asio::awaitable<void> run();

    // Graceful: an idle connection closes now, a busy one after its current response.
    void begin_shutdown() {
        stopping_ = true;
        if (!busy_) {
            stream_.cancel();
        }
    }

    // Drain time is over: the client counts as gone, the handler is cancelled, the socket closes.
    void force_close() {
        stopping_ = true;
        mark_gone();
        cancel_.emit(asio::cancellation_type::terminal);
        error_code ec;
        stream_.socket().close(ec);
    }

    // --- used by the writer ---
    bool gone() const { return gone_; }
    void mark_gone() {
        if (gone_) {
            return;
        }
        gone_ = true;
        gone_timer_.cancel();
        auto callbacks = std::move(gone_callbacks_);
        gone_callbacks_.clear();
        for (auto& cb : callbacks) {
            try {
                cb();
            } catch (const std::exception& e) {
                server_->log->warn("client-gone callback threw: {}", e.what());
            }
        }
    }
    void add_gone_callback(std::function<void()> cb) {
        if (gone_) {
            cb();
            return;
        }
        gone_callbacks_.push_back(std::move(cb));
    }
    asio::awaitable<void> wait_gone() {
        if (gone_) {
            co_return;
        }
        co_await gone_timer_.async_wait(kTuple);
    }
    beast::tcp_stream& stream() { return stream_; }
    const ServerOptions& options() const { return server_->options; }
    bool stopping() const { return stopping_; }

private:
    friend class WriterImpl;

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
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::string remote_;
    bool busy_ = false;
    bool stopping_ = false;
    bool gone_ = false;
    asio::steady_timer gone_timer_;
    std::vector<std::function<void()>> gone_callbacks_;
    asio::cancellation_signal cancel_;
    // Hang-up watch: a socket wait_read that is cancelled when the request ends.
    bool watching_ = false;
    uint64_t watch_gen_ = 0;
    asio::cancellation_signal watch_cancel_;
};

// The ResponseWriter a handler gets: writes straight to the connection's stream.
class WriterImpl final : public ResponseWriter {
public:
    WriterImpl(Connection& conn, bool head, bool keep_alive, bool http11)
        : conn_(conn), head_(head), keep_alive_(keep_alive), http11_(http11) {}

    asio::awaitable<bool> start(int status, Headers headers) override {
        if (started_) {
            co_return !conn_.gone();
        }
        started_ = true;
        status_ = status;
        if (conn_.gone()) {
            co_return false;
        }
        bool bodiless = head_ || status == 204 || status == 304 || (status >= 100 && status < 200);
        http::response<http::empty_body> res;
        res.version(11);
        res.result(static_cast<unsigned>(status));
        for (const auto& [k, v] : headers) {
            if (!iequals(k, "Transfer-Encoding") && !iequals(k, "Connection")) {
                res.insert(k, v);
            }
        }
        for (const auto& [k, v] : extra_) {
            if (!headers.contains(k)) {
                res.insert(k, v);
            }
        }
        if (!conn_.options().server_name.empty() && !headers.contains("Server")) {
            res.set(http::field::server, conn_.options().server_name);
        }
        bool has_length = headers.contains("Content-Length");
        chunked_ = !bodiless && !has_length && http11_;
        if (!bodiless && !has_length && !http11_) {
            keep_alive_ = false;  // HTTP/1.0 without a length: the body ends at close
        }
        if (chunked_) {
            res.chunked(true);
        }
        res.keep_alive(keep_alive_ && !conn_.stopping());
        keep_alive_ = res.keep_alive();
        body_allowed_ = !bodiless;
        http::response_serializer<http::empty_body> sr(res);
        conn_.stream().expires_after(conn_.options().write_timeout);
        auto [ec, n] = co_await http::async_write_header(conn_.stream(), sr, kTuple);
        conn_.stream().expires_never();
        if (ec) {
            failed_ = true;
            conn_.mark_gone();
            co_return false;
        }
        co_return true;
    }

    asio::awaitable<bool> write(std::string_view bytes) override {
        if (!started_ || finished_) {
            co_return false;
        }
        if (conn_.gone() || failed_) {
            co_return false;
        }
        if (bytes.empty() || !body_allowed_) {
            co_return true;
        }
        error_code ec;
        conn_.stream().expires_after(conn_.options().write_timeout);
        if (chunked_) {
            std::string size_line = fmt::format("{:x}\r\n", bytes.size());
            std::array<asio::const_buffer, 3> bufs{asio::buffer(size_line),
                                                   asio::buffer(bytes.data(), bytes.size()),
                                                   asio::buffer("\r\n", 2)};
            std::tie(ec, std::ignore) = co_await asio::async_write(conn_.stream(), bufs, kTuple);
        } else {
            std::tie(ec, std::ignore) = co_await asio::async_write(
                conn_.stream(), asio::buffer(bytes.data(), bytes.size()), kTuple);
        }
        conn_.stream().expires_never();
        if (ec) {
            failed_ = true;
            conn_.mark_gone();
            co_return false;
        }
        co_return true;
    }

    asio::awaitable<bool> finish() override {
        if (!started_) {
            co_return false;
        }
        if (finished_) {
            co_return !failed_;
        }
        finished_ = true;
        if (failed_ || conn_.gone()) {
            co_return false;
        }
        if (chunked_) {
            conn_.stream().expires_after(conn_.options().write_timeout);
            auto [ec, n] =
                co_await asio::async_write(conn_.stream(), asio::buffer("0\r\n\r\n", 5), kTuple);
            conn_.stream().expires_never();
            if (ec) {
                failed_ = true;
                conn_.mark_gone();
                co_return false;
            }
        }
        co_return true;
    }

    bool started() const override { return started_; }
    int status() const override { return status_; }
    bool client_gone() const override { return conn_.gone(); }
    asio::awaitable<void> wait_client_gone() override { return conn_.wait_gone(); }
    void on_client_gone(std::function<void()> callback) override {
        conn_.add_gone_callback(std::move(callback));
    }
    Headers& extra_headers() override { return extra_; }

    bool finished() const { return finished_; }
    bool failed() const { return failed_; }
    bool keep_alive() const { return keep_alive_; }

private:
    Connection& conn_;
    bool head_;
    bool keep_alive_;
    bool http11_;
    bool started_ = false;
    bool finished_ = false;
    bool failed_ = false;
    bool chunked_ = false;
    bool body_allowed_ = true;
    int status_ = 0;
    Headers extra_;
};

asio::awaitable<void> Connection::run() {
    try {
        bool first = true;
        for (;;) {
            busy_ = false;
            if (stopping_) {
                break;
            }
            if (buffer_.size() == 0) {
                // Idle (or the first request's first byte): wait for the request to begin.
                stream_.expires_after(first ? options().header_timeout : options().idle_timeout);
                auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(8192), kTuple);
                if (ec) {
                    break;  // closed, idle timeout, or shutdown cancelled the read
                }
                buffer_.commit(n);
            }
            first = false;
            busy_ = true;
            if (!co_await handle_one()) {
                break;
            }
        }
    } catch (const std::exception& e) {
        // Expected when force-closed (cancellation); anything else is a bug worth a line.
        if (!stopping_) {
            server_->log->warn("connection {} ended by exception: {}", remote_, e.what());
        }
    }
    stop_watch();
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
}

// Reads and answers one request. Returns whether the connection stays open.
asio::awaitable<bool> Connection::handle_one() {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options().max_header_bytes));
    parser.body_limit(static_cast<std::uint64_t>(options().max_body_bytes));
    std::optional<Error> reject;  // answered once, below each failing step

    stream_.expires_after(options().header_timeout);
    auto [hec, hn] = co_await http::async_read_header(stream_, buffer_, parser, kTuple);
    if (hec) {
        stream_.expires_never();
        if (hec == http::error::body_limit) {
            reject.emplace(
                Error(ErrorCode::kPayloadTooLarge,
                      fmt::format("request body exceeds the limit of {} bytes",
                                  options().max_body_bytes)));
        } else if (hec == http::error::header_limit) {
            reject.emplace(
                Error(ErrorCode::kInvalidRequest, "request header is too large"));
        } else if (hec == beast::error::timeout || hec == http::error::end_of_stream ||
                   hec == asio::error::eof || hec == asio::error::operation_aborted ||
                   hec == asio::error::connection_reset) {
            // Nothing useful to answer: the client went quiet or away.
        } else {
            reject.emplace(
                Error(ErrorCode::kInvalidRequest, "malformed HTTP request: " + hec.message()));
        }
        if (reject) {
            co_await send_error_and_close(*reject);
        }
        co_return false;
    }

    auto& hdr = parser.get();
    if (auto expect = hdr.find(http::field::expect);
        expect != hdr.end() && iequals(expect->value(), "100-continue") && !parser.is_done()) {
        stream_.expires_after(options().write_timeout);
        auto [cec, cn] = co_await asio::async_write(
            stream_, asio::buffer("HTTP/1.1 100 Continue\r\n\r\n", 25), kTuple);
        if (cec) {
            co_return false;
        }
    }
    stream_.expires_after(options().body_timeout);
    auto [bec, bn] = co_await http::async_read(stream_, buffer_, parser, kTuple);
    stream_.expires_never();
    if (bec) {
        if (bec == http::error::body_limit) {
            reject.emplace(
                Error(ErrorCode::kPayloadTooLarge,
                      fmt::format("request body exceeds the limit of {} bytes",
                                  options().max_body_bytes)));
        } else if (bec == beast::error::timeout || bec == http::error::end_of_stream ||
                   bec == asio::error::eof || bec == asio::error::operation_aborted ||
                   bec == http::error::partial_message || bec == asio::error::connection_reset) {
            // The client stopped sending mid-body.
        } else {
            reject.emplace(
                Error(ErrorCode::kInvalidRequest, "malformed HTTP request: " + bec.message()));
        }
        if (reject) {
            co_await send_error_and_close(*reject);
        }
        co_return false;
    }

    auto msg = parser.release();
    Request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    if (req.target.empty() || req.target.front() != '/') {
        reject.emplace(Error(
            ErrorCode::kInvalidRequest, "request target must be an absolute path: " + req.target));
        co_await send_error_and_close(*reject);
        co_return false;
    }
    auto qpos = req.target.find('?');
    req.path = req.target.substr(0, qpos);
    if (qpos != std::string::npos) {
        req.query_string = req.target.substr(qpos + 1);
        req.query = parse_query(req.query_string);
    }
    for (const auto& field : msg) {
        req.headers.add(std::string(field.name_string()), std::string(field.value()));
    }
    req.body = std::move(msg.body());
    req.remote_address = remote_;
    req.keep_alive = msg.keep_alive();
    bool http11 = msg.version() >= 11;
    bool head = req.method == "HEAD";

    Router::Match match = server_->router.match(req.method, req.path);
    if (match.kind == Router::Match::Kind::kFound) {
        req.route = match.pattern;
        req.path_params = std::move(match.params);
    }

    WriterImpl writer(*this, head, req.keep_alive && !stopping_, http11);
    start_watch();
    Response resp;
    bool threw = false;
    try {
        resp = co_await invoke(req, writer, match, 0);
    } catch (const std::exception& e) {
        threw = true;
        if (!gone_) {
            server_->log->error("handler for {} {} threw: {}", req.method, req.path, e.what());
        }
    } catch (...) {
        threw = true;
        server_->log->error("handler for {} {} threw a non-exception", req.method, req.path);
    }
    stop_watch();
    gone_callbacks_.clear();  // they may reference the handler's frame, which is gone now

    if (writer.started()) {
        if (!writer.finished()) {
            // A handler that threw mid-stream: end the connection so the client sees truncation
            // rather than a clean end.
            if (threw) {
                co_return false;
            }
            co_await writer.finish();
        }
        co_return !writer.failed() && !gone_ && writer.keep_alive() && !stopping_;
    }
    if (gone_) {
        co_return false;
    }
    if (threw) {
        resp = Response::error(Error(ErrorCode::kInternal, "internal error"));
    }
    bool keep = req.keep_alive && !stopping_;
    bool sent = co_await send_response(std::move(resp), head, keep, &writer.extra_headers());
    co_return sent && keep;
}

asio::awaitable<Response> Connection::invoke(Request& req, ResponseWriter& w,
                                             const Router::Match& m, size_t index) {
    const auto& chain = server_->router.middleware();
    if (index < chain.size()) {
        Next next = [this, &req, &w, &m, index]() { return invoke(req, w, m, index + 1); };
        co_return co_await chain[index](req, w, next);
    }
    switch (m.kind) {
        case Router::Match::Kind::kFound:
            co_return co_await (*m.handler)(req, w);
        case Router::Match::Kind::kMethodNotAllowed: {
            Response r = Response::error(Error(
                ErrorCode::kMethodNotAllowed,
                fmt::format("method {} is not allowed on {}", req.method, req.path)));
            std::string allow;
            for (const auto& a : m.allowed) {
                allow += (allow.empty() ? "" : ", ") + a;
            }
            r.headers.set("Allow", allow);
            co_return r;
        }
        case Router::Match::Kind::kNotFound:
            co_return Response::error(Error(
                ErrorCode::kNotFound, fmt::format("Unknown request URL: {} {}", req.method,
                                                  req.path)));
    }
    co_return Response::error(Error(ErrorCode::kInternal, "unreachable routing state"));
}

asio::awaitable<bool> Connection::send_response(Response resp, bool head, bool keep_alive,
                                                const Headers* extra) {
    http::response<http::string_body> res;
    res.version(11);
    res.result(static_cast<unsigned>(resp.status));
    for (const auto& [k, v] : resp.headers) {
        if (!is_hop_by_hop(k)) {
            res.insert(k, v);
        }
    }
    if (extra != nullptr) {
        for (const auto& [k, v] : *extra) {
            if (!resp.headers.contains(k)) {
                res.insert(k, v);
            }
        }
    }
    if (!options().server_name.empty() && !resp.headers.contains("Server")) {
        res.set(http::field::server, options().server_name);
    }
    res.keep_alive(keep_alive);
    bool bodiless = resp.status == 204 || resp.status == 304 || resp.status < 200;
    if (!bodiless) {
        res.content_length(resp.body.size());
        if (!head) {
            res.body() = std::move(resp.body);
        }
    }
    stream_.expires_after(options().write_timeout);
    error_code ec;
    if (head) {
        http::response<http::empty_body> head_res(std::move(res.base()));
        http::response_serializer<http::empty_body> sr(head_res);
        std::tie(ec, std::ignore) = co_await http::async_write_header(stream_, sr, kTuple);
    } else {
        std::tie(ec, std::ignore) = co_await http::async_write(stream_, res, kTuple);
    }
    stream_.expires_never();
    if (ec) {
        mark_gone();
        co_return false;
    }
    co_return true;
}

asio::awaitable<void> Connection::send_error_and_close(const Error& error) {
    // NOTE: no temporaries with destructors inside co_await expressions anywhere in this file:
    // GCC 12 miscompiles some of them (bitwise-copied std::string, stray traps).
    Response resp = Response::error(error);
    bool sent = co_await send_response(std::move(resp), false, false, nullptr);
    if (sent) {
        co_await linger_close();
    }
    co_return;
}

// Half-closes and drains what the client is still sending, so it reads our answer instead of a
// reset (e.g. after a 413 while the body is still arriving).
asio::awaitable<void> Connection::linger_close() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    auto deadline = std::chrono::steady_clock::now() + kLingerTime;
    std::array<char, 16384> sink{};
    size_t drained = 0;
    while (drained < (4u << 20) && std::chrono::steady_clock::now() < deadline) {
        stream_.expires_at(deadline);
        auto [rec, n] = co_await stream_.async_read_some(asio::buffer(sink), kTuple);
        if (rec) {
            break;
        }
        drained += n;
    }
    stream_.expires_never();
}

void Connection::start_watch() {
    if (gone_ || watching_) {
        return;
    }
    watching_ = true;
    uint64_t gen = ++watch_gen_;
    auto self = shared_from_this();
    // The handler runs on the socket's executor, i.e. this connection's strand.
    stream_.socket().async_wait(
        tcp::socket::wait_read,
        asio::bind_cancellation_slot(watch_cancel_.slot(), [self, gen](error_code ec) {
            if (gen != self->watch_gen_ || !self->watching_) {
                return;  // a stale completion from an earlier request's watch
            }
            self->watching_ = false;
            if (ec == asio::error::operation_aborted) {
                return;
            }
            if (ec) {
                self->mark_gone();
                return;
            }
            char probe = 0;
            error_code pec;
            size_t n = self->stream_.socket().receive(asio::buffer(&probe, 1),
                                                      tcp::socket::message_peek, pec);
            if (pec == asio::error::would_block || pec == asio::error::try_again) {
                self->start_watch();  // spurious wake-up
            } else if (pec || n == 0) {
                self->mark_gone();  // EOF or reset: the client hung up
            }
            // n > 0: the client sent more (a pipelined request): it is alive; stop watching.
        }));
}

void Connection::stop_watch() {
    if (watching_) {
        watching_ = false;
        watch_cancel_.emit(asio::cancellation_type::terminal);
    }
}

// ---------------------------------------------------------------------------------------------
// Server::Impl

asio::awaitable<void> Server::Impl::accept_loop() {
    auto self = shared_from_this();
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(io), kTuple);
        if (stopping.load()) {
            break;
        }
        if (ec) {
            if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
                break;
            }
            log->warn("accept failed: {}", ec.message());
            // Out of descriptors and the like: back off instead of spinning.
            asio::steady_timer backoff(acceptor_strand, std::chrono::milliseconds(50));
            co_await backoff.async_wait(kTuple);
            continue;
        }
        error_code eec;
        auto ep = socket.remote_endpoint(eec);
        std::string remote = eec ? std::string("unknown") : endpoint_string(ep);
        socket.set_option(tcp::no_delay(true), eec);
        auto conn = std::make_shared<Connection>(self, std::move(socket), std::move(remote));
        uint64_t id = 0;
        {
            std::lock_guard lock(mutex);
            id = next_id++;
        }
        register_connection(id, conn);
        asio::co_spawn(conn->strand(), conn->run(),
                       asio::bind_cancellation_slot(conn->cancel_signal().slot(),
                                                    [self, id, conn](std::exception_ptr) {
                                                        self->unregister_connection(id);
                                                    }));
    }
}

void Server::Impl::register_connection(uint64_t id, std::shared_ptr<Connection> conn) {
    std::lock_guard lock(mutex);
    connections.emplace(id, std::move(conn));
}

void Server::Impl::unregister_connection(uint64_t id) {
    bool now_empty = false;
    {
        std::lock_guard lock(mutex);
        connections.erase(id);
        now_empty = connections.empty();
    }
    if (now_empty) {
        (void)empty_bell.try_send(error_code{});
    }
}

std::vector<std::shared_ptr<Connection>> Server::Impl::snapshot() const {
    std::lock_guard lock(mutex);
    std::vector<std::shared_ptr<Connection>> out;
    for (const auto& [id, c] : connections) {
        out.push_back(c);
    }
    return out;
}

asio::awaitable<bool> Server::Impl::wait_empty(std::chrono::steady_clock::time_point deadline) {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        {
            std::lock_guard lock(mutex);
            if (connections.empty()) {
                co_return true;
            }
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            co_return false;
        }
        timer.expires_at(deadline);
        co_await (empty_bell.async_receive(kTuple) || timer.async_wait(kTuple));
    }
}

void Server::Impl::close_acceptor() {
    auto self = shared_from_this();
    asio::dispatch(acceptor_strand, [self] {
        error_code ec;
        self->acceptor.close(ec);
    });
}

void Server::Impl::force_close_all() {
    for (auto& conn : snapshot()) {
        asio::dispatch(conn->strand(), [conn] { conn->force_close(); });
    }
}

// ---------------------------------------------------------------------------------------------
// Server

Server::Server(asio::io_context& io, ServerOptions options, Router router)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(router))) {}

Server::~Server() {
    if (impl_->started.load() && !impl_->stopping.exchange(true)) {
        impl_->close_acceptor();
        impl_->force_close_all();
    }
}

Status Server::start() {
    if (impl_->started.exchange(true)) {
        return fail(ErrorCode::kConfig, "server already started");
    }
    const std::string& listen = impl_->options.listen;
    auto colon = listen.rfind(':');
    if (colon == std::string::npos || colon + 1 == listen.size()) {
        return fail(ErrorCode::kConfig, "listen address must be host:port, got '" + listen + "'");
    }
    std::string host = listen.substr(0, colon);
    std::string port_text = listen.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    unsigned long port_num = 0;
    try {
        size_t used = 0;
        port_num = std::stoul(port_text, &used);
        if (used != port_text.size() || port_num > 65535) {
            throw std::out_of_range("port");
        }
    } catch (const std::exception&) {
        return fail(ErrorCode::kConfig, "bad port in listen address '" + listen + "'");
    }
    error_code ec;
    tcp::endpoint endpoint;
    auto addr = asio::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
    if (!ec) {
        endpoint = tcp::endpoint(addr, static_cast<uint16_t>(port_num));
    } else {
        // A host name (e.g. localhost): resolve once, synchronously, at start-up.
        tcp::resolver resolver(impl_->io);
        auto results = resolver.resolve(host, port_text, ec);
        if (ec || results.empty()) {
            return fail(ErrorCode::kConfig, "cannot resolve listen host '" + host + "': " +
                                                (ec ? ec.message() : "no addresses"));
        }
        endpoint = results.begin()->endpoint();
    }
    auto& acc = impl_->acceptor;
    acc.open(endpoint.protocol(), ec);
    if (!ec) {
        acc.set_option(asio::socket_base::reuse_address(true), ec);
    }
    if (!ec) {
        acc.bind(endpoint, ec);
    }
    if (!ec) {
        acc.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        error_code ignored;
        acc.close(ignored);
        return fail(ErrorCode::kIo, "cannot listen on " + listen + ": " + ec.message());
    }
    auto bound = acc.local_endpoint(ec);
    impl_->port.store(bound.port());
    impl_->local_address = endpoint_string(bound);
    impl_->log->info("listening on {}", impl_->local_address);
    asio::co_spawn(impl_->acceptor_strand, impl_->accept_loop(), asio::detached);
    return ok();
}

uint16_t Server::port() const {
    return impl_->port.load();
}

std::string Server::local_address() const {
    return impl_->local_address;
}

size_t Server::connection_count() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->connections.size();
}

asio::awaitable<void> Server::shutdown() {
    auto impl = impl_;
    if (!impl->started.load()) {
        co_return;
    }
    bool first = !impl->stopping.exchange(true);
    if (first) {
        impl->close_acceptor();
        for (auto& conn : impl->snapshot()) {
            asio::dispatch(conn->strand(), [conn] { conn->begin_shutdown(); });
        }
    }
    auto deadline = std::chrono::steady_clock::now() + impl->options.drain_timeout;
    bool drained = co_await impl->wait_empty(deadline);
    if (drained) {
        impl->log->info("server drained");
        co_return;
    }
    impl->log->warn("drain time over with {} connection(s) open: cancelling them",
                    impl->snapshot().size());
    impl->force_close_all();
    auto grace_deadline = std::chrono::steady_clock::now() + kForceGrace;
    bool unwound = co_await impl->wait_empty(grace_deadline);
    if (!unwound) {
        impl->log->warn("{} connection(s) did not unwind after cancellation",
                        impl->snapshot().size());
    }
}

void Server::stop() {
    std::promise<void> done;
    auto future = done.get_future();
    asio::co_spawn(impl_->io, shutdown(), [&done](std::exception_ptr) { done.set_value(); });
    future.wait();
}

}  // namespace helexa::net
