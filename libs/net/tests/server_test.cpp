// Server and client over real sockets on 127.0.0.1 (port 0): routing, envelopes, keep-alive,
// pooling, streaming, hang-up detection, shutdown, timeouts.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "helexa/net/channel.h"
#include "helexa/net/client.h"
#include "helexa/net/deadline.h"
#include "helexa/net/server.h"
#include "helexa/net/sse.h"
#include "test_util.h"

namespace helexa::net {
namespace {

using namespace std::chrono_literals;
using testing::raw_exchange;
using testing::run_co;

class ServerTest : public testing::ServerFixture {
protected:
    Result<ClientResponse> get(Client& c, std::string_view path) {
        return run_co(io_.context(), c.get(url(path)));
    }
};

asio::awaitable<Response> echo_params(Request& req) {
    nlohmann::json j;
    j["route"] = req.route;
    for (const auto& [k, v] : req.path_params) {
        j["params"][k] = v;
    }
    if (auto beta = req.query_param("beta")) {
        j["beta"] = std::string(*beta);
    }
    co_return Response::json(j);
}

TEST(Router, MatchesLiteralParamAndCatchAll) {
    Router r;
    r.get("/models", echo_params);
    r.get("/models/{id}", echo_params);
    r.get("/models/{id*}/endpoint", echo_params);
    r.get("/files/{path*}", echo_params);
    r.post("/models/load", echo_params);

    auto m = r.match("GET", "/models/Qwen/Qwen3-8B/endpoint");
    ASSERT_EQ(m.kind, Router::Match::Kind::kFound);
    EXPECT_EQ(m.pattern, "/models/{id*}/endpoint");
    EXPECT_EQ(m.params["id"], "Qwen/Qwen3-8B");

    m = r.match("GET", "/models/Qwen%2FQwen3-8B");
    ASSERT_EQ(m.kind, Router::Match::Kind::kFound);
    EXPECT_EQ(m.pattern, "/models/{id}");
    EXPECT_EQ(m.params["id"], "Qwen/Qwen3-8B");

    m = r.match("GET", "/files/a/b/c.txt");
    ASSERT_EQ(m.kind, Router::Match::Kind::kFound);
    EXPECT_EQ(m.params["path"], "a/b/c.txt");

    m = r.match("GET", "/models/load");  // literal POST route exists, GET param route wins
    ASSERT_EQ(m.kind, Router::Match::Kind::kFound);
    EXPECT_EQ(m.pattern, "/models/{id}");

    EXPECT_EQ(r.match("GET", "/models//endpoint").kind, Router::Match::Kind::kNotFound);
    EXPECT_EQ(r.match("GET", "/nothing").kind, Router::Match::Kind::kNotFound);
    EXPECT_EQ(r.match("HEAD", "/models").kind, Router::Match::Kind::kFound);

    m = r.match("DELETE", "/models/load");
    ASSERT_EQ(m.kind, Router::Match::Kind::kMethodNotAllowed);
    EXPECT_NE(std::find(m.allowed.begin(), m.allowed.end(), "POST"), m.allowed.end());

    EXPECT_THROW(r.get("no-slash", echo_params), std::invalid_argument);
    EXPECT_THROW(r.get("/a/{x*}/{y*}", echo_params), std::invalid_argument);
    EXPECT_THROW(r.get("/a/b{x}", echo_params), std::invalid_argument);
}

TEST(Headers, CaseInsensitive) {
    Headers h{{"Content-Type", "a"}, {"X-Dup", "1"}, {"x-dup", "2"}};
    EXPECT_EQ(h.get("content-type").value(), "a");
    EXPECT_EQ(h.get("X-DUP").value(), "1");
    h.set("X-Dup", "3");
    EXPECT_EQ(h.size(), 2u);
    EXPECT_EQ(h.get("x-dup").value(), "3");
    EXPECT_EQ(h.remove("CONTENT-TYPE"), 1u);
    EXPECT_FALSE(h.contains("content-type"));
    EXPECT_EQ(parse_query("a=1&b=x%20y+z&c").at(1).second, "x y z");
}

TEST_F(ServerTest, PathParamsCatchAllAndQuery) {
    Router r;
    r.get("/models/{id*}/endpoint", echo_params);
    r.post("/v1/messages", echo_params);
    serve(std::move(r));
    Client c(io_.context().get_executor());
    auto res = get(c, "/models/Qwen/Qwen3-8B/endpoint");
    ASSERT_TRUE(res) << res.error().full_message();
    EXPECT_EQ(res->status, 200);
    auto j = res->json().value();
    EXPECT_EQ(j["params"]["id"], "Qwen/Qwen3-8B");
    EXPECT_EQ(j["route"], "/models/{id*}/endpoint");

    auto post = run_co(io_.context(), c.post_json(url("/v1/messages?beta=true"), {{"x", 1}}));
    ASSERT_TRUE(post);
    EXPECT_EQ(post->status, 200);
    EXPECT_EQ(post->json().value()["beta"], "true");
}

TEST_F(ServerTest, JsonRoundTripAndRequestFields) {
    Router r;
    r.post("/echo", [](Request& req) -> asio::awaitable<Response> {
        auto body = req.json_body();
        if (!body) {
            co_return Response::error(body.error());
        }
        (*body)["seen_header"] = std::string(req.header("x-custom").value_or("missing"));
        (*body)["remote_is_loopback"] = req.remote_address.rfind("127.0.0.1:", 0) == 0;
        co_return Response::json(201, *body);
    });
    serve(std::move(r));
    Client c(io_.context().get_executor());
    nlohmann::json in = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "héllo"}}}}};
    auto res = run_co(io_.context(), c.post_json(url("/echo"), in, {{"X-Custom", "v"}}));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 201);
    EXPECT_EQ(res->headers.get("content-type").value(), "application/json");
    auto out = res->json().value();
    EXPECT_EQ(out["messages"], in["messages"]);
    EXPECT_EQ(out["seen_header"], "v");
    EXPECT_EQ(out["remote_is_loopback"], true);

    ClientRequest bad{.method = "POST", .url = url("/echo"), .body = "{not json"};
    auto res2 = run_co(io_.context(), c.request(bad));
    ASSERT_TRUE(res2);
    EXPECT_EQ(res2->status, 400);
    EXPECT_EQ(res2->json().value()["error"]["code"], "invalid_json");
}

