#include "cli_client.h"

#include <cstdio>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "helexa/common/result.h"
#include "helexa/net/client.h"

namespace helexa::apps {
namespace {

namespace asio = boost::asio;

std::string trim_slash(std::string s) {
    while (!s.empty() && s.back() == '/') {
        s.pop_back();
    }
    return s;
}

// One blocking GET for a CLI verb; the io_context lives for this call only.
Result<nlohmann::json> fetch_json(const std::string& url) {
    asio::io_context io;
    net::Client client(io.get_executor(), {.connect_timeout = std::chrono::seconds(3),
                                           .read_timeout = std::chrono::seconds(10)});
    auto fut = asio::co_spawn(
        io, [&]() -> asio::awaitable<Result<nlohmann::json>> {
            auto res = co_await client.get(url);
            if (!res) {
                co_return tl::unexpected(res.error());
            }
            if (res->status != 200) {
                co_return fail(ErrorCode::kUpstream,
                               fmt::format("{} answered {}: {}", url, res->status, res->body));
            }
            co_return res->json();
        },
        asio::use_future);
    io.run();
    return fut.get();
}

int report(const Error& e) {
    std::fprintf(stderr, "cortex: %s\n", e.full_message().c_str());
    return 1;
}

std::string str(const nlohmann::json& j) {
    if (j.is_string()) {
        return j.get<std::string>();
    }
    if (j.is_null()) {
        return "-";
    }
    return j.dump();
}

}  // namespace

int cortex_status(const std::string& endpoint) {
    auto fleet = fetch_json(trim_slash(endpoint) + "/v1/fleet");
    if (!fleet) {
        return report(fleet.error());
    }
    fmt::print("{:<16} {:<8} {:<30} {:<12} {}\n", "NODE", "HEALTH", "ENDPOINT", "ACTIVATION",
               "DEVICES");
    for (const auto& n : fleet->value("nodes", nlohmann::json::array())) {
        std::string devices;
        for (const auto& d : n.value("devices", nlohmann::json::array())) {
            devices += fmt::format("{}[{}] {} MiB  ", str(d.value("name", nlohmann::json())),
                                   d.value("index", 0), d.value("vram_total_mb", 0));
        }
        fmt::print("{:<16} {:<8} {:<30} {:<12} {}\n", str(n.value("name", nlohmann::json())),
                   n.value("healthy", false) ? "healthy" : "DOWN",
                   str(n.value("endpoint", nlohmann::json())),
                   str(n.value("activation", nlohmann::json())),
                   devices.empty() ? "cpu" : devices);
        for (const auto& m : n.value("models", nlohmann::json::array())) {
            fmt::print("    {:<40} {:<11} in_flight={} queue={}\n",
                       str(m.value("id", nlohmann::json())),
                       str(m.value("status", nlohmann::json())), m.value("in_flight", 0),
                       m.value("queue_depth", 0));
        }
    }
    return 0;
}

int cortex_models(const std::string& endpoint) {
    auto models = fetch_json(trim_slash(endpoint) + "/v1/models");
    if (!models) {
        return report(models.error());
    }
    fmt::print("{:<40} {:<11} {:<9} {}\n", "MODEL", "STATUS", "CONTEXT", "WHERE");
    for (const auto& m : models->value("data", nlohmann::json::array())) {
        std::string where;
        for (const auto& l : m.value("locations", nlohmann::json::array())) {
            where += str(l.is_object() ? l.value("node", nlohmann::json()) : l) + " ";
        }
        auto limit = m.value("limit", nlohmann::json::object());
        fmt::print("{:<40} {:<11} {:<9} {}\n", str(m.value("id", nlohmann::json())),
                   str(m.value("status", nlohmann::json())),
                   str(limit.is_object() ? limit.value("context", nlohmann::json()) : limit),
                   where);
    }
    return 0;
}

int cortex_keys(const std::string& endpoint) {
    std::string base = trim_slash(endpoint);
    // http://host:31313 -> http://host:31314 (the metrics listener serves /keys).
    auto colon = base.rfind(':');
    if (colon != std::string::npos && colon > 6) {
        try {
            int port = std::stoi(base.substr(colon + 1));
            if (port == 31313) {
                base = base.substr(0, colon + 1) + "31314";
            }
        } catch (const std::exception&) {
            // not a port: keep the endpoint as given
        }
    }
    auto keys = fetch_json(base + "/keys");
    if (!keys) {
        return report(keys.error());
    }
    fmt::print("{:<20} {:<20} {:<8} {:>12} {:>12} {:>12}\n", "ACCOUNT", "KEY", "WINDOW", "SPENT",
               "CAP", "REMAINING");
    for (const auto& k : keys->value("keys", nlohmann::json::array())) {
        fmt::print("{:<20} {:<20} {:<8} {:>12} {:>12} {:>12}\n",
                   str(k.value("account_id", nlohmann::json())),
                   str(k.value("key_id", nlohmann::json())), str(k.value("window", nlohmann::json())),
                   str(k.value("spent", nlohmann::json())), str(k.value("hard_cap", nlohmann::json())),
                   str(k.value("remaining", nlohmann::json())));
    }
    return 0;
}

}  // namespace helexa::apps
