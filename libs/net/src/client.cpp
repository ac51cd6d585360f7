// The HTTP client: per host:port pools of keep-alive connections, each connection doing its I/O
// on its own strand (callers hop there with co_spawn, which also carries their cancellation).
#include "helexa/net/client.h"

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>

namespace helexa::net {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadPiece = 16 * 1024;

struct ParsedUrl {
    std::string host;
    std::string port;
    std::string target;
    std::string key;  // "host:port", the pool key and the Host header
};

Result<ParsedUrl> parse_url(std::string_view url) {
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

using Strand = asio::strand<asio::any_io_executor>;

}  // namespace

// One connection; all I/O on it happens on `strand`.
struct PooledConn {
    explicit PooledConn(Strand s, std::string k)
        : strand(s), stream(s), key(std::move(k)) {}
    Strand strand;
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    // Body reads land here and only the bytes read are copied out: allocating and zero-filling a
    // fresh 16 KiB string per read showed up as malloc + memset in proxy profiles.
    std::unique_ptr<char[]> scratch;
    std::string key;
    bool connected = false;
    std::chrono::steady_clock::time_point idle_since;
};

namespace {

// Destroys a connection on its own strand (its timer may still have a handler queued there).
void discard(std::unique_ptr<PooledConn> conn) {
    if (!conn) {
        return;
    }
    auto strand = conn->strand;
    asio::post(strand, [c = std::move(conn)]() mutable {
        error_code ec;
        c->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
        c->stream.socket().close(ec);
        c.reset();
    });
}

}  // namespace

struct Client::Pool {
    Pool(asio::any_io_executor ex, ClientOptions opts) : executor(std::move(ex)), options(std::move(opts)) {}

    std::unique_ptr<PooledConn> take(const std::string& key) {
        std::unique_ptr<PooledConn> found;
        std::vector<std::unique_ptr<PooledConn>> expired;
        {
            std::lock_guard lock(mutex);
            auto it = idle.find(key);
            if (it != idle.end()) {
                auto now = std::chrono::steady_clock::now();
                auto& q = it->second;
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
        }
        for (auto& c : expired) {
            discard(std::move(c));
        }
        return found;
    }

    void give_back(std::unique_ptr<PooledConn> conn) {
        conn->idle_since = std::chrono::steady_clock::now();
        {
            std::lock_guard lock(mutex);
            auto& q = idle[conn->key];
            if (q.size() < options.max_idle_per_host) {
                q.push_back(std::move(conn));
                return;
            }
        }
        discard(std::move(conn));
    }

    asio::any_io_executor executor;
    ClientOptions options;
    mutable std::mutex mutex;
    std::map<std::string, std::deque<std::unique_ptr<PooledConn>>> idle;
    std::atomic<uint64_t> opened{0};
};

struct StreamedResponse::Impl {
    std::shared_ptr<Client::Pool> pool;
    std::unique_ptr<PooledConn> conn;
    std::unique_ptr<http::response_parser<http::buffer_body>> parser;
    int status = 0;
    Headers headers;
    std::chrono::milliseconds read_timeout{};
    std::string url;
    bool done = false;

    ~Impl() { discard(std::move(conn)); }

