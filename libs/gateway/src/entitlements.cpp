#include "helexa/gateway/entitlements.h"

#include <algorithm>

#include <fmt/format.h>

#include "helexa/common/error_envelope.h"

namespace helexa::gateway {

Result<std::unique_ptr<LocalEntitlementProvider>> LocalEntitlementProvider::create(
    const EntitlementsConfig& config, std::unique_ptr<Ledger> ledger,
    std::shared_ptr<const Clock> clock) {
    if (!clock) {
        clock = std::make_shared<SystemClock>();
    }
    std::unique_ptr<LocalEntitlementProvider> provider(
        new LocalEntitlementProvider(std::move(ledger), std::move(clock)));
    std::map<std::string, LedgerRow> rows;
    if (provider->ledger_) {
        auto loaded = provider->ledger_->load_all();
        if (!loaded) {
            return tl::unexpected(std::move(loaded).error());
        }
        for (auto& row : *loaded) {
            rows.emplace(row.key_id, std::move(row));
        }
    }
    const int64_t now = provider->clock_->now_unix_secs();
    for (const auto& key : config.keys) {
        KeyState state;
        state.config = key;
        state.window_start = now;
        auto it = rows.find(key.key_id);
        if (it != rows.end()) {
            // A hold left by a crash counts as spent: a restart never refunds a budget.
            state.spent = it->second.spent + it->second.held;
            state.window_start = it->second.window_start;
        }
        if (key.window.kind == CapWindow::Kind::kBalance) {
            state.window_start = 0;
        }
        provider->key_to_id_.emplace(key.key, key.key_id);
        auto [slot, inserted] = provider->keys_.emplace(key.key_id, std::move(state));
        if (!inserted) {
            return fail(ErrorCode::kConfig,
                        fmt::format("entitlements: duplicate key_id '{}'", key.key_id));
        }
        if (provider->ledger_) {
            auto written = provider->persist(slot->second);
            if (!written) {
                return fail(Error(ErrorCode::kConfig, written.error().message()));
            }
        }
    }
    return provider;
}

std::optional<Principal> LocalEntitlementProvider::resolve(std::string_view key) const {
    if (key.empty()) {
        return std::nullopt;
    }
    std::lock_guard lock(mutex_);
    auto it = key_to_id_.find(key);
    if (it == key_to_id_.end()) {
        return std::nullopt;
    }
    const KeyState& state = keys_.at(it->second);
    return Principal{state.config.account_id, state.config.key_id};
}

void LocalEntitlementProvider::maybe_reset(KeyState& state, int64_t now) const {
    if (state.config.window.kind != CapWindow::Kind::kRolling) {
        return;
    }
    if (now - state.window_start >= state.config.window.seconds) {
        state.spent = 0;
        state.window_start = now;
    }
}

Status LocalEntitlementProvider::persist(const KeyState& state) {
    if (!ledger_) {
        return ok();
    }
    return ledger_->write(LedgerRow{state.config.key_id, state.config.account_id, state.spent,
                                    state.reserved, state.window_start});
}

Result<Reservation> LocalEntitlementProvider::reserve(const Principal& principal,
                                                      int64_t estimate) {
    estimate = std::max<int64_t>(estimate, 0);
    std::lock_guard lock(mutex_);
    auto it = keys_.find(principal.key_id);
    if (it == keys_.end()) {
        return fail(ErrorCode::kInvalidApiKey, "unknown principal");
    }
    KeyState& state = it->second;
    const int64_t now = clock_->now_unix_secs();
    maybe_reset(state, now);
    if (state.config.hard_cap) {
        const int64_t cap = *state.config.hard_cap;
        if (state.spent + state.reserved + estimate > cap) {
            const int64_t remaining = std::max<int64_t>(cap - state.spent - state.reserved, 0);
            if (state.config.window.kind == CapWindow::Kind::kRolling) {
                const int64_t wait = std::max<int64_t>(
                    state.window_start + state.config.window.seconds - now, 1);
                return fail(rate_limit_error(
                    fmt::format("Rate limit reached for key {}: this request may use up to {} "
                                "tokens but {} remain in the current {}s window. Try again in "
                                "{}s.",
                                state.config.key_id, estimate, remaining,
                                state.config.window.seconds, wait),
                    wait));
            }
            return fail(insufficient_quota_error(
                fmt::format("You exceeded your current quota: key {} has {} of {} tokens left "
                            "and this request may use up to {}.",
                            state.config.key_id, remaining, cap, estimate)));
        }
    }
    state.reserved += estimate;
    auto written = persist(state);
    if (!written) {
        state.reserved -= estimate;
        return fail(service_unavailable_error(
            "spend ledger unavailable; refusing to serve unmetered", 5));
    }
    Reservation reservation{next_id_++, principal, estimate};
    outstanding_.emplace(reservation.id, reservation);
    return reservation;
}

Result<Charge> LocalEntitlementProvider::settle(const Reservation& reservation,
                                                const TokenUsage& usage) {
    std::lock_guard lock(mutex_);
    auto res = outstanding_.find(reservation.id);
    if (res == outstanding_.end()) {
        return Charge{};
    }
    const int64_t amount = res->second.amount;
    outstanding_.erase(res);
    auto it = keys_.find(reservation.principal.key_id);
    if (it == keys_.end()) {
        return Charge{};
    }
    KeyState& state = it->second;
    maybe_reset(state, clock_->now_unix_secs());
    // Settle never exceeds the reservation, so spend can never pass the cap.
    Charge charge;
    charge.prompt_tokens = std::clamp<int64_t>(usage.prompt_tokens, 0, amount);
    charge.completion_tokens =
        std::clamp<int64_t>(usage.completion_tokens, 0, amount - charge.prompt_tokens);
    state.reserved -= amount;
    state.spent += charge.total();
    auto written = persist(state);
    if (!written) {
        return tl::unexpected(std::move(written).error());
    }
    return charge;
}

void LocalEntitlementProvider::release(const Reservation& reservation) {
    std::lock_guard lock(mutex_);
    auto res = outstanding_.find(reservation.id);
    if (res == outstanding_.end()) {
        return;
    }
    const int64_t amount = res->second.amount;
    outstanding_.erase(res);
    auto it = keys_.find(reservation.principal.key_id);
    if (it == keys_.end()) {
        return;
    }
    it->second.reserved -= amount;
    // Best effort: a stale hold in the ledger only over-charges after a crash.
    (void)persist(it->second);
}

BudgetSnapshot LocalEntitlementProvider::snapshot_of(const KeyState& state, int64_t now) const {
    BudgetSnapshot snap;
    snap.principal = {state.config.account_id, state.config.key_id};
    snap.hard_cap = state.config.hard_cap;
    snap.window = state.config.window;
    snap.spent = state.spent;
    snap.reserved = state.reserved;
    if (state.config.window.kind == CapWindow::Kind::kRolling) {
        int64_t end = state.window_start + state.config.window.seconds;
        if (now >= end) {
            snap.spent = 0;  // the lazy reset has not run yet
            snap.resets_in_secs = state.config.window.seconds;
        } else {
            snap.resets_in_secs = end - now;
        }
    }
    if (snap.hard_cap) {
        snap.remaining = std::max<int64_t>(*snap.hard_cap - snap.spent - snap.reserved, 0);
    }
    return snap;
}

std::optional<BudgetSnapshot> LocalEntitlementProvider::snapshot(
    const Principal& principal) const {
    std::lock_guard lock(mutex_);
    auto it = keys_.find(principal.key_id);
    if (it == keys_.end()) {
        return std::nullopt;
    }
    return snapshot_of(it->second, clock_->now_unix_secs());
}

std::vector<BudgetSnapshot> LocalEntitlementProvider::snapshots() const {
    std::lock_guard lock(mutex_);
    std::vector<BudgetSnapshot> out;
    const int64_t now = clock_->now_unix_secs();
    for (const auto& [id, state] : keys_) {
        out.push_back(snapshot_of(state, now));
    }
    return out;
}

int64_t LocalEntitlementProvider::outstanding_reserved() const {
    std::lock_guard lock(mutex_);
    int64_t total = 0;
    for (const auto& [id, state] : keys_) {
        total += state.reserved;
    }
    return total;
}

size_t LocalEntitlementProvider::outstanding_reservations() const {
    std::lock_guard lock(mutex_);
    return outstanding_.size();
}

ReservationGuard::ReservationGuard(std::shared_ptr<EntitlementProvider> provider,
                                   Reservation reservation)
    : provider_(std::move(provider)), reservation_(std::move(reservation)) {}

ReservationGuard::~ReservationGuard() {
    release();
}

ReservationGuard::ReservationGuard(ReservationGuard&& other) noexcept
    : provider_(std::move(other.provider_)), reservation_(std::move(other.reservation_)) {
    other.provider_.reset();
}

ReservationGuard& ReservationGuard::operator=(ReservationGuard&& other) noexcept {
    if (this != &other) {
        release();
        provider_ = std::move(other.provider_);
        reservation_ = std::move(other.reservation_);
        other.provider_.reset();
    }
    return *this;
}

Result<Charge> ReservationGuard::settle(const TokenUsage& usage) {
    if (!provider_) {
        return Charge{};
    }
    auto provider = std::move(provider_);
    provider_.reset();
    return provider->settle(reservation_, usage);
}

void ReservationGuard::release() {
    if (!provider_) {
        return;
    }
    auto provider = std::move(provider_);
    provider_.reset();
    provider->release(reservation_);
}

}  // namespace helexa::gateway
