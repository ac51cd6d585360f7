// The neuron binary refuses bad engine-backend settings at start-up: exit code 2 and the key
// named, before anything is loaded or bound.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "daemon_process.h"

namespace helexa::e2e {
namespace {

struct NeuronRun {
    int code;
    std::string log;
};

NeuronRun run_neuron_with(const std::string& assignment) {
    const std::string log = (std::filesystem::temp_directory_path() /
                             ("neuron_config_" + std::to_string(::getpid()) + ".log"))
                                .string();
    std::filesystem::remove(log);
    const int code = run_to_completion({"/usr/bin/env", assignment, NEURON_BIN, "serve"}, log);
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    return {code, ss.str()};
}

TEST(NeuronConfig, UnknownBackendExitsTwoNamingTheKey) {
    const NeuronRun r = run_neuron_with("NEURON_BACKEND=gpu");
    EXPECT_EQ(r.code, 2) << r.log;
    EXPECT_NE(r.log.find("NEURON_BACKEND"), std::string::npos) << r.log;
}

}  // namespace
}  // namespace helexa::e2e
