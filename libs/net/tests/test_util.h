// Test helpers: a fixture with a running IoPool and one Server, running coroutines to completion
// from the test thread, and a tiny blocking raw-socket client for malformed-request tests.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include "helexa/net/server.h"

namespace helexa::net::testing {

// Two I/O contexts running for the test, and the Server that serve() starts on 127.0.0.1:0;
// torn down in order (the server before the contexts, so nothing it owns is left queued).
class ServerFixture : public ::testing::Test {
protected:
    void SetUp() override { io_.start(); }
    void TearDown() override {
        if (server_) {
            server_->stop();
            server_.reset();
        }
        io_.stop();
        io_.join();
    }

    void serve(Router router, ServerOptions options = {}) {
        options.listen = "127.0.0.1:0";
        server_ = std::make_unique<Server>(io_, options, std::move(router));
        auto st = server_->start();
        ASSERT_TRUE(st) << st.error().full_message();
        ASSERT_NE(server_->port(), 0);
    }

    std::string url(std::string_view path) const {
        return "http://127.0.0.1:" + std::to_string(server_->port()) + std::string(path);
    }

    IoPool io_{2};
    std::unique_ptr<Server> server_;
};

// Runs `aw` on `io` and blocks the test thread until it completes (io must be running).
template <typename T>
T run_co(asio::io_context& io, asio::awaitable<T> aw) {
    return asio::co_spawn(io, std::move(aw), asio::use_future).get();
}

// Sends raw bytes and reads until the server closes or `max` bytes arrived (blocking, with a
// receive timeout so a hang fails the test instead of stalling it).
// With `half_close` the client shuts down its sending side after the bytes (EOF to the server).
inline std::string raw_exchange(uint16_t port, const std::string& bytes, bool half_close = false,
                                size_t max = 1 << 20) {
    asio::io_context io;
    asio::ip::tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    timeval tv{5, 0};
    setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    asio::write(s, asio::buffer(bytes));
    if (half_close) {
        s.shutdown(asio::ip::tcp::socket::shutdown_send);
    }
    std::string out;
    char buf[4096];
    boost::system::error_code ec;
    while (out.size() < max) {
        size_t n = s.read_some(asio::buffer(buf), ec);
        if (ec) {
            break;
        }
        out.append(buf, n);
    }
    return out;
}

}  // namespace helexa::net::testing
