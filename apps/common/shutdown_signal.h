// Start-up/shutdown plumbing shared by the daemons' mains: block SIGINT/SIGTERM before any thread
// starts (so every thread inherits the mask), then wait for one on the main thread.
#pragma once

#include <atomic>
#include <csignal>
#include <ctime>
#include <pthread.h>

namespace helexa::apps {

inline sigset_t shutdown_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
}

// Call first in main, before any thread exists.
inline void block_shutdown_signals() {
    sigset_t set = shutdown_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// Blocks until SIGINT or SIGTERM; returns the signal number.
inline int wait_for_shutdown_signal() {
    sigset_t set = shutdown_signals();
    int sig = 0;
    sigwait(&set, &sig);
    return sig;
}

// Blocks until SIGINT or SIGTERM (returns the signal number) or until `wake` turns true (returns
// 0; checked every 100 ms: a flag another thread sets without a signal of its own).
inline int wait_for_shutdown_signal_or(const std::atomic<bool>& wake) {
    sigset_t set = shutdown_signals();
    const timespec tick{0, 100'000'000};
    while (!wake.load()) {
        const int sig = sigtimedwait(&set, nullptr, &tick);
        if (sig > 0) {
            return sig;
        }
    }
    return 0;
}

}  // namespace helexa::apps
