// Wall clock seam for budget windows and the ledger, so tests can move time by hand.
// When to use: pass SystemClock in production, ManualClock in tests.
// Thread-safety: both implementations are safe from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace helexa::gateway {

class Clock {
public:
    virtual ~Clock() = default;
    virtual int64_t now_unix_secs() const = 0;
};

class SystemClock final : public Clock {
public:
    int64_t now_unix_secs() const override {
        return std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }
};

class ManualClock final : public Clock {
public:
    explicit ManualClock(int64_t start = 1'700'000'000) : now_(start) {}
    int64_t now_unix_secs() const override { return now_.load(); }
    void advance(int64_t secs) { now_.fetch_add(secs); }
    void set(int64_t secs) { now_.store(secs); }

private:
    std::atomic<int64_t> now_;
};

}  // namespace helexa::gateway
