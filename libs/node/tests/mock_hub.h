// A local HuggingFace-compatible hub on 127.0.0.1 (real sockets): repo listings with sizes and
// sha256, file downloads honouring Range, a private repo that wants a bearer token, and a record
// of the requests it saw.
#pragma once

#include <openssl/evp.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "helexa/net/server.h"

namespace helexa::node::testing {

inline std::string sha256_hex(const std::string& data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
    std::string out;
    for (unsigned i = 0; i < n; ++i) {
        out += fmt::format("{:02x}", md[i]);
    }
    return out;
}

struct SeenRequest {
    std::string path;
    std::string authorization;
    std::string range;
};

class MockHub {
public:
    // repo "org/name" -> file -> content
    std::map<std::string, std::map<std::string, std::string>> repos;
    std::string private_repo;  // needs "Bearer good-token"
    std::string commit = "0123abcd";
    bool corrupt_sha = false;  // advertise a wrong sha256

    explicit MockHub(net::IoPool& io) : io_(io) {}
    ~MockHub() { stop(); }

    // Must run while the io_context still runs (before its pool stops).
    void stop() {
        if (server_) {
            server_->stop();
            server_.reset();
        }
    }

    void start() {
        net::Router r;
        r.get("/api/models/{org}/{name}/revision/{rev}",
              [this](net::Request& req) -> boost::asio::awaitable<net::Response> {
                  record(req);
                  std::string repo = std::string(req.path_param("org")) + "/" +
                                     std::string(req.path_param("name"));
                  if (auto denied = check_auth(req, repo)) {
                      co_return *denied;
                  }
                  auto it = repos.find(repo);
                  if (it == repos.end()) {
                      co_return net::Response::json(404, {{"error", "Repository not found"}});
                  }
                  nlohmann::json siblings = nlohmann::json::array();
                  for (const auto& [name, content] : it->second) {
                      nlohmann::json s{{"rfilename", name}, {"size", content.size()}};
                      if (name.find(".safetensors") != std::string::npos ||
                          name.find(".gguf") != std::string::npos) {
                          s["lfs"] = {{"sha256", corrupt_sha ? std::string(64, '0')
                                                             : sha256_hex(content)},
                                      {"size", content.size()}};
                      }
                      siblings.push_back(s);
                  }
                  co_return net::Response::json({{"id", repo}, {"sha", commit},
                                                 {"siblings", siblings}});
              });
        r.get("/{org}/{name}/resolve/{rev}/{file*}",
              [this](net::Request& req) -> boost::asio::awaitable<net::Response> {
                  record(req);
                  std::string repo = std::string(req.path_param("org")) + "/" +
                                     std::string(req.path_param("name"));
                  if (auto denied = check_auth(req, repo)) {
                      co_return *denied;
                  }
                  auto it = repos.find(repo);
                  std::string file(req.path_param("file"));
                  if (it == repos.end() || !it->second.contains(file)) {
                      co_return net::Response::text(404, "Entry not found");
                  }
                  const std::string& content = it->second.at(file);
                  auto range = req.header("Range");
                  if (range && range->rfind("bytes=", 0) == 0) {
                      size_t from = std::stoul(std::string(range->substr(6)));
                      if (from >= content.size()) {
                          co_return net::Response::text(416, "");
                      }
                      auto res = net::Response::text(206, content.substr(from),
                                                     "application/octet-stream");
                      res.headers.set("Content-Range", fmt::format("bytes {}-{}/{}", from,
                                                                   content.size() - 1,
                                                                   content.size()));
                      co_return res;
                  }
                  co_return net::Response::text(200, content, "application/octet-stream");
              });
        server_ = std::make_unique<net::Server>(io_, net::ServerOptions{}, std::move(r));
        auto st = server_->start();
        if (!st) {
            throw std::runtime_error(st.error().full_message());
        }
    }

    std::string endpoint() const { return fmt::format("http://127.0.0.1:{}", server_->port()); }

    std::vector<SeenRequest> seen() {
        std::lock_guard lock(mutex_);
        return seen_;
    }

private:
    void record(const net::Request& req) {
        std::lock_guard lock(mutex_);
        seen_.push_back({req.path, std::string(req.header("Authorization").value_or("")),
                         std::string(req.header("Range").value_or(""))});
    }
    std::optional<net::Response> check_auth(const net::Request& req, const std::string& repo) {
        if (repo != private_repo) {
            return std::nullopt;
        }
        if (req.header("Authorization").value_or("") != "Bearer good-token") {
            return net::Response::json(401, {{"error", "Invalid credentials"}});
        }
        return std::nullopt;
    }

    net::IoPool& io_;
    std::unique_ptr<net::Server> server_;
    std::mutex mutex_;
    std::vector<SeenRequest> seen_;
};

}  // namespace helexa::node::testing
