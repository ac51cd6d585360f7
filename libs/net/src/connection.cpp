// One server connection: request parsing with deadlines (one watchdog timer per connection), the
// middleware chain, complete and streamed responses written as gather writes of a hand-built
// head plus body, and the client hang-up watch.
#include <array>
#include <optional>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <fmt/format.h>

#include "internal/http_format.h"
#include "internal/server_impl.h"

namespace helexa::net {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using detail::kTuple;

namespace {

// Lingering close: how long to drain unread request bytes so the client sees our answer.
constexpr std::chrono::milliseconds kLingerTime{500};
// Read sizes: a request head rarely exceeds a few KiB; bodies are read in bigger pieces.
constexpr size_t kHeadReadSize = 8 * 1024;
constexpr size_t kBodyReadSize = 16 * 1024;

using Clock = std::chrono::steady_clock;

bool is_hop_by_hop(std::string_view name) {
    return iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding") ||
           iequals(name, "Connection") || iequals(name, "Keep-Alive");
}

bool bodiless_status(int status) {
    return status == 204 || status == 304 || (status >= 100 && status < 200);
}

}  // namespace

Connection::Connection(std::shared_ptr<Server::Impl> server, tcp::socket socket,
                       std::string remote)
    : server_(std::move(server)),
      executor_(socket.get_executor()),
      remote_(std::move(remote)),
      gone_timer_(executor_) {
    sock_ = std::make_shared<detail::DeadlineSocket>(std::move(socket), executor_,
                                                     server_->check_period);
    gone_timer_.expires_at(asio::steady_timer::time_point::max());
}

void Connection::begin_shutdown() {
    stopping_ = true;
    if (!busy_) {
        error_code ec;
        sock_->socket().cancel(ec);  // on our thread: the idle read is this coroutine's
    }
}

void Connection::force_close() {
    stopping_ = true;
    mark_gone();
    cancel_.emit(asio::cancellation_type::terminal);
    sock_->close();
}

void Connection::mark_gone() {
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

void Connection::add_gone_callback(std::function<void()> cb) {
    if (gone_) {
        cb();
        return;
    }
    gone_callbacks_.push_back(std::move(cb));
    ensure_watch();
}

asio::awaitable<bool> Connection::send(std::span<const asio::const_buffer> buffers) {
    auto ec = co_await detail::write_all(*sock_, buffers, options().write_timeout);
    if (ec) {
        mark_gone();
        co_return false;
    }
    co_return true;
}

asio::awaitable<void> Connection::wait_gone() {
    ensure_watch();
    if (gone_) {
        co_return;
    }
    co_await gone_timer_.async_wait(kTuple);
}

void Connection::ensure_watch() {
    if (in_request_) {
        start_watch();
    }
}

// The ResponseWriter a handler gets: writes straight to the connection's socket.
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
        bool bodiless = head_ || bodiless_status(status);
        bool has_length = headers.contains("Content-Length");
        chunked_ = !bodiless && !has_length && http11_;
        if (!bodiless && !has_length && !http11_) {
            keep_alive_ = false;  // HTTP/1.0 without a length: the body ends at close
        }
        keep_alive_ = keep_alive_ && !conn_.stopping();
        body_allowed_ = !bodiless;
        std::string& out = conn_.head_buffer();
        out.clear();
        detail::append_status_line(out, status);
        for (const auto& [k, v] : headers) {
            if (!iequals(k, "Transfer-Encoding") && !iequals(k, "Connection")) {
                detail::append_field(out, k, v);
            }
        }
        for (const auto& [k, v] : extra_) {
            if (!headers.contains(k)) {
                detail::append_field(out, k, v);
            }
        }
        if (!conn_.options().server_name.empty() && !headers.contains("Server")) {
            detail::append_field(out, "Server", conn_.options().server_name);
        }
        if (chunked_) {
            out.append("Transfer-Encoding: chunked\r\n");
        }
        if (!keep_alive_) {
            out.append("Connection: close\r\n");
        }
        out.append(detail::kCrlf);
        const asio::const_buffer head_bytes = asio::buffer(out);
        if (!co_await conn_.send({&head_bytes, 1})) {
            failed_ = true;
            co_return false;
        }
        co_return true;
    }