TEST_F(ServerTest, NotFoundMethodNotAllowedAndRetryAfterAreEnvelopes) {
    Router r;
    r.get("/health", [](Request&) -> asio::awaitable<Response> {
        co_return Response::json({{"ok", true}});
    });
    r.get("/busy", [](Request&) -> asio::awaitable<Response> {
        co_return Response::error(service_unavailable_error("loading", 7));
    });
    serve(std::move(r));
    Client c(io_.context().get_executor());

    auto nf = get(c, "/nope");
    ASSERT_TRUE(nf);
    EXPECT_EQ(nf->status, 404);
    auto j = nf->json().value();
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
    EXPECT_TRUE(j["error"]["message"].get<std::string>().find("/nope") != std::string::npos);

    auto na = run_co(io_.context(), c.post_json(url("/health"), {}));
    ASSERT_TRUE(na);
    EXPECT_EQ(na->status, 405);
    EXPECT_EQ(na->json().value()["error"]["code"], "method_not_allowed");
    EXPECT_EQ(na->headers.get("allow").value(), "GET, HEAD");

    auto busy = get(c, "/busy");
    ASSERT_TRUE(busy);
    EXPECT_EQ(busy->status, 503);
    EXPECT_EQ(busy->headers.get("retry-after").value(), "7");
    EXPECT_EQ(busy->json().value()["error"]["code"], "service_unavailable");
}

