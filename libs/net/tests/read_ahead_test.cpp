// The hang-up watch reads ahead: while a handler that asked about hang-ups runs, the server's
// next read from the client is already in flight, and the connection loop adopts it as the wait
// for the next request. Pipelined bytes that arrive during the handler are served, a hang-up is
// still seen, an idle adopted read ends promptly on shutdown, and a pool torn down with the read
// in flight leaks nothing (LeakSanitizer checks the last one).
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include "helexa/net/deadline.h"
#include "helexa/net/server.h"
#include "test_util.h"

namespace helexa::net {
namespace {

using namespace std::chrono_literals;
using testing::raw_exchange;

// GET /watched?ms=N: asks for the hang-up watch, sleeps N ms, answers "gone" or "n<count>".
Router watched_router(std::atomic<int>& served, std::atomic<int>& gone) {
    Router r;
    r.get("/watched", [&served, &gone](Request& req,
                                       ResponseWriter& w) -> asio::awaitable<Response> {
        w.on_client_gone([&gone] { ++gone; });
        int ms = std::stoi(std::string(req.query_param("ms").value_or("0")));
        if (ms > 0) {
            co_await sleep_for(std::chrono::milliseconds(ms));
        }
        int n = ++served;
        co_return Response::text(200, w.client_gone() ? "gone" : "n" + std::to_string(n));
    });
    return r;
}

class ReadAheadTest : public testing::ServerFixture {
protected:
    std::atomic<int> served_{0};
    std::atomic<int> gone_{0};
};

TEST_F(ReadAheadTest, RequestArrivingDuringAWatchedHandlerIsServed) {
    serve(watched_router(served_, gone_));
    asio::io_context cio;
    asio::ip::tcp::socket s(cio);
    s.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
    timeval tv{5, 0};
    setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    // The second request arrives while the first handler sleeps (the read ahead takes it), the
    // third after both answers (the loop adopted a fresh read ahead), the last closes.
    asio::write(s, asio::buffer(std::string("GET /watched?ms=150 HTTP/1.1\r\nHost: t\r\n\r\n")));
    std::this_thread::sleep_for(50ms);
    asio::write(s, asio::buffer(std::string("GET /watched HTTP/1.1\r\nHost: t\r\n\r\n")));
    std::string out;
    char buf[4096];
    boost::system::error_code ec;
    while (out.find("n2") == std::string::npos) {
        size_t n = s.read_some(asio::buffer(buf), ec);
        ASSERT_FALSE(ec) << ec.message() << " after: " << out;
        out.append(buf, n);
    }
    std::this_thread::sleep_for(50ms);
    asio::write(s, asio::buffer(std::string(
                       "GET /watched HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")));
    for (;;) {
        size_t n = s.read_some(asio::buffer(buf), ec);
        if (ec) {
            break;
        }
        out.append(buf, n);
    }
    EXPECT_NE(out.find("n1"), std::string::npos) << out;
    EXPECT_LT(out.find("n1"), out.find("n2")) << out;
    EXPECT_NE(out.find("n3"), std::string::npos) << out;
    EXPECT_EQ(out.find("gone"), std::string::npos) << out;
    EXPECT_EQ(gone_.load(), 0);
}

TEST_F(ReadAheadTest, HangUpDuringAWatchedHandlerIsSeen) {
    serve(watched_router(served_, gone_));
    {
        asio::io_context cio;
        asio::ip::tcp::socket s(cio);
        s.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
        const std::string req = "GET /watched?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n";
        asio::write(s, asio::buffer(req));
        std::this_thread::sleep_for(50ms);
    }  // closed mid-request
    for (int i = 0; i < 200 && served_.load() == 0; ++i) {
        std::this_thread::sleep_for(5ms);
    }
    EXPECT_EQ(gone_.load(), 1);
    EXPECT_EQ(served_.load(), 1);
    for (int i = 0; i < 200 && server_->connection_count() > 0; ++i) {
        std::this_thread::sleep_for(5ms);
    }
    EXPECT_EQ(server_->connection_count(), 0u);
}

TEST_F(ReadAheadTest, GracefulStopEndsAnIdleAdoptedRead) {
    ServerOptions o;
    o.drain_timeout = 5s;
    serve(watched_router(served_, gone_), o);
    asio::io_context cio;
    asio::ip::tcp::socket s(cio);
    s.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
    timeval tv{5, 0};
    setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    asio::write(s, asio::buffer(std::string("GET /watched HTTP/1.1\r\nHost: t\r\n\r\n")));
    std::string out;
    char buf[4096];
    boost::system::error_code ec;
    while (out.find("n1") == std::string::npos) {
        size_t n = s.read_some(asio::buffer(buf), ec);
        ASSERT_FALSE(ec) << ec.message();
        out.append(buf, n);
    }
    ASSERT_EQ(server_->connection_count(), 1u);  // idle, waiting in the adopted read ahead
    auto start = std::chrono::steady_clock::now();
    server_->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);  // not the drain timeout
    EXPECT_EQ(server_->connection_count(), 0u);
    size_t n = s.read_some(asio::buffer(buf), ec);
    EXPECT_TRUE(ec || n == 0);  // closed by the server
}

TEST(ReadAheadTeardown, PoolStoppedWithTheReadInFlightLeaksNothing) {
    std::atomic<int> served{0};
    std::atomic<int> gone{0};
    IoPool io(2);
    io.start();
    auto server = std::make_unique<Server>(io, ServerOptions{}, watched_router(served, gone));
    ASSERT_TRUE(server->start());
    // Two keep-alive connections left idle in their adopted reads ahead (one per context).
    asio::io_context cio;
    std::vector<std::unique_ptr<asio::ip::tcp::socket>> clients;
    for (int i = 0; i < 2; ++i) {
        auto s = std::make_unique<asio::ip::tcp::socket>(cio);
        s->connect({asio::ip::make_address("127.0.0.1"), server->port()});
        asio::write(*s, asio::buffer(std::string("GET /watched HTTP/1.1\r\nHost: t\r\n\r\n")));
        char buf[1024];
        std::string out;
        boost::system::error_code ec;
        while (out.find("\r\n\r\nn") == std::string::npos) {
            size_t n = s->read_some(asio::buffer(buf), ec);
            ASSERT_FALSE(ec);
            out.append(buf, n);
        }
        clients.push_back(std::move(s));
    }
    EXPECT_EQ(server->connection_count(), 2u);
    // No graceful stop: the contexts stop with both reads pending, then everything is torn down.
    io.stop();
    io.join();
    server.reset();
    EXPECT_EQ(served.load(), 2);
}

}  // namespace
}  // namespace helexa::net