    asio::awaitable<bool> write(std::string_view bytes) override {
        if (!writable()) {
            co_return false;
        }
        if (bytes.empty() || !body_allowed_) {
            co_return true;
        }
        if (!chunked_) {
            const asio::const_buffer raw = asio::buffer(bytes.data(), bytes.size());
            co_return co_await send({&raw, 1});
        }
        std::string size_line;
        detail::append_chunk_size(size_line, bytes.size());
        std::array<asio::const_buffer, 3> bufs{asio::buffer(size_line),
                                               asio::buffer(bytes.data(), bytes.size()),
                                               asio::buffer(detail::kCrlf.data(), 2)};
        co_return co_await send(bufs);
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
            const asio::const_buffer last =
                asio::buffer(detail::kLastChunk.data(), detail::kLastChunk.size());
            co_return co_await send({&last, 1});
        }
        co_return true;
    }

    // The last piece and the terminating chunk in one write (one syscall instead of two).
    asio::awaitable<bool> write_and_finish(std::string_view bytes) override {
        if (!writable()) {
            co_return co_await finish();
        }
        if (bytes.empty() || !body_allowed_ || !chunked_) {
            bool ok = co_await write(bytes);
            bool fin = co_await finish();
            co_return ok && fin;
        }
        finished_ = true;
        std::string size_line;
        detail::append_chunk_size(size_line, bytes.size());
        std::array<asio::const_buffer, 4> bufs{
            asio::buffer(size_line), asio::buffer(bytes.data(), bytes.size()),
            asio::buffer(detail::kCrlf.data(), 2),
            asio::buffer(detail::kLastChunk.data(), detail::kLastChunk.size())};
        co_return co_await send(bufs);
    }

    bool started() const override { return started_; }
    int status() const override { return status_; }
    bool client_gone() const override {
        conn_.ensure_watch();
        return conn_.gone();
    }
    asio::awaitable<void> wait_client_gone() override { return conn_.wait_gone(); }
    void on_client_gone(std::function<void()> callback) override {
        conn_.add_gone_callback(std::move(callback));
    }
    Headers& extra_headers() override { return extra_; }

    bool finished() const { return finished_; }
    bool failed() const { return failed_; }
    bool keep_alive() const { return keep_alive_; }

private:
    bool writable() const { return started_ && !finished_ && !conn_.gone() && !failed_; }

    asio::awaitable<bool> send(std::span<const asio::const_buffer> bufs) {
        bool ok = co_await conn_.send(bufs);
        if (!ok) {
            failed_ = true;
        }
        co_return ok;
    }

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
            auto wait = first ? options().header_timeout : options().idle_timeout;
            if (ahead_pending_ || ahead_done_) {
                // The hang-up watch of the last request already reads the next one.
                auto [ec, n] = co_await adopt_read_ahead(Clock::now() + wait);
                if (ec || n == 0) {
                    break;  // closed, idle timeout, or shutdown cancelled the read
                }
            } else if (buffer_.size() == 0) {
                // Idle (or the first request's first byte): wait for the request to begin.
                auto [ec, n] =
                    co_await detail::read_into(*sock_, buffer_, kHeadReadSize, Clock::now() + wait);
                if (ec || n == 0) {
                    break;  // closed, idle timeout, or shutdown cancelled the read
                }
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
    sock_->close();
}

