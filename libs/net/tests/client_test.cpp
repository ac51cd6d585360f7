// Client URL handling (the fast path for plain http://host:port/path?query URLs and the full
// parser for the rest), request heads and complete responses through the pool.
#include <gtest/gtest.h>

#include "helexa/net/client.h"
#include "helexa/net/server.h"
#include "test_util.h"

namespace helexa::net {
namespace {

using testing::run_co;

class ClientTest : public ::testing::Test {
protected:
    void SetUp() override {
        Router r;
        r.get("/{path*}", [](Request& req) -> asio::awaitable<Response> {
            co_return Response::json({{"target", req.target},
                                      {"host", req.headers.get_or("host", "")},
                                      {"ua", req.headers.get_or("user-agent", "")},
                                      {"x", req.headers.get_or("x-custom", "")}});
        });
        r.get("/", [](Request& req) -> asio::awaitable<Response> {
            co_return Response::json({{"target", req.target},
                                      {"host", req.headers.get_or("host", "")},
                                      {"ua", req.headers.get_or("user-agent", "")},
                                      {"x", ""}});
        });
        r.post("/echo", [](Request& req) -> asio::awaitable<Response> {
            co_return Response::text(200, req.body, "application/octet-stream");
        });
        server_ = std::make_unique<Server>(io_, ServerOptions{}, std::move(r));
        ASSERT_TRUE(server_->start());
        io_.start();
    }
    void TearDown() override {
        server_->stop();
        server_.reset();
        io_.stop();
        io_.join();
    }

    std::string base() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

    nlohmann::json get_json(Client& c, const std::string& url, Headers headers = {}) {
        auto res = run_co(io_.context(), c.get(url, std::move(headers)));
        EXPECT_TRUE(res) << url << ": " << (res ? "" : res.error().full_message());
        if (!res) {
            return {};
        }
        EXPECT_EQ(res->status, 200) << url;
        return nlohmann::json::parse(res->body);
    }

    IoPool io_{2};
    std::unique_ptr<Server> server_;
};

TEST_F(ClientTest, TargetsHostAndDefaultsFromPlainUrls) {
    Client c(io_.context().get_executor(), {.user_agent = "ua-test"});
    const std::string host = "127.0.0.1:" + std::to_string(server_->port());
    auto j = get_json(c, base() + "/a/b?x=1&y=%20z");
    EXPECT_EQ(j["target"], "/a/b?x=1&y=%20z");
    EXPECT_EQ(j["host"], host);
    EXPECT_EQ(j["ua"], "ua-test");
    EXPECT_EQ(get_json(c, base() + "?q=1")["target"], "/?q=1");
    EXPECT_EQ(get_json(c, base())["target"], "/");
    // A fragment takes the full parser, which drops it.
    EXPECT_EQ(get_json(c, base() + "/frag#part")["target"], "/frag");
    // Caller headers win over the defaults and are sent verbatim.
    auto custom = get_json(c, base() + "/h", {{"Host", "example"}, {"X-Custom", "v1"}});
    EXPECT_EQ(custom["host"], "example");
    EXPECT_EQ(custom["x"], "v1");
    EXPECT_EQ(c.connections_opened(), 1u);  // one pooled connection served all of them
}

TEST_F(ClientTest, HostNamesAreResolved) {
    Client c(io_.context().get_executor());
    auto j = get_json(c, "http://localhost:" + std::to_string(server_->port()) + "/n");
    EXPECT_EQ(j["target"], "/n");
    EXPECT_EQ(j["host"], "localhost:" + std::to_string(server_->port()));
}

TEST_F(ClientTest, MalformedUrlsAreUpstreamErrors) {
    Client c(io_.context().get_executor());
    for (std::string bad : {base() + "/a b", std::string("http://:80/x"), std::string("ftp://h/x"),
                            std::string("not a url"), base() + "/<x>"}) {
        auto res = run_co(io_.context(), c.get(bad));
        ASSERT_FALSE(res) << bad;
        EXPECT_EQ(res.error().code(), ErrorCode::kUpstream) << bad;
    }
    EXPECT_EQ(c.connections_opened(), 0u);
}

TEST_F(ClientTest, BodiesRoundTripAndLengthIsKnown) {
    Client c(io_.context().get_executor());
    std::string big(200 * 1024, 'q');  // larger than one read piece
    big[12345] = 'Z';
    ClientRequest req;
    req.method = "POST";
    req.url = base() + "/echo";
    req.body = big;
    auto res = run_co(io_.context(), c.request(std::move(req)));
    ASSERT_TRUE(res) << res.error().full_message();
    EXPECT_EQ(res->body, big);
    EXPECT_EQ(res->headers.get_or("content-length", ""), std::to_string(big.size()));
    // An empty POST still says Content-Length: 0 and gets an empty body back.
    ClientRequest empty;
    empty.method = "POST";
    empty.url = base() + "/echo";
    auto res2 = run_co(io_.context(), c.request(std::move(empty)));
    ASSERT_TRUE(res2) << res2.error().full_message();
    EXPECT_EQ(res2->body, "");
    EXPECT_EQ(c.connections_opened(), 1u);
}

}  // namespace
}  // namespace helexa::net
