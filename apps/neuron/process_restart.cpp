#include "process_restart.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "helexa/common/logging.h"

namespace helexa::apps {

namespace {

constexpr const char* kModelsEnv = "HELEXA_NEURON_RESTORE_MODELS";  // JSON array of ModelSpec
constexpr const char* kRestartsEnv = "HELEXA_NEURON_RESTARTS";

// Every descriptor above stderr closes on exec: the listener and client sockets, the log files
// and the driver's handles must not outlive the image (a leaked listener would keep the port).
void close_on_exec_above_stderr() {
    std::vector<int> fds;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
        const std::string name = entry.path().filename().string();
        char* end = nullptr;
        const long fd = std::strtol(name.c_str(), &end, 10);
        if (end != name.c_str() && *end == '\0' && fd > 2) {
            fds.push_back(static_cast<int>(fd));
        }
    }
    for (int fd : fds) {
        const int flags = ::fcntl(fd, F_GETFD);
        if (flags >= 0) {
            (void)::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
        }
    }
}

}  // namespace

std::vector<wire::ModelSpec> take_restored_models() {
    const char* text = std::getenv(kModelsEnv);
    if (text == nullptr) {
        return {};
    }
    std::vector<wire::ModelSpec> out;
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_array()) {
        log::get("neuron")->error("{}: not a JSON array of model specs; ignored", kModelsEnv);
    } else {
        for (const auto& item : j) {
            auto spec = wire::parse_model_spec(item);
            if (!spec) {
                log::get("neuron")->error("{}: {}; entry ignored", kModelsEnv,
                                          spec.error().full_message());
                continue;
            }
            out.push_back(std::move(*spec));
        }
    }
    ::unsetenv(kModelsEnv);
    return out;
}

int restart_count() {
    const char* text = std::getenv(kRestartsEnv);
    return text == nullptr ? 0 : std::max(0, std::atoi(text));
}

std::string restart_process(const std::vector<std::string>& argv,
                            const std::vector<wire::ModelSpec>& models) {
    if (argv.empty()) {
        return "no command line to restart with";
    }
    nlohmann::json list = nlohmann::json::array();
    for (const auto& m : models) {
        list.push_back(m);
    }
    ::setenv(kModelsEnv, list.dump().c_str(), 1);
    ::setenv(kRestartsEnv, std::to_string(restart_count() + 1).c_str(), 1);
    close_on_exec_above_stderr();
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    ::execv("/proc/self/exe", args.data());
    return std::string("exec of /proc/self/exe failed: ") + std::strerror(errno);
}

}  // namespace helexa::apps
