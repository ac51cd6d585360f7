// The HTTP client: per host:port pools of keep-alive connections. An exchange runs on the
// awaiting coroutine's executor with the connection handed to it alone; deadlines come from one
// watchdog timer per connection (internal/deadline_socket.h); request heads are written by hand
// with the body in one gather write, and responses are parsed from the connection's buffer
// without I/O whenever the bytes are already there.
#include "helexa/net/client.h"

#include <atomic>
#include <charconv>
#include <deque>
#include <map>
#include <memory>
#include <mutex>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include "internal/deadline_socket.h"
#include "internal/http_format.h"

namespace helexa::net {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using detail::Abort;
using detail::DeadlineSocket;
using detail::kTuple;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kReadPiece = 16 * 1024;
struct ParsedUrl {
    std::string host;
    std::string port;
    std::string target;
    std::string key;  // "host:port", the pool key and the Host header
};

bool plain_host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

bool plain_target_char(char c) {
    auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '"' && c != '<' && c != '>' && c != '\\' && c != '^' &&
           c != '`' && c != '{' && c != '|' && c != '}' && c != '#';
}

// The common "http://host:port/path?query" form without Boost.URL (it showed up in proxy
// profiles at ~2% of a request); anything unusual (IPv6, userinfo, fragments, odd characters)
// returns std::nullopt and takes the full parser.
std::optional<ParsedUrl> parse_plain_url(std::string_view url) {
    constexpr std::string_view kScheme = "http://";
    if (url.substr(0, kScheme.size()) != kScheme) {
        return std::nullopt;
    }
    std::string_view rest = url.substr(kScheme.size());
    size_t end = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, end);
    std::string_view target = end == std::string_view::npos ? std::string_view() : rest.substr(end);
    size_t colon = authority.find(':');
    std::string_view host = authority.substr(0, colon);
    std::string_view port = colon == std::string_view::npos ? std::string_view("80")
                                                            : authority.substr(colon + 1);
    if (host.empty() || port.empty() || port.size() > 5) {
        return std::nullopt;
    }
    for (char c : host) {
        if (!plain_host_char(c)) {
            return std::nullopt;
        }
    }
    for (char c : port) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
    }
    for (char c : target) {
        if (!plain_target_char(c)) {
            return std::nullopt;
        }
    }
    ParsedUrl out;
    out.host = std::string(host);
    out.port = std::string(port);
    out.target.reserve(target.size() + 1);
    if (target.empty() || target.front() == '?') {
        out.target.push_back('/');
    }
    out.target.append(target.data(), target.size());
    out.key.reserve(host.size() + 1 + port.size());
    out.key.append(host.data(), host.size());
    out.key.push_back(':');
    out.key.append(port.data(), port.size());
    return out;
}

Result<ParsedUrl> parse_url(std::string_view url) {
    if (auto plain = parse_plain_url(url)) {
        return std::move(*plain);
    }
    auto parsed = boost::urls::parse_uri(url);
    if (!parsed) {
        return fail(ErrorCode::kUpstream, fmt::format("bad upstream URL '{}': {}", url,
                                                      parsed.error().message()));
    }
    auto u = *parsed;
    if (u.scheme() != "http") {
        return fail(ErrorCode::kUpstream,
                    fmt::format("unsupported URL scheme in '{}' (only http://)", url));
    }
    ParsedUrl out;
    out.host = std::string(u.encoded_host_address());
    if (out.host.size() >= 2 && out.host.front() == '[') {
        out.host = out.host.substr(1, out.host.size() - 2);
    }
    if (out.host.empty()) {
        return fail(ErrorCode::kUpstream, fmt::format("no host in URL '{}'", url));
    }
    out.port = u.has_port() ? std::string(u.port()) : "80";
    out.target = u.encoded_path().empty() ? "/" : std::string(u.encoded_path());
    if (u.has_query()) {
        out.target += "?" + std::string(u.encoded_query());
    }
    out.key = std::string(u.encoded_host_and_port());
    if (!u.has_port()) {
        out.key += ":80";
    }
    return out;
}

bool is_stale_error(const error_code& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == http::error::partial_message;
}

