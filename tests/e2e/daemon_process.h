// A daemon binary run as a child process for end-to-end tests: the real `neuron` / `cortex`
// executables, started with their stdout and stderr going to a log file, stopped with SIGTERM
// like an operator (or systemd) would, and reaped with a bound so a hang fails the test instead
// of blocking CI.
// Thread-safety: one owner thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace helexa::e2e {

class DaemonProcess {
public:
    // Spawns `argv[0]` with `argv`; output is appended to `log_path`. Throws on spawn failure.
    DaemonProcess(std::vector<std::string> argv, std::string log_path);
    ~DaemonProcess();  // SIGKILL if still running
    DaemonProcess(const DaemonProcess&) = delete;
    DaemonProcess& operator=(const DaemonProcess&) = delete;

    bool running();
    // Sends SIGTERM and waits up to `timeout`; the exit code, or nullopt when it had to be killed
    // (or died of a signal).
    std::optional<int> terminate(std::chrono::milliseconds timeout);
    // Waits up to `timeout` for the process to exit on its own; its exit code, or nullopt when it
    // is still running (or died of a signal).
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    const std::string& log_path() const { return log_path_; }
    // The last `max_bytes` of the log (for failure messages).
    std::string log_tail(size_t max_bytes = 4000) const;

private:
    pid_t pid_ = -1;
    std::optional<int> status_;  // set once reaped
    std::string log_path_;
};

// Runs a command to completion; returns its exit code (output appended to `log_path`).
int run_to_completion(std::vector<std::string> argv, const std::string& log_path);

// A TCP port that was free a moment ago on 127.0.0.1 (bind to 0, read it, close).
int free_local_port();

}  // namespace helexa::e2e