TEST_F(ServerTest, BodyOverLimitIs413) {
    Router r;
    r.post("/upload", [](Request& req) -> asio::awaitable<Response> {
        co_return Response::json({{"size", req.body.size()}});
    });
    ServerOptions o;
    o.max_body_bytes = 1024;
    serve(std::move(r), o);
    Client c(io_.context().get_executor());
    ClientRequest small{.method = "POST", .url = url("/upload"), .body = std::string(1000, 'a')};
    auto ok_res = run_co(io_.context(), c.request(small));
    ASSERT_TRUE(ok_res);
    EXPECT_EQ(ok_res->status, 200);

    ClientRequest big{.method = "POST", .url = url("/upload"), .body = std::string(5000, 'a')};
    auto res = run_co(io_.context(), c.request(big));
    ASSERT_TRUE(res) << res.error().full_message();
    EXPECT_EQ(res->status, 413);
    EXPECT_EQ(res->json().value()["error"]["code"], "payload_too_large");

    // Chunked body over the limit (no Content-Length up front).
    std::string chunked =
        "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "800\r\n" + std::string(2048, 'b') + "\r\n0\r\n\r\n";
    auto raw = raw_exchange(server_->port(), chunked);
    EXPECT_EQ(raw.rfind("HTTP/1.1 413", 0), 0u) << raw;
}

TEST_F(ServerTest, MalformedRequestsGet400OrClose) {
    Router r;
    r.get("/", [](Request&) -> asio::awaitable<Response> { co_return Response::empty(204); });
    serve(std::move(r));
    auto raw = raw_exchange(server_->port(), "GARBAGE\r\n\r\n");
    EXPECT_EQ(raw.rfind("HTTP/1.1 400", 0), 0u) << raw;
    EXPECT_NE(raw.find("invalid_request_error"), std::string::npos);

    raw = raw_exchange(server_->port(), "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n");
    EXPECT_EQ(raw.rfind("HTTP/1.1 400", 0), 0u) << raw;

    raw = raw_exchange(server_->port(), "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(raw.rfind("HTTP/1.1 400", 0), 0u) << raw;

    // Truncated request then close: no answer, no crash; the server keeps serving.
    raw = raw_exchange(server_->port(), "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab", true);
    EXPECT_TRUE(raw.empty()) << raw;
    Client c(io_.context().get_executor());
    auto res = get(c, "/");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 204);
}

