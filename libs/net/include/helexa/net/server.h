// HTTP/1.1 server on Asio coroutines: routing by method + path pattern, a middleware chain,
// complete or streamed (chunked, SSE) responses, client hang-up detection, bounded graceful
// shutdown. Every refusal the server itself produces (404, 405, 413, 400, 500) is the OpenAI error
// envelope.
//
// Use:
//   net::Router router;
//   router.get("/health", [](net::Request&) -> asio::awaitable<net::Response> {
//       co_return net::Response::json({{"status", "ok"}});
//   });
//   router.post("/v1/chat/completions",
//       [](net::Request& req, net::ResponseWriter& w) -> asio::awaitable<net::Response> {
//           net::SseWriter sse(w);
//           co_await sse.start();
//           co_await sse.event(R"({"x":1})");
//           co_await sse.done();             // "data: [DONE]" + finish
//           co_return net::Response{};       // ignored once streaming started
//       });
//   net::IoPool io(2);
//   net::Server server(io, {.listen = "0.0.0.0:31313"}, std::move(router));
//   if (auto st = server.start(); !st) { ... }
//   io.start();
//   ... server.stop();   // blocking graceful shutdown, from a non-I/O thread
//
// Routes: segments are literals, `{name}` (one segment) or `{name*}` (one or more segments, '/'
// included; at most one per pattern, anywhere: "/models/{id*}/endpoint" matches
// "/models/Qwen/Qwen3-8B/endpoint" with id = "Qwen/Qwen3-8B"). Parameters are percent-decoded.
// The query string never takes part in matching. Most specific wins: fewer catch-alls, then fewer
// params, then registration order. HEAD falls back to the GET route.
//
// GCC 12 caveat (see client.h): in coroutines, name values with destructors before passing them to
// a co_await'ed call (`std::string s = ...; co_await w.write(s);`, `Headers h{...};
// co_await w.start(200, std::move(h));`), never as temporaries inside the co_await expression.
//
// Threads: each connection is a coroutine on one of the IoPool's single-threaded contexts (chosen
// round-robin at accept), and its handlers and middleware run there, on that one thread (so no
// locking is needed for per-request state; a Client exchange awaited there uses connections of
// the same context). Handlers must never block the thread: hand blocking work elsewhere and await
// a Channel. Router is immutable once given to the Server. start/stop/shutdown/port are
// thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "helexa/common/result.h"
#include "helexa/net/http.h"

namespace helexa::net {

namespace asio = boost::asio;

// The streaming side of a response. A handler that wants to stream calls start(), then write()
// any number of times, then finish(); the server uses chunked transfer encoding unless the
// headers given to start() carry a Content-Length. Each call returns false once the client is
// gone (or the server is force-closing); the handler should then stop producing.
// Not thread-safe: use only from the handler's coroutine (which runs on the connection's context).
class ResponseWriter {
public:
    virtual ~ResponseWriter() = default;

    // Sends the status line and headers (plus any extra_headers()). Call at most once.
    virtual asio::awaitable<bool> start(int status, Headers headers) = 0;
    // Sends one piece of body (one chunk). Empty `bytes` sends nothing and returns client state.
    virtual asio::awaitable<bool> write(std::string_view bytes) = 0;
    // Ends the body (the terminating chunk). Idempotent.
    virtual asio::awaitable<bool> finish() = 0;
    // write(bytes) then finish(), in one socket write where the framing allows (the last chunk
    // and the terminating chunk together). Use when the handler knows `bytes` is the last piece.
    virtual asio::awaitable<bool> write_and_finish(std::string_view bytes) {
        bool ok = co_await write(bytes);
        bool finished = co_await finish();
        co_return ok && finished;
    }

    // Whether start() was called.
    virtual bool started() const = 0;
    // The status sent by start(), else 0 (for trace middleware).
    virtual int status() const = 0;

    // Whether the client has hung up (or the server is force-closing this connection). The
    // first call of this, wait_client_gone or on_client_gone starts watching the socket for the
    // rest of the request (requests that never ask do not pay for the watch).
    virtual bool client_gone() const = 0;
    // Completes when the client hangs up or the server force-closes; never completes otherwise.
    // Supports per-operation cancellation, so race it: `co_await (upstream.next() ||
    // w.wait_client_gone())` (asio::experimental::awaitable_operators).
    virtual asio::awaitable<void> wait_client_gone() = 0;
    // Runs `callback` once, on the connection's thread, when the client hangs up (immediately if it
    // already has). E.g. `w.on_client_gone([&engine, id] { engine.cancel(id); });` — the callback
    // must stay valid until the handler returns (the server drops callbacks then).
    virtual void on_client_gone(std::function<void()> callback) = 0;

