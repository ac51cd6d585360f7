// Test support: one request's engine events, collected from its EventSink. wait() blocks until
// the terminal event (kFinish or kError). Used by the scheduler and fault-recovery tests.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "helexa/engine/serving.h"

namespace helexa::engine::testing {

class Collector {
public:
    EventSink sink() {
        return [this](EngineEvent ev) {
            std::lock_guard lock(mu_);
            const bool terminal =
                ev.kind == EngineEvent::Kind::kFinish || ev.kind == EngineEvent::Kind::kError;
            events_.push_back(std::move(ev));
            if (terminal) {
                done_ = true;
                cv_.notify_all();
            }
        };
    }
    bool wait(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, timeout, [this] { return done_; });
    }
    bool done() const {
        std::lock_guard lock(mu_);
        return done_;
    }
    std::vector<EngineEvent> events() const {
        std::lock_guard lock(mu_);
        return events_;
    }
    bool started() const {
        std::lock_guard lock(mu_);
        for (const auto& e : events_) {
            if (e.kind == EngineEvent::Kind::kStarted) {
                return true;
            }
        }
        return false;
    }
    // The text deltas so far, joined.
    std::string text() const {
        std::lock_guard lock(mu_);
        std::string out;
        for (const auto& ev : events_) {
            if (ev.kind == EngineEvent::Kind::kTextDelta) {
                out += ev.text;
            }
        }
        return out;
    }
    // The last event: the terminal one once done() (an empty event when none arrived).
    EngineEvent terminal() const {
        std::lock_guard lock(mu_);
        return events_.empty() ? EngineEvent{} : events_.back();
    }

private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<EngineEvent> events_;
    bool done_ = false;
};

}  // namespace helexa::engine::testing