TEST_F(ServerTest, HeaderDeadlineClosesSilentConnection) {
    Router r;
    ServerOptions o;
    o.header_timeout = 200ms;
    serve(std::move(r), o);
    auto start = std::chrono::steady_clock::now();
    auto raw = raw_exchange(server_->port(), "GET / HTTP/1.1\r\n");  // never finishes the header
    EXPECT_TRUE(raw.empty());
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

TEST_F(ServerTest, KeepAliveTwoRequestsOneConnectionAndHead) {
    Router r;
    r.get("/a", [](Request&) -> asio::awaitable<Response> {
        co_return Response::text(200, "hello");
    });
    serve(std::move(r));
    auto raw = raw_exchange(server_->port(),
                            "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                            "HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n"
                            "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    size_t first = raw.find("HTTP/1.1 200");
    size_t second = raw.find("HTTP/1.1 200", first + 1);
    size_t third = raw.find("HTTP/1.1 200", second + 1);
    ASSERT_NE(third, std::string::npos) << raw;
    // HEAD: Content-Length of the body, no body before the next response.
    std::string head_part = raw.substr(second, third - second);
    EXPECT_NE(head_part.find("Content-Length: 5"), std::string::npos) << head_part;
    EXPECT_EQ(head_part.find("hello"), std::string::npos) << head_part;
    EXPECT_EQ(raw.substr(raw.size() - 5), "hello");
}

TEST_F(ServerTest, ClientPoolReusesConnection) {
    Router r;
    r.get("/x", [](Request&) -> asio::awaitable<Response> { co_return Response::text(200, "x"); });
    serve(std::move(r));
    Client c(io_.context().get_executor());
    for (int i = 0; i < 3; ++i) {
        auto res = get(c, "/x");
        ASSERT_TRUE(res);
        EXPECT_EQ(res->body, "x");
    }
    EXPECT_EQ(c.connections_opened(), 1u);
    EXPECT_EQ(c.idle_connections(), 1u);
    // The server closing the idle connection is survived by reconnecting.
    c.close_idle();
    auto res = get(c, "/x");
    ASSERT_TRUE(res);
    EXPECT_EQ(c.connections_opened(), 2u);
}

TEST_F(ServerTest, StaleIdleConnectionIsRetried) {
    Router r;
    r.get("/x", [](Request&) -> asio::awaitable<Response> { co_return Response::text(200, "x"); });
    ServerOptions o;
    o.idle_timeout = 100ms;  // the server drops idle keep-alive connections quickly
    serve(std::move(r), o);
    Client c(io_.context().get_executor());
    ASSERT_TRUE(get(c, "/x"));
    std::this_thread::sleep_for(300ms);
    auto res = get(c, "/x");
    ASSERT_TRUE(res) << res.error().full_message();
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(c.connections_opened(), 2u);
}

TEST_F(ServerTest, StreamedResponseArrivesChunkByChunk) {
    auto gate = std::make_shared<Channel<int>>(io_.context().get_executor());
    Router r;
    r.get("/stream", [gate](Request&, ResponseWriter& w) -> asio::awaitable<Response> {
        SseWriter sse(w);
        co_await sse.start();
        for (int i = 0; i < 3; ++i) {
            // Each event waits for the test to have read the previous one: proves the client
            // sees pieces as they are produced, not at the end.
            auto go = co_await gate->receive();
            if (!go) {
                break;
            }
            std::string data = "{\"i\":" + std::to_string(i) + "}";
            co_await sse.event(data, "delta");
        }
        co_await sse.done();
        co_return Response{};
    });
    serve(std::move(r));
    Client c(io_.context().get_executor());
    auto events = run_co(io_.context(), [&]() -> asio::awaitable<std::vector<std::string>> {
        std::vector<std::string> got;
        ClientRequest req{.url = url("/stream")};  // named: see client.h on GCC 12
        auto st = co_await c.stream(std::move(req));
        EXPECT_TRUE(st);
        if (!st) {
            co_return got;
        }
        EXPECT_EQ(st->status(), 200);
        EXPECT_EQ(st->headers().get("content-type").value(), "text/event-stream");
        EXPECT_EQ(st->headers().get("transfer-encoding").value(), "chunked");
        SseParser parser;
        for (int i = 0; i < 3; ++i) {
            gate->push(i);
            std::vector<SseEvent> evs;
            while (evs.empty()) {
                auto piece = co_await st->next();
                EXPECT_TRUE(piece && piece->has_value());
                if (!piece || !piece->has_value()) {
                    co_return got;
                }
                parser.feed(**piece, evs);
            }
            for (auto& e : evs) {
                got.push_back(e.event + ":" + e.data);
            }
        }
        auto rest = co_await st->read_all();
        EXPECT_TRUE(rest);
        for (auto& e : parser.feed(*rest)) {
            got.push_back(e.event + ":" + e.data);
        }
        co_return got;
    }());
    std::vector<std::string> expected = {"delta:{\"i\":0}", "delta:{\"i\":1}", "delta:{\"i\":2}",
                                         ":[DONE]"};
    EXPECT_EQ(events, expected);
    EXPECT_EQ(c.idle_connections(), 1u);  // a fully read stream goes back to the pool
}

TEST_F(ServerTest, ClientHangUpIsObservedByHandler) {
    std::promise<std::pair<bool, bool>> observed;  // (saw gone while waiting, write returned false)
    std::atomic<bool> callback_ran{false};
    Router r;
    r.get("/stream", [&](Request&, ResponseWriter& w) -> asio::awaitable<Response> {
        using namespace asio::experimental::awaitable_operators;
        w.on_client_gone([&] { callback_ran = true; });
        // (A braced Headers list inside a co_await expression trips a GCC 12 coroutine bug.)
        Headers headers{{"Content-Type", "text/plain"}};
        co_await w.start(200, std::move(headers));
        co_await w.write("first");
        // Wait for the hang-up while "waiting on something else" (a long timer).
        asio::steady_timer upstream(co_await asio::this_coro::executor, 10s);
        auto which = co_await (w.wait_client_gone() || upstream.async_wait(asio::use_awaitable));
        bool saw_gone = which.index() == 0 && w.client_gone();
        bool write_ok = co_await w.write("after");
        observed.set_value({saw_gone, write_ok});
        co_return Response{};
    });
    serve(std::move(r));
    Client c(io_.context().get_executor());
    run_co(io_.context(), [&]() -> asio::awaitable<void> {
        ClientRequest req{.url = url("/stream")};  // named: see client.h on GCC 12
        auto st = co_await c.stream(std::move(req));
        EXPECT_TRUE(st);
        auto piece = co_await st->next();
        EXPECT_TRUE(piece && piece->has_value() && **piece == "first");
        st->close();  // hang up mid-stream
    }());
    auto fut = observed.get_future();
    ASSERT_EQ(fut.wait_for(5s), std::future_status::ready);
    auto [saw_gone, write_ok] = fut.get();
    EXPECT_TRUE(saw_gone);
    EXPECT_FALSE(write_ok);
    EXPECT_TRUE(callback_ran.load());
    EXPECT_EQ(c.idle_connections(), 0u);  // a closed stream is never pooled
}

TEST_F(ServerTest, HandlerExceptionIs500WithoutDetail) {
    Router r;
    r.get("/boom", [](Request&) -> asio::awaitable<Response> {
        throw std::runtime_error("secret internal detail");
        co_return Response{};
    });
    serve(std::move(r));
    Client c(io_.context().get_executor());
    auto res = get(c, "/boom");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 500);
    EXPECT_EQ(res->body.find("secret"), std::string::npos);
    EXPECT_EQ(res->json().value()["error"]["type"], "api_error");
    EXPECT_TRUE(get(c, "/boom"));  // the connection survived
}

TEST_F(ServerTest, MiddlewareChainRunsInOrderAndCanShortCircuit) {
    Router r;
    auto order = std::make_shared<std::vector<std::string>>();
    r.use([order](Request& req, ResponseWriter& w, const Next& next) -> asio::awaitable<Response> {
        order->push_back("trace:" + req.route);
        w.extra_headers().set("X-Request-Id", "abc");
        Response resp = co_await next();
        order->push_back("trace-done:" + std::to_string(resp.status));
        co_return resp;
    });
    r.use([order](Request& req, ResponseWriter&, const Next& next) -> asio::awaitable<Response> {
        order->push_back("auth");
        if (req.header("authorization") != std::optional<std::string_view>("Bearer k")) {
            co_return Response::error(invalid_api_key_error());
        }
        req.locals["identity"] = std::string("alice");
        co_return co_await next();
    });
    r.get("/me", [order](Request& req) -> asio::awaitable<Response> {
        order->push_back("handler");
        co_return Response::text(200, std::any_cast<std::string>(req.locals["identity"]));
    });
    serve(std::move(r));
    Client c(io_.context().get_executor());
    auto denied = get(c, "/me");
    ASSERT_TRUE(denied);
    EXPECT_EQ(denied->status, 401);
    EXPECT_EQ(denied->headers.get("x-request-id").value(), "abc");
    auto allowed = run_co(io_.context(), c.get(url("/me"), {{"Authorization", "Bearer k"}}));
    ASSERT_TRUE(allowed);
    EXPECT_EQ(allowed->body, "alice");
    std::vector<std::string> expected = {"trace:/me", "auth", "trace-done:401", "trace:/me",
                                         "auth",      "handler", "trace-done:200"};
    EXPECT_EQ(*order, expected);
}

TEST_F(ServerTest, ShutdownDrainsInFlightRequest) {
    Router r;
    r.get("/slow", [](Request&) -> asio::awaitable<Response> {
        co_await sleep_for(300ms);
        co_return Response::text(200, "done");
    });
    ServerOptions o;
    o.drain_timeout = 3s;
    serve(std::move(r), o);
    Client c(io_.context().get_executor());
    auto fut = asio::co_spawn(io_.context(), c.get(url("/slow")), asio::use_future);
    std::this_thread::sleep_for(100ms);  // the request is in flight
    auto start = std::chrono::steady_clock::now();
    server_->stop();
    auto took = std::chrono::steady_clock::now() - start;
    auto res = fut.get();
    ASSERT_TRUE(res) << res.error().full_message();
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->body, "done");
    EXPECT_EQ(res->headers.get("connection").value_or(""), "close");
    EXPECT_LT(took, 2s);
    EXPECT_EQ(server_->connection_count(), 0u);
    // No longer accepting.
    auto after = get(c, "/slow");
    EXPECT_FALSE(after);
}