    // Headers added to whatever response goes out for this request, complete or streamed
    // (middleware uses this for CORS, x-request-id). A field already set by the handler wins.
    virtual Headers& extra_headers() = 0;
};

// Server-Sent Events over a ResponseWriter (OpenAI / Anthropic streaming).
class SseWriter {
public:
    explicit SseWriter(ResponseWriter& writer) : writer_(writer) {}

    // 200 with Content-Type text/event-stream, Cache-Control no-cache, X-Accel-Buffering no,
    // plus `headers`.
    asio::awaitable<bool> start(Headers headers = {});
    // `event: <name>` (when non-empty) and one `data:` line per line of `data`, blank line.
    asio::awaitable<bool> event(std::string_view data, std::string_view name = {});
    // `: <text>` comment line (keep-alive ping).
    asio::awaitable<bool> comment(std::string_view text = "keep-alive");
    // `data: [DONE]` then finish() (the OpenAI stream terminator).
    asio::awaitable<bool> done();
    asio::awaitable<bool> finish() { return writer_.finish(); }

    ResponseWriter& writer() { return writer_; }

private:
    ResponseWriter& writer_;
};

// A route handler. It either returns a complete Response, or streams through the writer (the
// returned Response is then ignored). An exception escaping it becomes a 500 envelope with no
// internal detail (the exception is logged); a handler answering "no" returns Response::error.
using Handler = std::function<asio::awaitable<Response>(Request&, ResponseWriter&)>;
// Shorthand for handlers that never stream.
using SimpleHandler = std::function<asio::awaitable<Response>(Request&)>;

// Continues the chain (the next middleware, finally routing to the handler or the 404/405 answer).
using Next = std::function<asio::awaitable<Response>()>;
// Middleware runs for every request, in registration order, around routing + the handler:
// return co_await next() to continue (optionally adjusting the Response), or return a Response
// without calling next() to answer early (auth failure, CORS preflight).
using Middleware = std::function<asio::awaitable<Response>(Request&, ResponseWriter&, const Next&)>;

class Router {
public:
    Router();
    ~Router();
    Router(Router&&) noexcept;
    Router& operator=(Router&&) noexcept;

    // Registers `handler` for `method` ("GET", "POST", ...) on `pattern` (see the file comment).
    // Throws std::invalid_argument on a malformed pattern (start-up error).
    void add(std::string method, std::string_view pattern, Handler handler);
    void add(std::string method, std::string_view pattern, SimpleHandler handler);

    template <typename F>
    void get(std::string_view pattern, F&& handler) {
        add("GET", pattern, wrap(std::forward<F>(handler)));
    }
    template <typename F>
    void post(std::string_view pattern, F&& handler) {
        add("POST", pattern, wrap(std::forward<F>(handler)));
    }
    template <typename F>
    void put(std::string_view pattern, F&& handler) {
        add("PUT", pattern, wrap(std::forward<F>(handler)));
    }
    template <typename F>
    void del(std::string_view pattern, F&& handler) {
        add("DELETE", pattern, wrap(std::forward<F>(handler)));
    }

    // Appends a middleware to the chain.
    void use(Middleware middleware);

    // Routing outcome for a method and a raw path (without the query string).
    struct Match {
        enum class Kind { kFound, kNotFound, kMethodNotAllowed };
        Kind kind = Kind::kNotFound;
        const Handler* handler = nullptr;  // kFound only; owned by the Router
        std::string pattern;               // kFound only
        std::map<std::string, std::string, std::less<>> params;  // decoded
        std::vector<std::string> allowed;  // kMethodNotAllowed: the methods that would match
    };
    Match match(std::string_view method, std::string_view path) const;

    const std::vector<Middleware>& middleware() const;

private:
    template <typename F>
    static auto wrap(F&& f) {
        if constexpr (std::is_invocable_v<F&, Request&, ResponseWriter&>) {
            return Handler(std::forward<F>(f));
        } else {
            return SimpleHandler(std::forward<F>(f));
        }
    }

