#include "helexa/node/admission.h"

#include <algorithm>
#include <cmath>

#include <boost/asio/this_coro.hpp>
#include <fmt/format.h>

#include "helexa/common/error_envelope.h"
#include "helexa/net/channel.h"
#include "helexa/net/deadline.h"

namespace helexa::node {

namespace asio = boost::asio;

struct AdmissionController::Waiter {
    std::string principal;
    std::shared_ptr<net::Channel<bool>> bell;
    bool granted = false;  // the releaser handed its slot over (guarded by the mutex)
    Clock::time_point granted_at{};
};

Permit& Permit::operator=(Permit&& other) noexcept {
    if (this != &other) {
        release();
        owner_ = std::move(other.owner_);
        principal_ = std::move(other.principal_);
        started_ = other.started_;
    }
    return *this;
}

Permit::~Permit() { release(); }

void Permit::release() {
    if (owner_) {
        auto owner = std::move(owner_);
        owner_.reset();
        owner->release(principal_, started_);
    }
}

std::shared_ptr<AdmissionController> AdmissionController::make(AdmissionConfig config) {
    return std::shared_ptr<AdmissionController>(new AdmissionController(config));
}

AdmissionController::Load AdmissionController::load() const {
    std::lock_guard lock(mutex_);
    return Load{in_flight_, static_cast<int64_t>(queue_.size())};
}

int64_t AdmissionController::overload_retry_after_locked() const {
    if (!have_service_sample_ || running_since_.empty()) {
        return 1;
    }
    // The oldest queued request starts when the longest-running one finishes.
    double elapsed =
        std::chrono::duration<double>(Clock::now() - *running_since_.begin()).count();
    double left = avg_service_secs_ - elapsed;
    return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(left)));
}

void AdmissionController::forget_principal_locked(const std::string& principal) {
    if (principal.empty()) {
        return;
    }
    auto it = per_principal_.find(principal);
    if (it != per_principal_.end() && --it->second <= 0) {
        per_principal_.erase(it);
    }
}

void AdmissionController::release(const std::string& principal, Clock::time_point started) {
    std::shared_ptr<Waiter> next;
    {
        std::lock_guard lock(mutex_);
        forget_principal_locked(principal);
        auto now = Clock::now();
        if (auto it = running_since_.find(started); it != running_since_.end()) {
            running_since_.erase(it);
        }
        double secs = std::chrono::duration<double>(now - started).count();
        avg_service_secs_ = have_service_sample_ ? 0.7 * avg_service_secs_ + 0.3 * secs : secs;
        have_service_sample_ = true;
        if (!queue_.empty()) {
            next = queue_.front();
            queue_.pop_front();
            next->granted = true;  // the slot passes over; in_flight_ stays the same
            next->granted_at = now;
            running_since_.insert(now);
        } else {
            --in_flight_;
        }
    }
    if (next) {
        next->bell->push(true);
    }
}

asio::awaitable<Result<Permit>> AdmissionController::enter(std::string principal) {
    auto self = shared_from_this();
    auto executor = co_await asio::this_coro::executor;
    std::shared_ptr<Waiter> waiter;
    {
        std::lock_guard lock(mutex_);
        if (!principal.empty() && config_.max_per_principal > 0) {
            auto it = per_principal_.find(principal);
            if (it != per_principal_.end() && it->second >= config_.max_per_principal) {
                co_return fail(rate_limit_error(
                    fmt::format("principal '{}' already has {} request(s) running or queued on "
                                "this model (max_per_principal {})",
                                principal, it->second, config_.max_per_principal),
                    1));
            }
        }
        if (in_flight_ < config_.max_in_flight && queue_.empty()) {
            ++in_flight_;
            if (!principal.empty()) {
                ++per_principal_[principal];
            }
            auto now = Clock::now();
            running_since_.insert(now);
            co_return Permit(self, principal, now);
        }
        if (static_cast<int64_t>(queue_.size()) >= config_.max_queue_depth) {
            co_return fail(Error(ErrorCode::kOverloaded,
                                 fmt::format("model is busy: {} running and {} queued (queue full)",
                                             in_flight_, queue_.size()))
                               .with_retry_after(overload_retry_after_locked()));
        }
        waiter = std::make_shared<Waiter>();
        waiter->principal = principal;
        waiter->bell = std::make_shared<net::Channel<bool>>(executor);
        queue_.push_back(waiter);
        if (!principal.empty()) {
            ++per_principal_[principal];
        }
    }

    // If this coroutine is torn down while waiting (client gone, shutdown), give back whatever
    // it holds so the slot is never leaked.
    struct Guard {
        AdmissionController* owner;
        std::shared_ptr<Waiter> waiter;
        bool done = false;
        ~Guard() {
            if (done) {
                return;
            }
            bool granted = false;
            {
                std::lock_guard lock(owner->mutex_);
                granted = waiter->granted;
                if (!granted) {
                    auto it = std::find(owner->queue_.begin(), owner->queue_.end(), waiter);
                    if (it != owner->queue_.end()) {
                        owner->queue_.erase(it);
                    }
                    owner->forget_principal_locked(waiter->principal);
                }
            }
            if (granted) {
                owner->release(waiter->principal, waiter->granted_at);
            }
        }
    } guard{this, waiter};

    (void)co_await net::with_timeout(waiter->bell->receive(),
                                     std::chrono::seconds(config_.max_wait_secs));
    std::lock_guard lock(mutex_);
    guard.done = true;
    if (waiter->granted) {
        co_return Permit(self, principal, waiter->granted_at);
    }
    auto it = std::find(queue_.begin(), queue_.end(), waiter);
    if (it != queue_.end()) {
        queue_.erase(it);
    }
    forget_principal_locked(principal);
    co_return fail(Error(ErrorCode::kOverloaded,
                         fmt::format("model is busy: waited {} s for a slot", config_.max_wait_secs))
                       .with_retry_after(overload_retry_after_locked()));
}

}  // namespace helexa::node