TEST_F(ServerTest, ShutdownCancelsRequestsPastTheDrainTime) {
    std::atomic<bool> cancelled{false};
    Router r;
    r.get("/forever", [&](Request&, ResponseWriter& w) -> asio::awaitable<Response> {
        w.on_client_gone([&] { cancelled = true; });
        try {
            co_await sleep_for(60s);
        } catch (const boost::system::system_error&) {
            cancelled = true;
            throw;
        }
        co_return Response::text(200, "never");
    });
    ServerOptions o;
    o.drain_timeout = 300ms;
    serve(std::move(r), o);
    Client c(io_.context().get_executor());
    auto fut = asio::co_spawn(io_.context(), c.get(url("/forever")), asio::use_future);
    std::this_thread::sleep_for(100ms);
    auto start = std::chrono::steady_clock::now();
    server_->stop();
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_GE(took, 250ms);
    EXPECT_LT(took, 3s);
    EXPECT_TRUE(cancelled.load());
    auto res = fut.get();
    EXPECT_FALSE(res);  // the connection was closed without an answer
    EXPECT_EQ(server_->connection_count(), 0u);
}

TEST_F(ServerTest, ClientConnectRefusedIsUpstreamError) {
    Router r;
    serve(std::move(r));
    uint16_t dead_port = 0;
    {
        asio::ip::tcp::acceptor a(io_.context(), {asio::ip::make_address("127.0.0.1"), 0});
        dead_port = a.local_endpoint().port();
    }  // closed: nothing listens there now
    Client c(io_.context().get_executor(), {.connect_timeout = 1s});
    auto res = run_co(io_.context(),
                      c.get("http://127.0.0.1:" + std::to_string(dead_port) + "/x"));
    ASSERT_FALSE(res);
    EXPECT_EQ(res.error().code(), ErrorCode::kUpstream);
    auto bad = run_co(io_.context(), c.get("https://127.0.0.1/x"));
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code(), ErrorCode::kUpstream);
}