    struct Impl;
    std::unique_ptr<Impl> impl_;
};

struct ServerOptions {
    // "host:port"; port 0 picks a free port (see Server::port()). "[::1]:80" for IPv6.
    std::string listen = "127.0.0.1:0";
    // Largest accepted request body; bigger gets 413 (envelope) and the connection closes.
    int64_t max_body_bytes = 32 * 1024 * 1024;
    // Largest accepted request header block; bigger gets 400 and the connection closes.
    int64_t max_header_bytes = 64 * 1024;
    // From the first byte of a request to its complete header.
    std::chrono::milliseconds header_timeout{30'000};
    // To read the whole body once the header is in.
    std::chrono::milliseconds body_timeout{60'000};
    // How long a keep-alive connection may sit between requests.
    std::chrono::milliseconds idle_timeout{60'000};
    // How long one write to the client may take (a client that stops reading).
    std::chrono::milliseconds write_timeout{60'000};
    // How long shutdown() lets in-flight requests finish before cancelling them.
    std::chrono::milliseconds drain_timeout{10'000};
    // Value of the Server header; empty sends none.
    std::string server_name = "helexa";
    // Logger component name (helexa::log::get).
    std::string log_component = "net::server";
};

class IoPool;

class Server {
public:
    // `io` must outlive the server. The acceptor runs on io.context(); each accepted connection
    // is handed to the pool's contexts in turn and lives there until it closes. The router is
    // moved in and immutable from then on.
    Server(IoPool& io, ServerOptions options, Router router);
    ~Server();  // stops accepting and force-closes connections (use stop() first to drain)
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds and starts accepting (the pool must be started by someone). kConfig when the
    // address is malformed, kIo when the bind fails (message names the address and the cause).
    Status start();

    // The bound port (useful with port 0); 0 before start().
    uint16_t port() const;
    // "host:port" actually bound.
    std::string local_address() const;
    // Connections currently open.
    size_t connection_count() const;

    // Graceful shutdown: stop accepting, close idle keep-alive connections, let in-flight requests
    // finish for up to drain_timeout, then cancel the rest (handlers see client_gone and terminal
    // cancellation) and return once they have unwound (bounded). Safe to call more than once.
    asio::awaitable<void> shutdown();
    // Blocking form of shutdown() for main(); must not be called from an I/O thread of the pool.
    void stop();

    struct Impl;  // implementation detail (server.cpp)

private:
    std::shared_ptr<Impl> impl_;
};

// N single-threaded io_contexts, each run by its own thread (nginx's worker model): a connection
// lives on one context, so its socket, timers and coroutine never hop threads and Asio takes no
// cross-thread wake-up per reactor event (one io_context run by N threads wakes another thread
// for nearly every event: a futex and a context switch each). Each context is created with
// concurrency hint 1, which lets Asio keep handlers posted from its own thread in a thread-local
// queue; posting from other threads stays safe (locking is kept).
//
// Use: Server(pool, ...) spreads accepted connections over the contexts round-robin. Code that
// only needs "an executor" (timers, background tasks, a Client's default executor, co_spawn from
// the test thread) uses context() — the first one. Anything that blocks a thread blocks every
// connection on its context: never block an I/O thread.
//
// Thread-safety: context(), size(), start(), stop() are thread-safe; join() must not be called
// from a pool thread.
class IoPool {
public:
    // `n_threads` < 1 is taken as 1.
    explicit IoPool(int n_threads);
    ~IoPool();  // stop() + join()
    IoPool(const IoPool&) = delete;
    IoPool& operator=(const IoPool&) = delete;

    // The first context (background work, timers, co_spawn from outside).
    asio::io_context& context();
    // Context `index` (0 <= index < size()).
    asio::io_context& context(size_t index);
    // The number of contexts (= threads).
    size_t size() const;
    // Index of the context the calling thread runs, or -1 when it runs none of them.
    int current_index() const;

    // Starts the threads (idempotent). Each context keeps running while idle until stop().
    void start();
    // Stops every context: pending handlers are abandoned. Any thread.
    void stop();
    // Waits for the threads to exit. Not from a pool thread.
    void join();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Completes with the signal number once SIGINT or SIGTERM arrives (installs the handlers on first
// use, for the life of the awaiting operation). Typical main:
//   co_spawn(io, [&]() -> awaitable<void> { co_await wait_for_shutdown_signal();
//                                            co_await server.shutdown(); io_pool.stop(); }, detached);
asio::awaitable<int> wait_for_shutdown_signal();

}  // namespace helexa::net
