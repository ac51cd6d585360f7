// Identity and budgets (features §3.3–3.5, issue 7): who is calling (Principal), how much they
// may spend (hard caps over a balance or a rolling window), and the reserve → settle → release
// lifecycle that keeps spent + reserved ≤ hard_cap under any concurrency.
// When to use: the auth middleware calls resolve(); every metered handler reserves before
// dispatch through a ReservationGuard and settles with the usage seen in the response.
// Thread-safety: EntitlementProvider implementations are safe from any thread.
// NOTE: the interface is synchronous. The local provider's critical section is a map update plus
// one small SQLite upsert (WAL, synchronous=NORMAL: no fsync per commit), short enough for an I/O
// thread; a remote provider would put a cache in front of its network calls.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "helexa/common/result.h"
#include "helexa/gateway/clock.h"
#include "helexa/gateway/config.h"
#include "helexa/gateway/ledger.h"

namespace helexa::gateway {

// Internal principal headers stamped on every upstream request (client copies are stripped).
inline constexpr std::string_view kHeaderAccountId = "x-helexa-account-id";
inline constexpr std::string_view kHeaderKeyId = "x-helexa-key-id";

struct Principal {
    std::string account_id;
    std::string key_id;

    bool operator==(const Principal&) const = default;
};

struct Reservation {
    uint64_t id = 0;
    Principal principal;
    int64_t amount = 0;  // tokens held
};

struct TokenUsage {
    int64_t prompt_tokens = 0;
    int64_t completion_tokens = 0;
};

// What a settle actually charged (never more than the reservation), split for the metrics.
struct Charge {
    int64_t prompt_tokens = 0;
    int64_t completion_tokens = 0;
    int64_t total() const { return prompt_tokens + completion_tokens; }
};

struct BudgetSnapshot {
    Principal principal;
    std::optional<int64_t> hard_cap;
    CapWindow window;
    int64_t spent = 0;
    int64_t reserved = 0;
    std::optional<int64_t> remaining;        // hard_cap - spent - reserved, when capped
    std::optional<int64_t> resets_in_secs;   // rolling windows
};

class EntitlementProvider {
public:
    virtual ~EntitlementProvider() = default;

    // The principal for an API key, or nullopt when the key is unknown.
    virtual std::optional<Principal> resolve(std::string_view key) const = 0;
    // Holds `estimate` tokens. Over a rolling cap → kRateLimited + Retry-After (seconds until the
    // window frees); over a balance cap → kInsufficientQuota (no Retry-After); ledger failure →
    // kServiceUnavailable (fail closed).
    virtual Result<Reservation> reserve(const Principal& principal, int64_t estimate) = 0;
    // Records min(actual, reserved) as spend and frees the rest. Idempotent per reservation.
    // An error means the ledger write failed (in-memory spend is still recorded).
    virtual Result<Charge> settle(const Reservation& reservation, const TokenUsage& usage) = 0;
    // Frees the whole reservation. Idempotent.
    virtual void release(const Reservation& reservation) = 0;
    virtual std::optional<BudgetSnapshot> snapshot(const Principal& principal) const = 0;
    virtual std::vector<BudgetSnapshot> snapshots() const = 0;
};

class LocalEntitlementProvider final : public EntitlementProvider {
public:
    // `ledger` may be null (memory only: tests, or no keys configured). Outstanding holds found
    // in the ledger (a crash mid-request) are counted as spent, never refunded.
    static Result<std::unique_ptr<LocalEntitlementProvider>> create(
        const EntitlementsConfig& config, std::unique_ptr<Ledger> ledger,
        std::shared_ptr<const Clock> clock);

    std::optional<Principal> resolve(std::string_view key) const override;
    Result<Reservation> reserve(const Principal& principal, int64_t estimate) override;
    Result<Charge> settle(const Reservation& reservation, const TokenUsage& usage) override;
    void release(const Reservation& reservation) override;
    std::optional<BudgetSnapshot> snapshot(const Principal& principal) const override;
    std::vector<BudgetSnapshot> snapshots() const override;

    // Sum of all outstanding reservations (tests: zero after every request finished).
    int64_t outstanding_reserved() const;
    size_t outstanding_reservations() const;

private:
    struct KeyState {
        KeyConfig config;
        int64_t spent = 0;
        int64_t reserved = 0;
        int64_t window_start = 0;
    };

    LocalEntitlementProvider(std::unique_ptr<Ledger> ledger, std::shared_ptr<const Clock> clock)
        : ledger_(std::move(ledger)), clock_(std::move(clock)) {}

    // Lazy rolling reset. Requires mutex_.
    void maybe_reset(KeyState& state, int64_t now) const;
    Status persist(const KeyState& state);  // requires mutex_
    BudgetSnapshot snapshot_of(const KeyState& state, int64_t now) const;

    mutable std::mutex mutex_;
    std::unique_ptr<Ledger> ledger_;
    std::shared_ptr<const Clock> clock_;
    std::map<std::string, std::string, std::less<>> key_to_id_;  // api key → key_id
    std::map<std::string, KeyState, std::less<>> keys_;  // by key_id
    std::map<uint64_t, Reservation> outstanding_;
    uint64_t next_id_ = 1;
};

// Owns one reservation: settle(actual) charges it, and destruction without settle releases it,
// so an error, early return or dropped stream can never leak a hold. An empty guard (anonymous
// request) does nothing. Move-only.
class ReservationGuard {
public:
    ReservationGuard() = default;
    ReservationGuard(std::shared_ptr<EntitlementProvider> provider, Reservation reservation);
    ~ReservationGuard();
    ReservationGuard(ReservationGuard&& other) noexcept;
    ReservationGuard& operator=(ReservationGuard&& other) noexcept;
    ReservationGuard(const ReservationGuard&) = delete;
    ReservationGuard& operator=(const ReservationGuard&) = delete;

    bool active() const { return provider_ != nullptr; }
    const Reservation& reservation() const { return reservation_; }
    // Charges the usage (clamped to the reservation) and deactivates the guard. On an inactive
    // guard returns a zero charge.
    Result<Charge> settle(const TokenUsage& usage);
    void release();

private:
    std::shared_ptr<EntitlementProvider> provider_;
    Reservation reservation_;
};

}  // namespace helexa::gateway
