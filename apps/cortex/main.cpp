// cortex: the helexa gateway. Thin main over libs/gateway.
//   cortex serve [--config FILE]        API on [gateway] listen (31313), metrics on 31314
//   cortex status [--endpoint URL]      fleet table (nodes, health, devices, loaded models, load)
//   cortex models [--endpoint URL]      the /v1/models listing
//   cortex --version
// Config errors name the file and key and exit with code 2.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "../common/shutdown_signal.h"
#include "cli_client.h"
#include "helexa/common/build_info.h"
#include "helexa/common/config.h"
#include "helexa/common/logging.h"
#include "helexa/gateway/config.h"
#include "helexa/gateway/server.h"

namespace {

constexpr const char* kDefaultConfig = "/etc/cortex/cortex.toml";

int serve(const std::string& config_path, bool config_given) {
    using namespace helexa;
    gateway::CortexConfig config;
    std::string origin = config_path;
    if (!config_given && !std::filesystem::exists(config_path)) {
        // No file at all: documented defaults (plus CORTEX_* overrides).
        auto parsed =
            gateway::parse_cortex_config("", "(defaults)", gateway::environment_overrides());
        if (!parsed) {
            std::fprintf(stderr, "cortex: %s\n", parsed.error().full_message().c_str());
            return config_exit_code();
        }
        config = std::move(*parsed);
        log::get("cortex")->info("no config file at {}; using defaults", config_path);
    } else {
        auto loaded = gateway::load_cortex_config(config_path);
        if (!loaded) {
            std::fprintf(stderr, "cortex: %s\n", loaded.error().full_message().c_str());
            return config_exit_code();
        }
        config = std::move(*loaded);
    }
    for (const auto& warning : config.warnings) {
        log::get("cortex")->warn("{}: {}", origin, warning);
    }

    gateway::CortexServer server;
    if (auto started = server.start(config); !started) {
        std::fprintf(stderr, "cortex: %s\n", started.error().full_message().c_str());
        return started.error().code() == ErrorCode::kConfig ? config_exit_code() : 1;
    }
    log::get("cortex")->info("cortex {} listening on port {} (metrics on {})",
                             build_info().version, server.port(), server.metrics_port());
    int sig = apps::wait_for_shutdown_signal();
    log::get("cortex")->info("signal {}: shutting down", sig);
    server.stop();
    log::get("cortex")->info("cortex stopped");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    helexa::apps::block_shutdown_signals();
    CLI::App app{"cortex — helexa gateway: one OpenAI + Anthropic API over a fleet of neurons"};
    app.require_subcommand(0, 1);
    bool version = false;
    std::string log_directives;
    app.add_flag("-V,--version", version, "print build information and exit");
    app.add_option("--log", log_directives,
                   "log directives, e.g. info,cortex::proxy=debug (default: $HELEXA_LOG or info)");

    std::string config_path = kDefaultConfig;
    auto* serve_cmd = app.add_subcommand("serve", "run the gateway");
    auto* config_opt = serve_cmd->add_option("-c,--config", config_path, "cortex.toml path");

    std::string endpoint = "http://127.0.0.1:31313";
    auto* status_cmd = app.add_subcommand("status", "show the fleet: nodes, devices, models, load");
    status_cmd->add_option("--endpoint", endpoint, "cortex base URL");
    auto* models_cmd = app.add_subcommand("models", "list models as clients see them");
    models_cmd->add_option("--endpoint", endpoint, "cortex base URL");
    auto* keys_cmd = app.add_subcommand("keys", "show each API key's spend and remaining cap");
    keys_cmd->add_option("--endpoint", endpoint, "cortex base URL");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : helexa::config_exit_code();
    }
    if (version) {
        std::cout << helexa::build_info_text("cortex");
        return 0;
    }
    try {
        helexa::init_logging(log_directives.empty() ? helexa::log_directives_from_env()
                                                    : log_directives);
    } catch (const helexa::ConfigError& e) {
        std::fprintf(stderr, "cortex: --log: %s\n", e.what());
        return helexa::config_exit_code();
    }
    try {
        if (*status_cmd) {
            return helexa::apps::cortex_status(endpoint);
        }
        if (*models_cmd) {
            return helexa::apps::cortex_models(endpoint);
        }
        if (*keys_cmd) {
            return helexa::apps::cortex_keys(endpoint);
        }
        // `cortex` alone serves, like `cortex serve`.
        return serve(config_path, config_opt->count() > 0);
    } catch (const helexa::ConfigError& e) {
        std::fprintf(stderr, "cortex: %s\n", e.what());
        return helexa::config_exit_code();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cortex: fatal: %s\n", e.what());
        return 1;
    }
}