// `ec` from an operation on `sock`, named for the caller: the watchdog's verdict first (its
// shutdown surfaces as EOF or EPIPE), then cancellation, then the I/O error itself.
Error exchange_error(const DeadlineSocket& sock, const error_code& ec, std::string_view what,
                     std::string_view where, std::chrono::milliseconds timeout) {
    switch (sock.aborted()) {
        case Abort::kTimeout:
            return Error(ErrorCode::kTimeout,
                         fmt::format("{} {} timed out after {} ms", what, where, timeout.count()));
        case Abort::kCancelled:
            return Error(ErrorCode::kCancelled, fmt::format("{} {} cancelled", what, where));
        case Abort::kNone:
            break;
    }
    if (ec == asio::error::operation_aborted) {
        return Error(ErrorCode::kCancelled, fmt::format("{} {} cancelled", what, where));
    }
    return Error(ErrorCode::kUpstream, fmt::format("{} {} failed: {}", what, where, ec.message()));
}

}  // namespace

namespace detail {

struct AbortAccess {
    // False when the abort already happened (the exchange must not start).
    static bool attach(ClientAbort& a, const std::shared_ptr<DeadlineSocket>& sock) {
        std::lock_guard lock(a.mutex_);
        if (a.aborted_) {
            return false;
        }
        a.target_ = sock;
        return true;
    }
    static void detach(ClientAbort& a) {
        std::lock_guard lock(a.mutex_);
        a.target_.reset();
    }
};

}  // namespace detail

ClientAbort::ClientAbort() = default;
ClientAbort::~ClientAbort() = default;

void ClientAbort::abort() {
    std::lock_guard lock(mutex_);
    aborted_ = true;
    if (auto target = target_.lock()) {
        target->abort(Abort::kCancelled);
    }
}

bool ClientAbort::aborted() const {
    std::lock_guard lock(mutex_);
    return aborted_;
}

// The execution context (io_context) behind `ex`: the identity that keys the pool.
const void* context_of(const asio::any_io_executor& ex) {
    return &asio::query(ex, asio::execution::context);
}

// One connection. Owned by the pool while idle, by one exchange (one coroutine) otherwise.
// Its socket and watchdog timer belong to the context of the coroutine that opened it, and it is
// only ever pooled for (and taken by) exchanges on that same context: I/O on a socket registered
// with another context's reactor would complete on that context's thread and cost a cross-thread
// hand-off per operation.
struct PooledConn {
    PooledConn(const asio::any_io_executor& ex, std::string k, std::chrono::milliseconds period)
        : sock(std::make_shared<DeadlineSocket>(ex, period)),
          key(std::move(k)),
          context(context_of(ex)) {}
    // Closing stops the watchdog timer too, whose pending wait would otherwise keep the socket
    // (and its descriptor) alive for up to one period.
    ~PooledConn() { sock->close(); }
    PooledConn(const PooledConn&) = delete;
    PooledConn& operator=(const PooledConn&) = delete;
    std::shared_ptr<DeadlineSocket> sock;
    beast::flat_buffer buffer;
    // Body reads land here and only the bytes read are copied out: allocating and zero-filling a
    // fresh 16 KiB string per read showed up as malloc + memset in proxy profiles.
    std::unique_ptr<char[]> scratch;
    std::string key;
    const void* context;  // the execution context the socket is registered with
    bool connected = false;
    Clock::time_point idle_since;
};

namespace {

void discard(std::unique_ptr<PooledConn> conn) {
    if (conn) {
        conn->sock->close();
    }
}

}  // namespace

struct Client::Pool {
    Pool(asio::any_io_executor ex, ClientOptions opts)
        : executor(std::move(ex)),
          options(std::move(opts)),
          check_period(std::min({options.connect_timeout, options.read_timeout,
                                 options.write_timeout})) {}

