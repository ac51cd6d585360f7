#include "neuron_daemon.h"

#include <filesystem>

#include <spdlog/spdlog.h>

#include "../common/shutdown_signal.h"
#include "helexa/common/build_info.h"
#include "helexa/common/config.h"
#include "helexa/net/server.h"

namespace helexa::apps {

int run_neuron(const std::string& config_path, bool config_given) {
    ConfigReader config = config_given ? ConfigReader::from_file(config_path, "NEURON_")
                                       : ConfigReader::from_optional_file(config_path, "NEURON_");
    // `listen = "host:port"` binds one address; otherwise every address on `port`.
    auto port = config.get<int64_t>("port", 13131);
    if (port < 0 || port > 65535) {
        throw ConfigError(config_path + ": key 'port': expected 0..65535, got " +
                          std::to_string(port));
    }
    std::string listen = config.get<std::string>("listen", "0.0.0.0:" + std::to_string(port));
    for (const auto& key : config.unknown_keys()) {
        spdlog::warn("{}: unknown key '{}' ignored", config_path, key);
    }

    net::Router router;
    router.get("/health", [](net::Request&) -> boost::asio::awaitable<net::Response> {
        co_return net::Response::json({{"status", "ok"},
                                       {"devices", nlohmann::json::array()},
                                       {"activation",
                                        {{"state", "ready"},
                                         {"pending", nlohmann::json::array()},
                                         {"in_progress", nullptr},
                                         {"completed", nlohmann::json::array()},
                                         {"failed", nlohmann::json::array()}}},
                                       {"models", nlohmann::json::array()}});
    });
    router.get("/version", [](net::Request&) -> boost::asio::awaitable<net::Response> {
        co_return net::Response::json(build_info_json());
    });
    net::IoPool io(2);
    net::Server server(io.context(), {.listen = listen, .log_component = "neuron::http"},
                       std::move(router));
    if (auto started = server.start(); !started) {
        spdlog::error("{}", started.error().full_message());
        return started.error().code() == ErrorCode::kConfig ? config_exit_code() : 1;
    }
    io.start();
    spdlog::info("neuron {} listening on {}", build_info().version, server.local_address());
    int sig = wait_for_shutdown_signal();
    spdlog::info("signal {}: shutting down", sig);
    server.stop();
    io.stop();
    io.join();
    return 0;
}

}  // namespace helexa::apps
