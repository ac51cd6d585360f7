// Per-model admission control (features §5.11, D7): at most `max_in_flight` requests run, up to
// `max_queue_depth` wait (FIFO) for at most `max_wait_secs`, and one principal holds at most
// `max_per_principal` running + queued requests (anonymous callers are exempt; 0 disables).
//
//   queue full / wait elapsed -> kOverloaded (503 rate_limit_exceeded) + Retry-After = seconds
//                                until the oldest queued request is expected to start (>= 1)
//   principal over its share  -> kRateLimited (429 rate_limit_exceeded) + Retry-After: 1
//
// Use: `auto permit = co_await controller->enter(principal); if (!permit) return error;` and keep
// the Permit for the whole request (streaming: taken before the SSE opens); dropping it frees the
// slot and hands it to the oldest waiter.
// Thread-safety: all members are thread-safe; enter() may be awaited from any executor.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "helexa/common/result.h"
#include "helexa/node/config.h"

namespace helexa::node {

class AdmissionController;

// Holds one running slot. Move-only; the destructor releases it.
class Permit {
public:
    Permit() = default;
    Permit(std::shared_ptr<AdmissionController> owner, std::string principal,
           std::chrono::steady_clock::time_point started)
        : owner_(std::move(owner)), principal_(std::move(principal)), started_(started) {}
    Permit(Permit&& other) noexcept = default;
    Permit& operator=(Permit&& other) noexcept;
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit();

    bool valid() const { return owner_ != nullptr; }
    void release();

private:
    std::shared_ptr<AdmissionController> owner_;
    std::string principal_;
    std::chrono::steady_clock::time_point started_;
};

class AdmissionController : public std::enable_shared_from_this<AdmissionController> {
public:
    // Create through make() so permits can keep the controller alive.
    static std::shared_ptr<AdmissionController> make(AdmissionConfig config);

    // Admits now, queues, or rejects. `principal` "" = anonymous.
    boost::asio::awaitable<Result<Permit>> enter(std::string principal);

    struct Load {
        int64_t in_flight = 0;
        int64_t queue_depth = 0;
    };
    Load load() const;
    const AdmissionConfig& config() const { return config_; }

    struct Waiter;
    using Clock = std::chrono::steady_clock;

private:
    explicit AdmissionController(AdmissionConfig config) : config_(config) {}
    friend class Permit;
    void release(const std::string& principal, Clock::time_point started);
    int64_t overload_retry_after_locked() const;
    void forget_principal_locked(const std::string& principal);

    AdmissionConfig config_;
    mutable std::mutex mutex_;
    int64_t in_flight_ = 0;
    std::deque<std::shared_ptr<Waiter>> queue_;
    std::map<std::string, int64_t, std::less<>> per_principal_;  // running + queued
    std::multiset<Clock::time_point> running_since_;  // start times of running requests
    double avg_service_secs_ = 0.0;                               // EMA of permit hold time
    bool have_service_sample_ = false;
};

}  // namespace helexa::node
