// One io_context per I/O thread: accepted connections spread over the pool's contexts and stay
// on theirs; a Client pools connections per context (an exchange on context B never reuses a
// socket of context A); graceful and forced shutdown reach connections on every context;
// Channel and TaskGroup work across contexts.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_future.hpp>

#include "helexa/net/channel.h"
#include "helexa/net/client.h"
#include "helexa/net/deadline.h"
#include "helexa/net/server.h"
#include "helexa/net/task_group.h"
#include "test_util.h"

namespace helexa::net {
namespace {

using namespace std::chrono_literals;
using testing::raw_exchange;
using testing::run_co;

// The body of a Connection: close request's answer ("" when there was none).
std::string body_of(const std::string& raw) {
    auto pos = raw.find("\r\n\r\n");
    return pos == std::string::npos ? std::string() : raw.substr(pos + 4);
}

std::string get_close(uint16_t port, const std::string& path) {
    return raw_exchange(port, "GET " + path + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
}

// Stores the index of the pool context it runs on, then sleeps until cancelled.
asio::awaitable<void> record_and_sleep(IoPool& io, std::atomic<int>& ran_on) {
    ran_on = io.current_index();
    co_await sleep_for(60s);
}

class IoPoolTest : public ::testing::Test {
protected:
    void SetUp() override { io_.start(); }
    void TearDown() override {
        for (auto& s : servers_) {
            s->stop();
        }
        servers_.clear();
        io_.stop();
        io_.join();
    }

    Server& serve(Router router, ServerOptions options = {}) {
        options.listen = "127.0.0.1:0";
        servers_.push_back(std::make_unique<Server>(io_, options, std::move(router)));
        auto st = servers_.back()->start();
        EXPECT_TRUE(st) << st.error().full_message();
        return *servers_.back();
    }

    static std::string url(const Server& s, std::string_view path) {
        return "http://127.0.0.1:" + std::to_string(s.port()) + std::string(path);
    }

    IoPool io_{2};
    std::vector<std::unique_ptr<Server>> servers_;
};

TEST_F(IoPoolTest, ContextsAreDistinctAndKnowTheirThread) {
    ASSERT_EQ(io_.size(), 2u);
    EXPECT_EQ(&io_.context(), &io_.context(0));
    EXPECT_NE(&io_.context(0), &io_.context(1));
    EXPECT_EQ(io_.current_index(), -1);  // the test thread runs none of them
    for (size_t i = 0; i < io_.size(); ++i) {
        auto idx = asio::co_spawn(
                       io_.context(i),
                       [this]() -> asio::awaitable<int> { co_return io_.current_index(); },
                       asio::use_future)
                       .get();
        EXPECT_EQ(idx, static_cast<int>(i));
    }
    IoPool other(1);
    other.start();
    // A thread of another pool is not one of ours.
    auto foreign = asio::co_spawn(
                       other.context(),
                       [this]() -> asio::awaitable<int> { co_return io_.current_index(); },
                       asio::use_future)
                       .get();
    EXPECT_EQ(foreign, -1);
}

TEST_F(IoPoolTest, ConnectionsLandOnEveryContextAndStayThere) {
    Router r;
    r.get("/where", [this](Request&) -> asio::awaitable<Response> {
        co_return Response::text(200, std::to_string(io_.current_index()));
    });
    Server& s = serve(std::move(r));
    std::multiset<std::string> seen;
    for (int i = 0; i < 6; ++i) {
        seen.insert(body_of(get_close(s.port(), "/where")));
    }
    // Round-robin: three connections on each context.
    EXPECT_EQ(seen.count("0"), 3u);
    EXPECT_EQ(seen.count("1"), 3u);

    // Several requests on one keep-alive connection are all answered on its context.
    std::string pipelined;
    for (int i = 0; i < 3; ++i) {
        pipelined += "GET /where HTTP/1.1\r\nHost: t\r\n\r\n";
    }
    pipelined += "GET /where HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    std::string raw = raw_exchange(s.port(), pipelined);
    size_t answers = 0;
    std::set<char> where;
    for (size_t pos = raw.find("\r\n\r\n"); pos != std::string::npos;
         pos = raw.find("\r\n\r\n", pos + 4)) {
        ++answers;
        where.insert(raw[pos + 4]);
    }
    EXPECT_EQ(answers, 4u);
    EXPECT_EQ(where.size(), 1u) << raw;
}

TEST_F(IoPoolTest, ClientPoolsConnectionsPerContext) {
    // The upstream reports which client connection (remote address) each request came on.
    Router ur;
    ur.get("/peer", [](Request& req) -> asio::awaitable<Response> {
        co_return Response::text(200, req.remote_address);
    });
    Server& upstream = serve(std::move(ur));
    Client client(io_.context().get_executor());
    const std::string u = url(upstream, "/peer");
    auto peer_from = [&](size_t ctx) {
        auto res = run_co(io_.context(ctx), client.get(u));
        EXPECT_TRUE(res) << res.error().full_message();
        return res ? res->body : std::string();
    };
    std::string a1 = peer_from(0);
    std::string b1 = peer_from(1);
    std::string a2 = peer_from(0);
    std::string b2 = peer_from(1);
    // One connection per context, each reused only by exchanges on its own context.
    EXPECT_EQ(client.connections_opened(), 2u);
    EXPECT_NE(a1, b1);
    EXPECT_EQ(a1, a2);
    EXPECT_EQ(b1, b2);
    EXPECT_EQ(client.idle_connections(), 2u);
    client.close_idle();
    EXPECT_EQ(client.idle_connections(), 0u);
}

TEST_F(IoPoolTest, ProxiedExchangeStaysOnTheConnectionsContext) {
    Router ur;
    ur.get("/peer", [](Request& req) -> asio::awaitable<Response> {
        co_return Response::text(200, req.remote_address);
    });
    Server& upstream = serve(std::move(ur));
    Client client(io_.context().get_executor());
    const std::string up = url(upstream, "/peer");
    std::mutex mutex;
    std::map<int, std::set<std::string>> peers_by_context;
    std::atomic<int> hops{0};
    Router pr;
    pr.get("/proxy", [&](Request&) -> asio::awaitable<Response> {
        int before = io_.current_index();
        ClientRequest req;
        req.url = up;
        auto res = co_await client.request(std::move(req));
        if (io_.current_index() != before) {
            ++hops;
        }
        if (!res) {
            co_return Response::error(res.error());
        }
        std::lock_guard lock(mutex);
        peers_by_context[before].insert(res->body);
        co_return Response::text(200, std::to_string(before));
    });
    Server& proxy = serve(std::move(pr));
    // Two keep-alive connections to the proxy (one per context), three requests each.
    std::string three = "GET /proxy HTTP/1.1\r\nHost: t\r\n\r\n"
                        "GET /proxy HTTP/1.1\r\nHost: t\r\n\r\n"
                        "GET /proxy HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    auto f1 = std::async(std::launch::async, [&] { return raw_exchange(proxy.port(), three); });
    auto f2 = std::async(std::launch::async, [&] { return raw_exchange(proxy.port(), three); });
    std::string r1 = f1.get();
    std::string r2 = f2.get();
    EXPECT_EQ(hops.load(), 0);  // every upstream exchange resumed on the handler's own context
    std::lock_guard lock(mutex);
    ASSERT_EQ(peers_by_context.size(), 2u) << r1 << r2;
    // Upstream connections of context 0 and of context 1 never mix.
    for (const auto& peer : peers_by_context[0]) {
        EXPECT_EQ(peers_by_context[1].count(peer), 0u) << peer;
    }
}

TEST_F(IoPoolTest, GracefulStopDrainsConnectionsOnEveryContext) {
    std::atomic<int> in_flight{0};
    std::mutex mutex;
    std::set<int> contexts;
    Router r;
    r.get("/slow", [&](Request&) -> asio::awaitable<Response> {
        {
            std::lock_guard lock(mutex);
            contexts.insert(io_.current_index());
        }
        ++in_flight;
        co_await sleep_for(300ms);
        co_return Response::text(200, "done");
    });
    ServerOptions o;
    o.drain_timeout = 3s;
    Server& s = serve(std::move(r), o);
    std::vector<std::future<std::string>> answers;
    for (int i = 0; i < 4; ++i) {
        answers.push_back(std::async(std::launch::async, [&] {
            return raw_exchange(s.port(), "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
        }));
    }
    for (int i = 0; i < 200 && in_flight.load() < 4; ++i) {
        std::this_thread::sleep_for(5ms);
    }
    ASSERT_EQ(in_flight.load(), 4);
    auto start = std::chrono::steady_clock::now();
    s.stop();
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_LT(took, 2s);
    EXPECT_EQ(s.connection_count(), 0u);
    for (auto& f : answers) {
        std::string raw = f.get();
        EXPECT_NE(raw.find("HTTP/1.1 200"), std::string::npos) << raw;
        EXPECT_NE(raw.find("Connection: close"), std::string::npos) << raw;
        EXPECT_EQ(body_of(raw), "done");
    }
    std::lock_guard lock(mutex);
    EXPECT_EQ(contexts, (std::set<int>{0, 1}));
}

TEST_F(IoPoolTest, ForcedStopCancelsHandlersOnEveryContext) {
    std::atomic<int> in_flight{0};
    std::atomic<int> cancelled{0};
    std::mutex mutex;
    std::set<int> contexts;
    Router r;
    r.get("/forever", [&](Request&, ResponseWriter& w) -> asio::awaitable<Response> {
        {
            std::lock_guard lock(mutex);
            contexts.insert(io_.current_index());
        }
        w.on_client_gone([&] { ++cancelled; });
        ++in_flight;
        co_await sleep_for(60s);
        co_return Response::text(200, "never");
    });
    ServerOptions o;
    o.drain_timeout = 200ms;
    Server& s = serve(std::move(r), o);
    std::vector<std::future<std::string>> answers;
    for (int i = 0; i < 4; ++i) {
        answers.push_back(std::async(std::launch::async, [&] {
            return raw_exchange(s.port(), "GET /forever HTTP/1.1\r\nHost: t\r\n\r\n");
        }));
    }
    for (int i = 0; i < 200 && in_flight.load() < 4; ++i) {
        std::this_thread::sleep_for(5ms);
    }
    ASSERT_EQ(in_flight.load(), 4);
    auto start = std::chrono::steady_clock::now();
    s.stop();
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_GE(took, 150ms);
    EXPECT_LT(took, 3s);
    EXPECT_EQ(cancelled.load(), 4);
    EXPECT_EQ(s.connection_count(), 0u);
    for (auto& f : answers) {
        EXPECT_EQ(f.get(), "");  // closed without an answer
    }
    std::lock_guard lock(mutex);
    EXPECT_EQ(contexts, (std::set<int>{0, 1}));
}

TEST_F(IoPoolTest, ChannelAndTaskGroupWorkAcrossContexts) {
    // The channel's executor is context 0, its consumer runs on context 1, the producer is a
    // coroutine on context 0: the consumer resumes on its own context every time.
    auto ch = std::make_shared<Channel<int>>(io_.context(0).get_executor());
    auto consumer = asio::co_spawn(
        io_.context(1),
        [this, ch]() -> asio::awaitable<std::pair<int, bool>> {
            int sum = 0;
            bool stayed = true;
            while (auto v = co_await ch->receive()) {
                sum += *v;
                stayed = stayed && io_.current_index() == 1;
            }
            co_return std::make_pair(sum, stayed);
        },
        asio::use_future);
    asio::co_spawn(
        io_.context(0),
        [ch]() -> asio::awaitable<void> {
            for (int i = 1; i <= 100; ++i) {
                ch->push(i);
                if (i % 10 == 0) {
                    co_await sleep_for(1ms);
                }
            }
            ch->close();
        },
        asio::detached);
    auto [sum, stayed] = consumer.get();
    EXPECT_EQ(sum, 5050);
    EXPECT_TRUE(stayed);

    // A task group on context 1, cancelled and awaited from context 0.
    TaskGroup group(io_.context(1).get_executor());
    std::atomic<int> ran_on{-2};
    group.spawn(record_and_sleep(io_, ran_on));
    for (int i = 0; i < 200 && ran_on.load() == -2; ++i) {
        std::this_thread::sleep_for(5ms);
    }
    EXPECT_EQ(ran_on.load(), 1);
    group.cancel_all();
    EXPECT_TRUE(run_co(io_.context(0), group.wait(2s)));
    EXPECT_EQ(group.size(), 0u);
}

}  // namespace
}  // namespace helexa::net