    // The end of the body: pool the connection when the server allows it.
    void finish() {
        done = true;
        if (conn && parser && parser->keep_alive()) {
            pool->give_back(std::move(conn));
        } else {
            discard(std::move(conn));
        }
    }
};

namespace {

Error map_error(const error_code& ec, std::string_view what, std::string_view where,
                std::chrono::milliseconds timeout) {
    if (ec == beast::error::timeout) {
        return Error(ErrorCode::kTimeout,
                     fmt::format("{} {} timed out after {} ms", what, where, timeout.count()));
    }
    if (ec == asio::error::operation_aborted) {
        return Error(ErrorCode::kCancelled, fmt::format("{} {} cancelled", what, where));
    }
    return Error(ErrorCode::kUpstream, fmt::format("{} {} failed: {}", what, where, ec.message()));
}

bool is_stale_error(const error_code& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == http::error::partial_message;
}

struct Exchange {
    std::unique_ptr<http::response_parser<http::buffer_body>> parser;
    bool stale = false;  // a reused connection the server had already closed: retry on a new one
};

// Runs on conn.strand: connect if needed, send, read the response header.
asio::awaitable<Result<Exchange>> exchange_on_strand(Client::Pool& pool, PooledConn& conn,
                                                     const ParsedUrl& url,
                                                     const http::request<http::string_body>& req,
                                                     bool head, std::chrono::milliseconds read_to) {
    const auto& opts = pool.options;
    try {
        bool reused = conn.connected;
        if (!conn.connected) {
            tcp::resolver resolver(conn.strand);
            error_code aec;
            (void)asio::ip::make_address(url.host, aec);  // numeric hosts skip DNS
            auto flags = aec ? tcp::resolver::flags{} : tcp::resolver::numeric_host;
            auto [rec, results] = co_await resolver.async_resolve(url.host, url.port, flags, kTuple);
            if (rec) {
                co_return fail(map_error(rec, "resolving", url.key, opts.connect_timeout));
            }
            conn.stream.expires_after(opts.connect_timeout);
            auto [cec, ep] = co_await conn.stream.async_connect(results, kTuple);
            conn.stream.expires_never();
            if (cec) {
                co_return fail(map_error(cec, "connecting to", url.key, opts.connect_timeout));
            }
            error_code nec;
            conn.stream.socket().set_option(tcp::no_delay(true), nec);
            conn.connected = true;
            pool.opened.fetch_add(1);
        }
        conn.stream.expires_after(opts.write_timeout);
        auto [wec, wn] = co_await http::async_write(conn.stream, req, kTuple);
        conn.stream.expires_never();
        if (wec) {
            if (reused && is_stale_error(wec)) {
                co_return Exchange{nullptr, true};
            }
            co_return fail(map_error(wec, "sending request to", url.key, opts.write_timeout));
        }
        auto parser = std::make_unique<http::response_parser<http::buffer_body>>();
        parser->body_limit(boost::none);
        parser->header_limit(1024 * 1024);
        if (head) {
            parser->skip(true);
        }
        conn.stream.expires_after(read_to);
        auto [hec, hn] = co_await http::async_read_header(conn.stream, conn.buffer, *parser, kTuple);
        conn.stream.expires_never();
        if (hec) {
            if (reused && hn == 0 && is_stale_error(hec)) {
                co_return Exchange{nullptr, true};
            }
            co_return fail(map_error(hec, "reading response from", url.key, read_to));
        }
        co_return Exchange{std::move(parser), false};
    } catch (const boost::system::system_error& e) {
        co_return fail(map_error(e.code(), "request to", url.key, read_to));
    } catch (const std::exception& e) {
        co_return fail(ErrorCode::kUpstream, fmt::format("request to {} failed: {}", url.key,
                                                         e.what()));
    }
}

// Runs on the connection strand: the next piece of body.
asio::awaitable<Result<std::optional<std::string>>> next_on_strand(StreamedResponse::Impl& s) {
    try {
        auto& conn = *s.conn;
        auto& parser = *s.parser;
        for (;;) {
            if (parser.is_done()) {
                co_return std::optional<std::string>();
            }
            if (!conn.scratch) {
                conn.scratch = std::make_unique_for_overwrite<char[]>(kReadPiece);
            }
            parser.get().body().data = conn.scratch.get();
            parser.get().body().size = kReadPiece;
            parser.get().body().more = true;
            conn.stream.expires_after(s.read_timeout);
            auto [ec, n] = co_await http::async_read_some(conn.stream, conn.buffer, parser, kTuple);
            conn.stream.expires_never();
            if (ec == http::error::need_buffer) {
                ec = {};
            }
            if (ec) {
                co_return fail(map_error(ec, "reading body from", s.url, s.read_timeout));
            }
            size_t got = kReadPiece - parser.get().body().size;
            if (got > 0) {
                co_return std::optional<std::string>(std::in_place, conn.scratch.get(), got);
            }
        }
    } catch (const boost::system::system_error& e) {
        co_return fail(map_error(e.code(), "reading body from", s.url, s.read_timeout));
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

asio::awaitable<Result<std::optional<std::string>>> StreamedResponse::next() {
    auto& s = *impl_;
    if (s.done) {
        co_return std::optional<std::string>();
    }
    if (!s.conn) {
        co_return fail(ErrorCode::kCancelled, "stream from " + s.url + " was closed");
    }
    auto strand = s.conn->strand;
    auto result = co_await asio::co_spawn(strand, next_on_strand(s), asio::use_awaitable);
    if (!result) {
        discard(std::move(s.conn));  // never pool a connection in an unknown state
        s.done = true;
    } else if (!result->has_value()) {
        s.finish();
    }
    co_return result;
}

asio::awaitable<Result<std::string>> StreamedResponse::read_all() {
    std::string body;
    int64_t limit = impl_->pool->options.max_response_bytes;
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
    impl_->done = true;
    discard(std::move(impl_->conn));
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
    http::request<http::string_body> req;
    req.version(11);
    req.method_string(request.method);
    req.target(url->target);
    for (const auto& [k, v] : request.headers) {
        if (!iequals(k, "Content-Length") && !iequals(k, "Transfer-Encoding") &&
            !iequals(k, "Connection")) {
            req.insert(k, v);
        }
    }
    if (!request.headers.contains("Host")) {
        req.set(http::field::host, url->key);
    }
    if (!request.headers.contains("User-Agent") && !pool->options.user_agent.empty()) {
        req.set(http::field::user_agent, pool->options.user_agent);
    }
    req.keep_alive(true);
    bool has_body = !request.body.empty() || request.method == "POST" || request.method == "PUT" ||
                    request.method == "PATCH";
    if (has_body) {
        req.body() = std::move(request.body);
        req.prepare_payload();
    }
    bool head = request.method == "HEAD";
    auto read_to = request.read_timeout.value_or(pool->options.read_timeout);

    for (int attempt = 0; attempt < 2; ++attempt) {
        auto conn = pool->take(url->key);
        if (!conn) {
            conn = std::make_unique<PooledConn>(asio::make_strand(pool->executor), url->key);
        }
        auto strand = conn->strand;
        auto ex = co_await asio::co_spawn(
            strand, exchange_on_strand(*pool, *conn, *url, req, head, read_to), asio::use_awaitable);
        if (!ex) {
            discard(std::move(conn));
            co_return fail(std::move(ex).error());
        }
        if (ex->stale) {
            discard(std::move(conn));
            continue;
        }
        auto impl = std::make_unique<StreamedResponse::Impl>();
        impl->pool = pool;
        impl->conn = std::move(conn);
        impl->parser = std::move(ex->parser);
        impl->read_timeout = read_to;
        impl->url = url->key;
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
    for (const auto& [k, q] : pool_->idle) {
        n += q.size();
    }
    return n;
}

void Client::close_idle() {
    std::map<std::string, std::deque<std::unique_ptr<PooledConn>>> idle;
    {
        std::lock_guard lock(pool_->mutex);
        idle.swap(pool_->idle);
    }
    for (auto& [k, q] : idle) {
        for (auto& c : q) {
            discard(std::move(c));
        }
    }
}

}  // namespace helexa::net