    // An idle connection to `key` opened on `context`, most recently used first.
    std::unique_ptr<PooledConn> take(const void* context, const std::string& key) {
        std::unique_ptr<PooledConn> found;
        std::vector<std::unique_ptr<PooledConn>> expired;
        {
            std::lock_guard lock(mutex);
            auto& q = queue_locked(context, key);
            auto now = Clock::now();
            while (!q.empty()) {
                auto c = std::move(q.back());  // most recently used first
                q.pop_back();
                if (now - c->idle_since < options.idle_ttl) {
                    found = std::move(c);
                    break;
                }
                expired.push_back(std::move(c));
            }
        }
        for (auto& c : expired) {
            discard(std::move(c));
        }
        return found;
    }

    // The idle queue for (context, key), created empty when missing. Caller holds `mutex`.
    std::deque<std::unique_ptr<PooledConn>>& queue_locked(const void* context,
                                                          const std::string& key) {
        auto& hosts = idle[context];
        auto it = hosts.find(key);
        if (it == hosts.end()) {
            it = hosts.emplace(key, std::deque<std::unique_ptr<PooledConn>>()).first;
        }
        return it->second;
    }

    void give_back(std::unique_ptr<PooledConn> conn) {
        conn->idle_since = Clock::now();
        {
            std::lock_guard lock(mutex);
            auto& q = queue_locked(conn->context, conn->key);
            if (q.size() < options.max_idle_per_host) {
                q.push_back(std::move(conn));
                return;
            }
        }
        discard(std::move(conn));
    }

    using Hosts = std::map<std::string, std::deque<std::unique_ptr<PooledConn>>, std::less<>>;

    asio::any_io_executor executor;
    ClientOptions options;
    std::chrono::milliseconds check_period;
    mutable std::mutex mutex;
    std::map<const void*, Hosts> idle;  // per execution context, per host:port
    std::atomic<uint64_t> opened{0};
};

using Parser = http::response_parser<http::buffer_body>;

struct StreamedResponse::Impl {
    std::shared_ptr<Client::Pool> pool;
    std::unique_ptr<PooledConn> conn;
    std::optional<Parser> parser;
    std::shared_ptr<ClientAbort> abort;
    int status = 0;
    Headers headers;
    std::chrono::milliseconds read_timeout{};
    std::string url;
    bool done = false;

    ~Impl() { close(); }

    void release_abort() {
        if (abort) {
            detail::AbortAccess::detach(*abort);
            abort.reset();
        }
    }

    // The end of the body: pool the connection when the server allows it and nothing is left
    // over (a response followed by stray bytes is never reused).
    void finish() {
        done = true;
        release_abort();
        if (conn && parser && parser->keep_alive() && conn->buffer.size() == 0 &&
            conn->sock->aborted() == Abort::kNone) {
            pool->give_back(std::move(conn));
        } else {
            discard(std::move(conn));
        }
    }

    // Never pool a connection in an unknown state.
    void close() {
        done = true;
        release_abort();
        discard(std::move(conn));
    }
};