TEST_F(ServerTest, ClientReadTimeoutOnSilentServer) {
    // A listener that accepts and never answers.
    asio::ip::tcp::acceptor silent(io_.context(), {asio::ip::make_address("127.0.0.1"), 0});
    asio::ip::tcp::socket held(io_.context());
    silent.async_accept(held, [](boost::system::error_code) {});
    Client c(io_.context().get_executor(), {.read_timeout = 200ms});
    auto start = std::chrono::steady_clock::now();
    auto res = run_co(io_.context(), c.get("http://127.0.0.1:" +
                                           std::to_string(silent.local_endpoint().port()) + "/"));
    ASSERT_FALSE(res);
    EXPECT_EQ(res.error().code(), ErrorCode::kTimeout);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
    EXPECT_EQ(c.idle_connections(), 0u);
}

TEST_F(ServerTest, ClientCancellationClosesUpstream) {
    std::promise<void> gone;
    Router r;
    r.get("/slow", [&](Request&, ResponseWriter& w) -> asio::awaitable<Response> {
        co_await w.start(200, {});
        co_await w.write("x");
        co_await w.wait_client_gone();
        gone.set_value();
        co_return Response{};
    });
    serve(std::move(r));
    Client c(io_.context().get_executor());
    auto timed_out = run_co(io_.context(), [&]() -> asio::awaitable<bool> {
        ClientRequest req{.url = url("/slow")};  // named: see client.h on GCC 12
        auto st = co_await c.stream(std::move(req));
        EXPECT_TRUE(st);
        auto first = co_await st->next();
        EXPECT_TRUE(first && first->has_value());
        // The next piece never comes: lose the race against a deadline.
        auto r2 = co_await with_timeout(st->next(), 200ms);
        co_return !r2.has_value();
    }());
    EXPECT_TRUE(timed_out);
    EXPECT_EQ(gone.get_future().wait_for(5s), std::future_status::ready);
    EXPECT_EQ(c.idle_connections(), 0u);
}

}  // namespace
}  // namespace helexa::net
