// neuron: the helexa per-host daemon. Thin main over libs/node.
//   neuron serve [--config FILE]     API on port 13131 (neuron.toml `port` / `listen`)
//   neuron make-default-model --hf-cache DIR --tokenizer-from DIR [--model-id org/name]
//                                    writes the embedded default model (scripts/run-local)
//   neuron --version                 build information (the same JSON as GET /version)
// Config errors name the file and key and exit with code 2.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "../common/shutdown_signal.h"
#include "helexa/common/build_info.h"
#include "helexa/common/config.h"
#include "helexa/common/logging.h"
#include "default_model.h"
#include "neuron_daemon.h"

int main(int argc, char** argv) {
    helexa::apps::block_shutdown_signals();
    CLI::App app{"neuron — helexa node daemon: discovery, model lifecycle, in-process inference"};
    app.require_subcommand(0, 1);
    bool version = false;
    std::string log_directives;
    app.add_flag("-V,--version", version, "print build information and exit");
    app.add_option("--log", log_directives,
                   "log directives, e.g. info,neuron=debug (default: $HELEXA_LOG or info)");
    std::string config_path = "/etc/neuron/neuron.toml";
    auto* serve_cmd = app.add_subcommand("serve", "run the daemon");
    auto* config_opt = serve_cmd->add_option("-c,--config", config_path, "neuron.toml path");
    helexa::apps::DefaultModelRequest demo{.hf_cache = {}, .model_id = "helexa/qwen3-demo",
                                           .tokenizer_from = {}};
    auto* demo_cmd = app.add_subcommand(
        "make-default-model",
        "write the embedded default model (generated weights, a real tokenizer) into an HF cache");
    demo_cmd->add_option("--hf-cache", demo.hf_cache, "HuggingFace cache root")->required();
    demo_cmd->add_option("--tokenizer-from", demo.tokenizer_from,
                         "directory holding tokenizer.json and tokenizer_config.json")
        ->required();
    demo_cmd->add_option("--model-id", demo.model_id, "id to file the model under (org/name)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : helexa::config_exit_code();
    }
    if (version) {
        std::cout << helexa::build_info_text("neuron");
        return 0;
    }
    if (demo_cmd->parsed()) {
        helexa::init_logging(log_directives.empty() ? helexa::log_directives_from_env()
                                                    : log_directives);
        auto snapshot = helexa::apps::make_default_model(demo);
        if (!snapshot) {
            std::fprintf(stderr, "neuron: %s\n", snapshot.error().full_message().c_str());
            return snapshot.error().code() == helexa::ErrorCode::kInvalidRequest
                       ? helexa::config_exit_code()
                       : 1;
        }
        std::cout << snapshot->string() << "\n";
        return 0;
    }
    try {
        helexa::init_logging(log_directives.empty() ? helexa::log_directives_from_env()
                                                    : log_directives);
        return helexa::apps::run_neuron(config_path, config_opt->count() > 0,
                                        std::vector<std::string>(argv, argv + argc));
    } catch (const helexa::ConfigError& e) {
        std::fprintf(stderr, "neuron: %s\n", e.what());
        return helexa::config_exit_code();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "neuron: fatal: %s\n", e.what());
        return 1;
    }
}