namespace {

// The request head, written by hand (the body follows it in the same gather write).
std::string request_head(const ClientRequest& request, const ParsedUrl& url,
                         const ClientOptions& options, bool has_body, size_t body_size) {
    std::string out;
    out.reserve(256);
    out.append(request.method);
    out.push_back(' ');
    out.append(url.target);
    out.append(" HTTP/1.1\r\n");
    for (const auto& [k, v] : request.headers) {
        if (!iequals(k, "Content-Length") && !iequals(k, "Transfer-Encoding") &&
            !iequals(k, "Connection")) {
            detail::append_field(out, k, v);
        }
    }
    if (!request.headers.contains("Host")) {
        detail::append_field(out, "Host", url.key);
    }
    if (!request.headers.contains("User-Agent") && !options.user_agent.empty()) {
        detail::append_field(out, "User-Agent", options.user_agent);
    }
    if (has_body) {
        out.append("Content-Length: ");
        out.append(std::to_string(body_size));
        out.append(detail::kCrlf);
    }
    out.append(detail::kCrlf);
    return out;
}

// Connects `conn` to the first reachable address of `url` within connect_timeout.
asio::awaitable<Result<void>> connect(Client::Pool& pool, PooledConn& conn, const ParsedUrl& url) {
    const auto timeout = pool.options.connect_timeout;
    std::vector<tcp::endpoint> endpoints;
    error_code aec;
    auto address = asio::ip::make_address(url.host, aec);
    if (!aec) {
        // Numeric hosts skip the resolver.
        uint16_t port = 0;
        auto [end, pec] = std::from_chars(url.port.data(), url.port.data() + url.port.size(),
                                          port);
        if (pec != std::errc() || end != url.port.data() + url.port.size()) {
            co_return fail(ErrorCode::kUpstream, "bad port in upstream address " + url.key);
        }
        endpoints.emplace_back(address, port);
    } else {
        tcp::resolver resolver(co_await asio::this_coro::executor);
        auto [rec, results] = co_await resolver.async_resolve(url.host, url.port, kTuple);
        if (rec) {
            co_return fail(exchange_error(*conn.sock, rec, "resolving", url.key, timeout));
        }
        for (const auto& r : results) {
            endpoints.push_back(r.endpoint());
        }
    }
    error_code cec = asio::error::host_not_found;
    conn.sock->set_deadline_after(timeout);  // one deadline for every address tried
    for (const auto& ep : endpoints) {
        if (conn.sock->aborted() != Abort::kNone) {
            break;
        }
        cec = conn.sock->open(ep.protocol());
        if (cec) {
            continue;
        }
        std::tie(cec) = co_await conn.sock->socket().async_connect(ep, kTuple);
        if (!cec) {
            break;
        }
    }
    conn.sock->clear_deadline();
    if (cec || conn.sock->aborted() != Abort::kNone) {
        co_return fail(exchange_error(*conn.sock, cec ? cec : asio::error::operation_aborted,
                                      "connecting to", url.key, timeout));
    }
    error_code nec;
    conn.sock->socket().set_option(tcp::no_delay(true), nec);
    conn.connected = true;
    pool.opened.fetch_add(1);
    co_return Result<void>();
}

enum class Outcome { kOk, kStale };

// Connect if needed, send, read the response header; on the awaiting coroutine's executor.
asio::awaitable<Result<Outcome>> exchange(Client::Pool& pool, PooledConn& conn,
                                          const ParsedUrl& url, const std::string& head,
                                          const std::string& body, bool head_only,
                                          std::chrono::milliseconds read_to, Parser& parser) {
    const auto& opts = pool.options;
    try {
        bool reused = conn.connected;
        if (!conn.connected) {
            auto c = co_await connect(pool, conn, url);
            if (!c) {
                co_return fail(std::move(c).error());
            }
        }
        std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body)};
        auto wec = co_await detail::write_all(*conn.sock, bufs, opts.write_timeout);
        if (wec) {
            if (reused && is_stale_error(wec) && conn.sock->aborted() == Abort::kNone) {
                co_return Outcome::kStale;
            }
            co_return fail(
                exchange_error(*conn.sock, wec, "sending request to", url.key, opts.write_timeout));
        }
        parser.body_limit(boost::none);
        parser.header_limit(1024 * 1024);
        if (head_only) {
            parser.skip(true);
        }
        auto hec = co_await detail::parse_until(*conn.sock, conn.buffer, parser,
                                                Clock::now() + read_to, kReadPiece,
                                                [](const auto& p) { return p.is_header_done(); });
        if (hec) {
            if (reused && !parser.got_some() && is_stale_error(hec) &&
                conn.sock->aborted() == Abort::kNone) {
                co_return Outcome::kStale;
            }
            co_return fail(exchange_error(*conn.sock, hec, "reading response from", url.key,
                                          read_to));
        }
        co_return Outcome::kOk;
    } catch (const boost::system::system_error& e) {
        // Awaiting after the coroutine was cancelled throws operation_aborted.
        co_return fail(exchange_error(*conn.sock, e.code(), "request to", url.key, read_to));
    } catch (const std::exception& e) {
        co_return fail(ErrorCode::kUpstream, fmt::format("request to {} failed: {}", url.key,
                                                         e.what()));
    }
}

