// Deadlines enforced by the per-connection watchdog (one timer per connection, re-armed rarely),
// aborting client exchanges from outside, and the coalesced last-chunk write. Real sockets on
// 127.0.0.1, port 0.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include "helexa/net/client.h"
#include "helexa/net/deadline.h"
#include "helexa/net/server.h"
#include "test_util.h"

namespace helexa::net {
namespace {

using namespace std::chrono_literals;
using testing::raw_exchange;
using testing::run_co;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

class DeadlineTest : public testing::ServerFixture {
protected:
    // Short drains: these tests stop servers with requests still running.
    void serve(Router router, ServerOptions options = {}) {
        options.drain_timeout = 500ms;
        ServerFixture::serve(std::move(router), std::move(options));
    }
};

// A blocking client socket with a receive timeout so that a hang fails instead of stalling.
tcp::socket connect_blocking(asio::io_context& io, uint16_t port) {
    tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    timeval tv{5, 0};
    setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return s;
}

// The status of a streamed exchange (StreamedResponse is not default-constructible, which
// use_future needs).
asio::awaitable<Result<int>> stream_status(Client& c, ClientRequest req) {
    auto st = co_await c.stream(std::move(req));
    if (!st) {
        co_return fail(st.error());
    }
    co_return st->status();
}

// Reads one response that carries Content-Length (enough for these tests).
std::string read_response(tcp::socket& s) {
    std::string out;
    char buf[4096];
    boost::system::error_code ec;
    for (;;) {
        auto end = out.find("\r\n\r\n");
        if (end != std::string::npos) {
            auto cl = out.find("Content-Length: ");
            size_t len = cl == std::string::npos ? 0 : std::stoul(out.substr(cl + 16));
            if (out.size() >= end + 4 + len) {
                return out;
            }
        }
        size_t n = s.read_some(asio::buffer(buf), ec);
        if (ec) {
            return out;
        }
        out.append(buf, n);
    }
}

TEST_F(DeadlineTest, IdleTimeoutLongerThanCheckPeriodFiresOnTimeNotEarly) {
    Router r;
    r.get("/x", [](Request&) -> asio::awaitable<Response> { co_return Response::text(200, "x"); });
    ServerOptions o;
    o.header_timeout = 100ms;  // the watchdog period (the shortest timeout)
    o.idle_timeout = 700ms;
    serve(std::move(r), o);
    asio::io_context io;
    auto s = connect_blocking(io, server_->port());
    const std::string req = "GET /x HTTP/1.1\r\nHost: t\r\n\r\n";
    asio::write(s, asio::buffer(req));
    ASSERT_NE(read_response(s).find("200 OK"), std::string::npos);
    // Several watchdog periods later, but within the idle timeout: still open.
    std::this_thread::sleep_for(350ms);
    asio::write(s, asio::buffer(req));
    ASSERT_NE(read_response(s).find("200 OK"), std::string::npos);
    // Idle past the timeout: the server closes (EOF), within a bounded time.
    auto start = Clock::now();
    char c = 0;
    boost::system::error_code ec;
    size_t n = s.read_some(asio::buffer(&c, 1), ec);
    auto waited = Clock::now() - start;
    EXPECT_EQ(n, 0u);
    EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
    EXPECT_GE(waited, 500ms);
    EXPECT_LT(waited, 3s);
}

TEST_F(DeadlineTest, BodyDeadlineClosesSlowUpload) {
    std::atomic<bool> handled{false};
    Router r;
    r.post("/up", [&](Request&) -> asio::awaitable<Response> {
        handled = true;
        co_return Response::text(200, "ok");
    });
    ServerOptions o;
    o.body_timeout = 200ms;
    serve(std::move(r), o);
    auto start = Clock::now();
    // Promises 100 bytes, sends 3, then goes quiet.
    auto raw = raw_exchange(server_->port(),
                            "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc");
    EXPECT_TRUE(raw.empty()) << raw;
    EXPECT_LT(Clock::now() - start, 3s);
    EXPECT_FALSE(handled.load());
}

TEST_F(DeadlineTest, StalledClientWriteTimesOut) {
    std::promise<std::pair<bool, Clock::duration>> result;  // (write failed, time to failure)
    Router r;
    r.get("/flood", [&](Request&, ResponseWriter& w) -> asio::awaitable<Response> {
        Headers headers{{"Content-Type", "application/octet-stream"}};
        co_await w.start(200, std::move(headers));
        const std::string block(256 * 1024, 'z');
        auto start = Clock::now();
        bool failed = false;
        for (int i = 0; i < 4096; ++i) {  // 1 GiB: far more than the socket buffers hold
            if (!co_await w.write(block)) {
                failed = true;
                break;
            }
            start = Clock::now();  // time from the last write that got through
        }
        result.set_value({failed, Clock::now() - start});
        co_return Response{};
    });
    ServerOptions o;
    o.write_timeout = 300ms;
    serve(std::move(r), o);
    asio::io_context io;
    auto s = connect_blocking(io, server_->port());
    const std::string req = "GET /flood HTTP/1.1\r\nHost: t\r\n\r\n";
    asio::write(s, asio::buffer(req));
    // Never read: the server's send buffer fills and its write must give up.
    auto fut = result.get_future();
    ASSERT_EQ(fut.wait_for(10s), std::future_status::ready);
    auto [failed, took] = fut.get();
    EXPECT_TRUE(failed);
    EXPECT_GE(took, 250ms);
    EXPECT_LT(took, 5s);
}

TEST_F(DeadlineTest, ClientReadTimeoutBetweenBodyPieces) {
    std::promise<void> gone;
    Router r;
    r.get("/stall", [&](Request&, ResponseWriter& w) -> asio::awaitable<Response> {
        co_await w.start(200, {});
        co_await w.write("first");
        co_await w.wait_client_gone();  // stalls: never sends the rest
        gone.set_value();
        co_return Response{};
    });
    serve(std::move(r));
    Client c(io_.context().get_executor(), {.read_timeout = 250ms});
    auto start = Clock::now();
    auto second = run_co(io_.context(), [&]() -> asio::awaitable<Result<bool>> {
        ClientRequest req{.url = url("/stall")};  // named: see client.h on GCC 12
        auto st = co_await c.stream(std::move(req));
        if (!st) {
            co_return fail(st.error());
        }
        auto first = co_await st->next();
        EXPECT_TRUE(first && first->has_value() && **first == "first");
        auto next = co_await st->next();
        if (!next) {
            co_return fail(next.error());
        }
        co_return true;
    }());
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code(), ErrorCode::kTimeout) << second.error().full_message();
    EXPECT_LT(Clock::now() - start, 3s);
    EXPECT_EQ(c.idle_connections(), 0u);
    // The timed-out connection was closed: the stalled server sees the client go.
    EXPECT_EQ(gone.get_future().wait_for(5s), std::future_status::ready);
}

TEST_F(DeadlineTest, PerRequestReadTimeoutShorterThanCheckPeriod) {
    tcp::acceptor silent(io_.context(), {asio::ip::make_address("127.0.0.1"), 0});
    tcp::socket held(io_.context());
    silent.async_accept(held, [](boost::system::error_code) {});
    // Every option is long (the watchdog period is 5 s); the request asks for 150 ms.
    Client c(io_.context().get_executor(),
             {.connect_timeout = 5s, .read_timeout = 60s, .write_timeout = 30s});
    ClientRequest req;
    req.url = "http://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/";
    req.read_timeout = 150ms;
    auto start = Clock::now();
    auto res = run_co(io_.context(), c.request(std::move(req)));
    ASSERT_FALSE(res);
    EXPECT_EQ(res.error().code(), ErrorCode::kTimeout);
    EXPECT_GE(Clock::now() - start, 100ms);
    EXPECT_LT(Clock::now() - start, 3s);
}

TEST_F(DeadlineTest, ClientAbortCancelsExchangeInFlightAndClosesUpstream) {
    std::promise<void> gone;
    Router r;
    r.get("/slow", [&](Request&, ResponseWriter& w) -> asio::awaitable<Response> {
        co_await w.wait_client_gone();  // never answers: only the hang-up ends this
        gone.set_value();
        co_return Response{};
    });
    serve(std::move(r));
    Client c(io_.context().get_executor());
    auto abort = std::make_shared<ClientAbort>();
    std::thread canceller([abort] {
        std::this_thread::sleep_for(150ms);
        abort->abort();  // from a thread that is not the io_context's
    });
    ClientRequest req;
    req.url = url("/slow");
    req.abort = abort;
    auto start = Clock::now();
    auto res = run_co(io_.context(), stream_status(c, std::move(req)));
    canceller.join();
    ASSERT_FALSE(res);
    EXPECT_EQ(res.error().code(), ErrorCode::kCancelled) << res.error().full_message();
    EXPECT_LT(Clock::now() - start, 3s);
    EXPECT_EQ(gone.get_future().wait_for(5s), std::future_status::ready);
    EXPECT_EQ(c.idle_connections(), 0u);

    // Aborted before it starts: fails at once, nothing is sent.
    auto early = std::make_shared<ClientAbort>();
    early->abort();
    ClientRequest again;
    again.url = url("/slow");
    again.abort = early;
    uint64_t opened = c.connections_opened();
    auto res2 = run_co(io_.context(), stream_status(c, std::move(again)));
    ASSERT_FALSE(res2);
    EXPECT_EQ(res2.error().code(), ErrorCode::kCancelled);
    EXPECT_EQ(c.connections_opened(), opened);
}

TEST_F(DeadlineTest, AbortAfterCompleteExchangeDoesNotTouchPooledConnection) {
    Router r;
    r.get("/x", [](Request&) -> asio::awaitable<Response> { co_return Response::text(200, "x"); });
    serve(std::move(r));
    Client c(io_.context().get_executor());
    auto abort = std::make_shared<ClientAbort>();
    ClientRequest req;
    req.url = url("/x");
    req.abort = abort;
    auto res = run_co(io_.context(), c.request(std::move(req)));
    ASSERT_TRUE(res);
    EXPECT_EQ(c.idle_connections(), 1u);
    abort->abort();  // late: the connection is back in the pool and must stay usable
    ClientRequest next{.url = url("/x")};
    auto res2 = run_co(io_.context(), c.request(std::move(next)));
    ASSERT_TRUE(res2) << res2.error().full_message();
    EXPECT_EQ(res2->body, "x");
    EXPECT_EQ(c.connections_opened(), 1u);
}

TEST_F(DeadlineTest, WriteAndFinishSendsLastChunkWithTerminator) {
    Router r;
    r.get("/s", [](Request&, ResponseWriter& w) -> asio::awaitable<Response> {
        Headers headers{{"Content-Type", "text/plain"}};
        co_await w.start(200, std::move(headers));
        co_await w.write("ab");
        co_await w.write_and_finish("cde");
        co_return Response{};
    });
    serve(std::move(r));
    auto raw = raw_exchange(server_->port(),
                            "GET /s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    auto body = raw.find("\r\n\r\n");
    ASSERT_NE(body, std::string::npos) << raw;
    EXPECT_NE(raw.find("Transfer-Encoding: chunked"), std::string::npos) << raw;
    EXPECT_EQ(raw.substr(body + 4), "2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n");
    // The client reads it back as one body and pools nothing (Connection: close aside).
    Client c(io_.context().get_executor());
    auto res = run_co(io_.context(), c.get(url("/s")));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->body, "abcde");
    EXPECT_EQ(c.idle_connections(), 1u);
}

TEST_F(DeadlineTest, HeaderValuesCannotInjectFields) {
    Router r;
    r.get("/h", [](Request&) -> asio::awaitable<Response> {
        Response resp = Response::text(200, "ok");
        resp.headers.set("X-Echo", "a\r\nX-Evil: 1");
        resp.headers.set("Bad\r\nName", "v");
        co_return resp;
    });
    serve(std::move(r));
    auto raw = raw_exchange(server_->port(),
                            "GET /h HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    EXPECT_NE(raw.find("X-Echo: a  X-Evil: 1\r\n"), std::string::npos) << raw;
    EXPECT_EQ(raw.find("\r\nX-Evil"), std::string::npos) << raw;
    EXPECT_EQ(raw.find("Bad"), std::string::npos) << raw;
    EXPECT_NE(raw.find("Content-Length: 2\r\n"), std::string::npos) << raw;
}

}  // namespace
}  // namespace helexa::net
