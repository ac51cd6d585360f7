// Coroutine HTTP/1.1 client for http:// URLs with a keep-alive connection pool per host:port,
// connect and read timeouts, complete responses and streamed responses (status + headers first,
// then body pieces as they arrive) for proxying.
//
// Use:
//   net::Client client(io.get_executor(), {.read_timeout = 30s});
//   auto res = co_await client.post_json("http://10.0.0.2:13131/models/load", body);
//   if (!res) { return Response::error(res.error()); }          // kUpstream or kTimeout
//   net::ClientRequest req{.method = "POST", .url = u, .body = b};
//   req.abort = std::make_shared<net::ClientAbort>();          // optional
//   writer.on_client_gone([a = req.abort] { a->abort(); });    // hang-up cancels the upstream
//   auto st = co_await client.stream(std::move(req));
//   if (st) { forward st->status(), st->headers();
//             while (auto piece = co_await st->next()) { if (!*piece) break; send **piece; } }
//
// Failures are values: kUpstream (refused, reset, malformed response, body too large), kTimeout
// (connect/read/write deadline) or kCancelled (ClientAbort, or terminal cancellation of the
// awaiting coroutine, e.g. losing an `||` race). A non-2xx status is not an error: it is returned
// as a response. A cancelled or failed exchange closes its connection; a connection returns to
// the pool only after a complete, keep-alive response was read.
//
// GCC 12 caveat: never build a temporary with a destructor (ClientRequest, Headers, std::string)
// inside a co_await expression, e.g. `co_await client.stream({.url = u})`: GCC 12 miscompiles it
// (the callee gets a bitwise copy pointing into the caller's frame; ASan reports a bad free). Name
// the value first, then `co_await client.stream(std::move(req))`.
//
// Threads: Client is thread-safe and may be shared by coroutines on any executor. An exchange
// runs on the awaiting coroutine's executor: the pooled connection is handed to that coroutine
// alone until the response is read (no strand hop per read). Connections are opened on the
// awaiting coroutine's execution context (io_context) and pooled per context: an exchange on
// context B never reuses a socket registered with context A (with one thread per context, as in
// IoPool, that would cost a cross-thread hand-off per socket operation). Every context an exchange
// ran on must outlive the Client, or close_idle() must run first. A StreamedResponse belongs to one
// coroutine at a time. Deadlines are enforced by one watchdog timer per connection. ClientAbort
// may be triggered from any thread. Copies of Client share one pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include "helexa/common/result.h"
#include "helexa/net/http.h"

namespace helexa::net {

namespace asio = boost::asio;

struct ClientOptions {
    std::chrono::milliseconds connect_timeout{5'000};
    // Per read: until the response header arrives, and between body pieces.
    std::chrono::milliseconds read_timeout{60'000};
    // To send the request.
    std::chrono::milliseconds write_timeout{30'000};
    // Idle connections kept per host:port.
    size_t max_idle_per_host = 16;
    // Idle connections older than this are closed instead of reused.
    std::chrono::milliseconds idle_ttl{30'000};
    // Largest complete response body accepted by request() (streams are unlimited).
    int64_t max_response_bytes = 64 * 1024 * 1024;
    std::string user_agent = "helexa";
};

namespace detail {
class DeadlineSocket;
struct AbortAccess;
}  // namespace detail

// Aborts one exchange from outside the coroutine awaiting it (a client-gone hook, another
// thread): the connect, send or read in flight — or the next one — fails with kCancelled and the
// connection is closed (the peer sees it go). Abort before the exchange starts fails it at once.
// One per request; thread-safe.
class ClientAbort {
public:
    ClientAbort();
    ~ClientAbort();
    ClientAbort(const ClientAbort&) = delete;
    ClientAbort& operator=(const ClientAbort&) = delete;

    void abort();  // idempotent
    bool aborted() const;

private:
    friend struct detail::AbortAccess;
    mutable std::mutex mutex_;
    bool aborted_ = false;
    std::weak_ptr<detail::DeadlineSocket> target_;  // the connection of the exchange in flight
};

struct ClientRequest {
    std::string method = "GET";
    std::string url;  // "http://host:port/path?query"
    Headers headers;  // Host, User-Agent, Content-Length are filled in when absent
    std::string body;
    // Overrides ClientOptions::read_timeout for this request.
    std::optional<std::chrono::milliseconds> read_timeout;
    // Optional: lets a callback cancel this exchange (see ClientAbort).
    std::shared_ptr<ClientAbort> abort;
};

struct ClientResponse {
    int status = 0;
    Headers headers;
    std::string body;

    // Parses the body; kUpstream naming the parse error when it is not JSON.
    Result<nlohmann::json> json() const;
};

// A response whose body is read piece by piece. Destroying it before the end closes the
// connection (it is never pooled half-read).
class StreamedResponse {
public:
    struct Impl;
    explicit StreamedResponse(std::unique_ptr<Impl> impl);
    ~StreamedResponse();
    StreamedResponse(StreamedResponse&&) noexcept;
    StreamedResponse& operator=(StreamedResponse&&) noexcept;

    int status() const;
    const Headers& headers() const;
    // Whether the whole body has been read (next() would return std::nullopt without I/O):
    // lets a proxy send the last piece together with the end of its own response.
    bool complete() const;
    // The upstream's Content-Length, when it sent one.
    std::optional<uint64_t> content_length() const;

    // The next piece of body as it arrives (chunk framing removed): a string, std::nullopt at the
    // clean end of the body, or an error (kUpstream, kTimeout, kCancelled when cancelled).
    // Supports terminal cancellation (the connection is then closed).
    asio::awaitable<Result<std::optional<std::string>>> next();
    // Reads the rest of the body into one string (up to max_response_bytes).
    asio::awaitable<Result<std::string>> read_all();
    // Closes the connection now (idempotent).
    void close();

private:
    std::unique_ptr<Impl> impl_;
};

class Client {
public:
    // `executor` (usually an io_context's) is the Client's home executor and must outlive it;
    // connections themselves belong to the contexts of the coroutines that use them (see the
    // file comment).
    explicit Client(asio::any_io_executor executor, ClientOptions options = {});
    ~Client();
    Client(const Client&);
    Client& operator=(const Client&);

    // Sends `request` and reads the complete response.
    asio::awaitable<Result<ClientResponse>> request(ClientRequest request);
    asio::awaitable<Result<ClientResponse>> get(std::string url, Headers headers = {});
    // POST with Content-Type application/json.
    asio::awaitable<Result<ClientResponse>> post_json(std::string url, const nlohmann::json& body,
                                                     Headers headers = {});
    // Sends `request`, returns once the status and headers are in.
    asio::awaitable<Result<StreamedResponse>> stream(ClientRequest request);

    // Pool statistics (tests, metrics): connections opened since construction; idle right now
    // (over all contexts).
    uint64_t connections_opened() const;
    size_t idle_connections() const;
    // Closes every idle pooled connection.
    void close_idle();

    struct Pool;

private:
    std::shared_ptr<Pool> pool_;
};

}  // namespace helexa::net