// The next piece of body; on the awaiting coroutine's executor.
asio::awaitable<Result<std::optional<std::string>>> read_piece(StreamedResponse::Impl& s) {
    auto& conn = *s.conn;
    auto& parser = *s.parser;
    try {
        for (;;) {
            if (parser.is_done()) {
                co_return std::optional<std::string>();
            }
            if (!conn.scratch) {
                conn.scratch = std::make_unique_for_overwrite<char[]>(kReadPiece);
            }
            auto& body = parser.get().body();
            body.data = conn.scratch.get();
            body.size = kReadPiece;
            body.more = true;
            // A piece is ready once something was parsed and the buffered bytes are used up (or
            // the scratch buffer is full: need_buffer).
            auto ec = co_await detail::parse_until(
                *conn.sock, conn.buffer, parser, Clock::now() + s.read_timeout, kReadPiece,
                [](const auto& p) { return p.is_done(); },
                [&](const auto&) { return parser.get().body().size < kReadPiece; });
            if (ec == http::error::need_buffer) {
                ec = {};
            }
            if (ec) {
                co_return fail(
                    exchange_error(*conn.sock, ec, "reading body from", s.url, s.read_timeout));
            }
            size_t got = kReadPiece - parser.get().body().size;
            if (got > 0) {
                co_return std::optional<std::string>(std::in_place, conn.scratch.get(), got);
            }
        }
    } catch (const boost::system::system_error& e) {
        co_return fail(
            exchange_error(*conn.sock, e.code(), "reading body from", s.url, s.read_timeout));
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------

StreamedResponse::StreamedResponse(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StreamedResponse::~StreamedResponse() = default;
StreamedResponse::StreamedResponse(StreamedResponse&&) noexcept = default;
StreamedResponse& StreamedResponse::operator=(StreamedResponse&&) noexcept = default;

int StreamedResponse::status() const {
    return impl_->status;
}

const Headers& StreamedResponse::headers() const {
    return impl_->headers;
}

bool StreamedResponse::complete() const {
    return impl_->done && impl_->parser && impl_->parser->is_done();
}

std::optional<uint64_t> StreamedResponse::content_length() const {
    if (!impl_->parser) {
        return std::nullopt;
    }
    auto n = impl_->parser->content_length();
    return n ? std::optional<uint64_t>(*n) : std::nullopt;
}

asio::awaitable<Result<std::optional<std::string>>> StreamedResponse::next() {
    auto& s = *impl_;
    if (s.done) {
        if (!s.parser || !s.parser->is_done()) {
            co_return fail(ErrorCode::kCancelled, "stream from " + s.url + " was closed");
        }
        co_return std::optional<std::string>();
    }
    if (!s.conn) {
        co_return fail(ErrorCode::kCancelled, "stream from " + s.url + " was closed");
    }
    auto result = co_await read_piece(s);
    if (!result) {
        s.close();
    } else if (!result->has_value() || s.parser->is_done()) {
        s.finish();  // the last piece (or the end): the connection can go back right away
    }
    co_return result;
}

asio::awaitable<Result<std::string>> StreamedResponse::read_all() {
    std::string body;
    int64_t limit = impl_->pool->options.max_response_bytes;
    if (auto n = content_length(); n && static_cast<int64_t>(*n) <= limit) {
        body.reserve(*n);
    }
    for (;;) {
        auto piece = co_await next();
        if (!piece) {
            co_return fail(std::move(piece).error());
        }
        if (!piece->has_value()) {
            co_return body;
        }
        body += **piece;
        if (static_cast<int64_t>(body.size()) > limit) {
            close();
            co_return fail(ErrorCode::kUpstream,
                           fmt::format("response from {} exceeds {} bytes", impl_->url, limit));
        }
    }
}

void StreamedResponse::close() {
    impl_->close();
}

Result<nlohmann::json> ClientResponse::json() const {
    try {
        return nlohmann::json::parse(body);
    } catch (const nlohmann::json::parse_error& e) {
        return fail(ErrorCode::kUpstream, std::string("upstream body is not JSON: ") + e.what());
    }
}

// ---------------------------------------------------------------------------------------------

Client::Client(asio::any_io_executor executor, ClientOptions options)
    : pool_(std::make_shared<Pool>(std::move(executor), std::move(options))) {}
Client::~Client() = default;
Client::Client(const Client&) = default;
Client& Client::operator=(const Client&) = default;

asio::awaitable<Result<StreamedResponse>> Client::stream(ClientRequest request) {
    auto pool = pool_;
    auto url = parse_url(request.url);
    if (!url) {
        co_return fail(std::move(url).error());
    }
    bool has_body = !request.body.empty() || request.method == "POST" || request.method == "PUT" ||
                    request.method == "PATCH";
    const std::string head = request_head(request, *url, pool->options, has_body,
                                          request.body.size());
    bool head_only = request.method == "HEAD";
    auto read_to = request.read_timeout.value_or(pool->options.read_timeout);
    auto abort = std::move(request.abort);
    // Connections are opened on, and reused only from, the awaiting coroutine's context.
    const asio::any_io_executor executor = co_await asio::this_coro::executor;
    const void* context = context_of(executor);

    for (int attempt = 0; attempt < 2; ++attempt) {
        auto conn = pool->take(context, url->key);
        if (!conn) {
            conn = std::make_unique<PooledConn>(executor, url->key, pool->check_period);
        }
        if (abort && !detail::AbortAccess::attach(*abort, conn->sock)) {
            if (conn->connected) {
                pool->give_back(std::move(conn));  // untouched: still good
            }
            co_return fail(ErrorCode::kCancelled, "request to " + url->key + " cancelled");
        }
        auto impl = std::make_unique<StreamedResponse::Impl>();
        impl->pool = pool;
        impl->conn = std::move(conn);
        impl->abort = abort;
        impl->parser.emplace();
        impl->read_timeout = read_to;
        impl->url = url->key;
        auto ex = co_await exchange(*pool, *impl->conn, *url, head, request.body, head_only,
                                    read_to, *impl->parser);
        if (!ex) {
            impl->close();
            co_return fail(std::move(ex).error());
        }
        if (*ex == Outcome::kStale) {
            impl->close();
            continue;
        }
        const auto& msg = impl->parser->get();
        impl->status = static_cast<int>(msg.result_int());
        for (const auto& f : msg) {
            impl->headers.add(std::string(f.name_string()), std::string(f.value()));
        }
        if (impl->parser->is_done()) {
            impl->finish();  // no body (HEAD, 204, Content-Length: 0)
        }
        co_return StreamedResponse(std::move(impl));
    }
    co_return fail(ErrorCode::kUpstream, "connection to " + url->key + " closed before response");
}

asio::awaitable<Result<ClientResponse>> Client::request(ClientRequest request) {
    auto st = co_await stream(std::move(request));
    if (!st) {
        co_return fail(std::move(st).error());
    }
    ClientResponse out;
    out.status = st->status();
    out.headers = st->headers();
    auto body = co_await st->read_all();
    if (!body) {
        co_return fail(std::move(body).error());
    }
    out.body = std::move(*body);
    co_return out;
}

asio::awaitable<Result<ClientResponse>> Client::get(std::string url, Headers headers) {
    ClientRequest req;
    req.method = "GET";
    req.url = std::move(url);
    req.headers = std::move(headers);
    co_return co_await request(std::move(req));
}

asio::awaitable<Result<ClientResponse>> Client::post_json(std::string url,
                                                          const nlohmann::json& body,
                                                          Headers headers) {
    ClientRequest req;
    req.method = "POST";
    req.url = std::move(url);
    req.headers = std::move(headers);
    if (!req.headers.contains("Content-Type")) {
        req.headers.set("Content-Type", "application/json");
    }
    req.body = body.dump();
    co_return co_await request(std::move(req));
}

uint64_t Client::connections_opened() const {
    return pool_->opened.load();
}

size_t Client::idle_connections() const {
    std::lock_guard lock(pool_->mutex);
    size_t n = 0;
    for (const auto& [context, hosts] : pool_->idle) {
        for (const auto& [k, q] : hosts) {
            n += q.size();
        }
    }
    return n;
}

void Client::close_idle() {
    std::map<const void*, Pool::Hosts> idle;
    {
        std::lock_guard lock(pool_->mutex);
        idle.swap(pool_->idle);
    }
    for (auto& [context, hosts] : idle) {
        for (auto& [k, q] : hosts) {
            for (auto& c : q) {
                discard(std::move(c));
            }
        }
    }
}

}  // namespace helexa::net
