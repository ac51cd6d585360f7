#include "daemon_process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace helexa::e2e {

namespace {

pid_t spawn(const std::vector<std::string>& argv, const std::string& log_path) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    // The test runner may block signals in its threads; the daemon must start with a clean mask.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t empty;
    sigemptyset(&empty);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    std::vector<char*> args;
    for (const auto& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, args[0], &actions, &attr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        throw std::runtime_error("spawning " + argv[0] + " failed: " + std::to_string(rc));
    }
    return pid;
}

std::optional<int> exit_code(int status) {
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    return std::nullopt;
}

}  // namespace

DaemonProcess::DaemonProcess(std::vector<std::string> argv, std::string log_path)
    : log_path_(std::move(log_path)) {
    pid_ = spawn(argv, log_path_);
}

DaemonProcess::~DaemonProcess() {
    if (running()) {
        kill(pid_, SIGKILL);
        wait_exit(std::chrono::seconds(5));
    }
}

bool DaemonProcess::running() {
    if (status_ || pid_ <= 0) {
        return false;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
        status_ = status;
        return false;
    }
    return true;
}

std::optional<int> DaemonProcess::wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (running()) {
        if (std::chrono::steady_clock::now() >= deadline) {
            return std::nullopt;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return status_ ? exit_code(*status_) : std::nullopt;
}

std::optional<int> DaemonProcess::terminate(std::chrono::milliseconds timeout) {
    if (!running()) {
        return status_ ? exit_code(*status_) : std::nullopt;
    }
    kill(pid_, SIGTERM);
    auto code = wait_exit(timeout);
    if (running()) {
        kill(pid_, SIGKILL);
        wait_exit(std::chrono::seconds(5));
        return std::nullopt;
    }
    return code;
}

std::string DaemonProcess::log_tail(size_t max_bytes) const {
    std::ifstream in(log_path_, std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return all.size() > max_bytes ? all.substr(all.size() - max_bytes) : all;
}

int run_to_completion(std::vector<std::string> argv, const std::string& log_path) {
    DaemonProcess p(std::move(argv), log_path);
    return p.wait_exit(std::chrono::minutes(5)).value_or(-1);
}

int free_local_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        throw std::runtime_error("cannot bind a probe socket");
    }
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    close(fd);
    return ntohs(addr.sin_port);
}

}  // namespace helexa::e2e