// Reads and answers one request. Returns whether the connection stays open.
asio::awaitable<bool> Connection::handle_one() {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options().max_header_bytes));
    parser.body_limit(static_cast<std::uint64_t>(options().max_body_bytes));
    std::optional<Error> reject;  // answered once, below each failing step

    auto hec = co_await detail::parse_until(
        *sock_, buffer_, parser, Clock::now() + options().header_timeout, kHeadReadSize,
        [](const auto& p) { return p.is_header_done(); });
    if (hec) {
        if (sock_->aborted() != detail::Abort::kNone) {
            // Header deadline: nothing useful to answer.
        } else if (hec == http::error::body_limit) {
            reject.emplace(
                Error(ErrorCode::kPayloadTooLarge,
                      fmt::format("request body exceeds the limit of {} bytes",
                                  options().max_body_bytes)));
        } else if (hec == http::error::header_limit) {
            reject.emplace(Error(ErrorCode::kInvalidRequest, "request header is too large"));
        } else if (hec == http::error::end_of_stream || hec == asio::error::eof ||
                   hec == asio::error::operation_aborted ||
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
        constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        const asio::const_buffer cont = asio::buffer(kContinue.data(), kContinue.size());
        auto cec = co_await detail::write_all(*sock_, {&cont, 1}, options().write_timeout);
        if (cec) {
            co_return false;
        }
    }
    auto bec = co_await detail::parse_until(*sock_, buffer_, parser,
                                            Clock::now() + options().body_timeout, kBodyReadSize,
                                            [](const auto& p) { return p.is_done(); });
    if (bec) {
        if (sock_->aborted() != detail::Abort::kNone) {
            // The client stopped sending mid-body (body deadline).
        } else if (bec == http::error::body_limit) {
            reject.emplace(
                Error(ErrorCode::kPayloadTooLarge,
                      fmt::format("request body exceeds the limit of {} bytes",
                                  options().max_body_bytes)));
        } else if (bec == http::error::end_of_stream || bec == asio::error::eof ||
                   bec == asio::error::operation_aborted ||
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
    in_request_ = true;
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
    in_request_ = false;
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

// Head and body leave in one gather write.
asio::awaitable<bool> Connection::send_response(Response resp, bool head, bool keep_alive,
                                                const Headers* extra) {
    std::string& out = head_;
    out.clear();
    detail::append_status_line(out, resp.status);
    for (const auto& [k, v] : resp.headers) {
        if (!is_hop_by_hop(k)) {
            detail::append_field(out, k, v);
        }
    }
    if (extra != nullptr) {
        for (const auto& [k, v] : *extra) {
            if (!resp.headers.contains(k)) {
                detail::append_field(out, k, v);
            }
        }
    }
    if (!options().server_name.empty() && !resp.headers.contains("Server")) {
        detail::append_field(out, "Server", options().server_name);
    }
    if (!keep_alive) {
        out.append("Connection: close\r\n");
    }
    bool bodiless = bodiless_status(resp.status);
    if (!bodiless) {
        out.append("Content-Length: ");
        out.append(std::to_string(resp.body.size()));
        out.append(detail::kCrlf);
    }
    out.append(detail::kCrlf);
    if (head || bodiless || resp.body.empty()) {
        const asio::const_buffer head_bytes = asio::buffer(out);
        co_return co_await send({&head_bytes, 1});
    }
    std::array<asio::const_buffer, 2> bufs{asio::buffer(out), asio::buffer(resp.body)};
    co_return co_await send(bufs);
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
    sock_->socket().shutdown(tcp::socket::shutdown_send, ec);
    auto deadline = Clock::now() + kLingerTime;
    size_t drained = 0;
    while (drained < (4u << 20) && Clock::now() < deadline) {
        buffer_.clear();
        auto [rec, n] = co_await detail::read_into(*sock_, buffer_, 16384, deadline);
        if (rec || n == 0) {
            break;
        }
        drained += n;
    }
    buffer_.clear();
}

void Connection::start_watch() {
    if (gone_ || watching_) {
        return;
    }
    watching_ = true;
    if (ahead_done_) {
        // Completed earlier in this request: bytes (alive) or a hang-up already marked gone.
        return;
    }
    if (!ahead_pending_) {
        start_read_ahead();
    }
}

void Connection::stop_watch() {
    // The read ahead stays in flight: the loop adopts it as the wait for the next request.
    watching_ = false;
}

struct Connection::AheadWait {
    // NOTE: optional + emplace, never assignment: Boost 1.81's any_completion_handler move
    // assignment wraps the handler in itself (infinite recursion on first use).
    std::optional<asio::any_completion_handler<void(error_code, size_t)>> waiter;
};

void Connection::start_read_ahead() {
    ahead_pending_ = true;
    ahead_done_ = false;
    auto self = shared_from_this();
    auto wait = std::make_shared<AheadWait>();
    ahead_wait_ = wait;
    // Speculative read: right after a request was read the socket is known drained, so Asio
    // queues this without a syscall (an async_wait would re-arm the descriptor with epoll_ctl).
    // The completion runs on the socket's executor, i.e. this connection's context.
    sock_->socket().async_read_some(
        buffer_.prepare(kHeadReadSize),
        [self, wait](error_code ec, size_t n) { self->on_read_ahead(ec, n, *wait); });
}

void Connection::on_read_ahead(const error_code& ec, size_t n, AheadWait& wait) {
    ahead_pending_ = false;
    ahead_done_ = true;
    ahead_ec_ = ec;
    ahead_n_ = n;
    buffer_.commit(n);
    if (in_request_ && watching_ && (ec || n == 0)) {
        mark_gone();  // EOF or reset while the handler runs: the client hung up
    }
    if (wait.waiter) {
        ahead_done_ = false;
        auto waiter = std::move(*wait.waiter);
        wait.waiter.reset();
        std::move(waiter)(ec, n);  // on this connection's thread: resumes the loop
    }
}

asio::awaitable<std::pair<error_code, size_t>> Connection::adopt_read_ahead(
    Clock::time_point deadline) {
    if (ahead_done_) {
        ahead_done_ = false;
        co_return std::pair<error_code, size_t>(ahead_ec_, ahead_n_);
    }
    AheadWait* wait = nullptr;
    {
        // Not kept across the suspension (see ahead_wait_): the pending read owns it.
        auto owned = ahead_wait_.lock();
        wait = owned.get();
    }
    if (wait == nullptr || sock_->aborted() != detail::Abort::kNone) {
        co_return std::pair<error_code, size_t>(asio::error::operation_aborted, 0);
    }
    sock_->set_deadline(deadline);
    auto [ec, n] = co_await asio::async_initiate<decltype(kTuple), void(error_code, size_t)>(
        [wait](auto handler) { wait->waiter.emplace(std::move(handler)); }, kTuple);
    sock_->clear_deadline();
    co_return std::pair<error_code, size_t>(ec, n);
}

}  // namespace helexa::net
