#include "helexa/gateway/entitlements.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "helexa/common/error_envelope.h"

namespace helexa::gateway {
namespace {

KeyConfig key(std::string k, std::string account, std::optional<int64_t> cap,
              CapWindow window = {}) {
    KeyConfig c;
    c.key = k;
    c.account_id = account;
    c.key_id = "id-" + k;
    c.hard_cap = cap;
    c.window = window;
    return c;
}

EntitlementsConfig config() {
    EntitlementsConfig cfg;
    cfg.keys.push_back(key("sk-balance", "acct-a", 1000));
    cfg.keys.push_back(key("sk-rolling", "acct-b", 1000, {CapWindow::Kind::kRolling, 3600}));
    cfg.keys.push_back(key("sk-infra", "infra", std::nullopt));
    return cfg;
}

struct Fixture {
    std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>();
    std::shared_ptr<LocalEntitlementProvider> provider;

    explicit Fixture(std::unique_ptr<Ledger> ledger = nullptr,
                     EntitlementsConfig cfg = config()) {
        auto p = LocalEntitlementProvider::create(cfg, std::move(ledger), clock);
        EXPECT_TRUE(p) << p.error().message();
        provider = std::move(*p);
    }
};

TEST(LocalProvider, ResolveKnownAndUnknown) {
    Fixture f;
    auto p = f.provider->resolve("sk-balance");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->account_id, "acct-a");
    EXPECT_EQ(p->key_id, "id-sk-balance");
    EXPECT_FALSE(f.provider->resolve("sk-unknown"));
    EXPECT_FALSE(f.provider->resolve(""));
    EXPECT_FALSE(f.provider->resolve("sk-balanc"));
}

TEST(LocalProvider, ReserveSettleRoundTrip) {
    Fixture f;
    auto principal = *f.provider->resolve("sk-balance");
    auto r = f.provider->reserve(principal, 300);
    ASSERT_TRUE(r);
    auto snap = f.provider->snapshot(principal);
    EXPECT_EQ(snap->reserved, 300);
    EXPECT_EQ(snap->remaining, 700);
    auto charge = f.provider->settle(*r, {40, 60});
    ASSERT_TRUE(charge);
    EXPECT_EQ(charge->prompt_tokens, 40);
    EXPECT_EQ(charge->completion_tokens, 60);
    snap = f.provider->snapshot(principal);
    EXPECT_EQ(snap->spent, 100);
    EXPECT_EQ(snap->reserved, 0);
    EXPECT_EQ(snap->remaining, 900);
    // Idempotent: a second settle or release changes nothing.
    EXPECT_EQ(f.provider->settle(*r, {500, 500})->total(), 0);
    f.provider->release(*r);
    EXPECT_EQ(f.provider->snapshot(principal)->spent, 100);
}

TEST(LocalProvider, SettleNeverExceedsReservation) {
    Fixture f;
    auto principal = *f.provider->resolve("sk-balance");
    auto r = f.provider->reserve(principal, 100);
    ASSERT_TRUE(r);
    auto charge = f.provider->settle(*r, {80, 900});
    ASSERT_TRUE(charge);
    EXPECT_EQ(charge->prompt_tokens, 80);
    EXPECT_EQ(charge->completion_tokens, 20);
    EXPECT_EQ(f.provider->snapshot(principal)->spent, 100);
}

TEST(LocalProvider, BalanceOverCapIsInsufficientQuotaWithoutRetryAfter) {
    Fixture f;
    auto principal = *f.provider->resolve("sk-balance");
    auto r = f.provider->reserve(principal, 900);
    ASSERT_TRUE(r);
    ASSERT_TRUE(f.provider->settle(*r, {900, 0}));
    auto denied = f.provider->reserve(principal, 101);
    ASSERT_FALSE(denied);
    EXPECT_EQ(denied.error().code(), ErrorCode::kInsufficientQuota);
    auto env = openai_envelope(denied.error());
    EXPECT_EQ(env.http_status, 429);
    EXPECT_EQ(env.body["error"]["code"], "insufficient_quota");
    EXPECT_FALSE(env.retry_after_secs);
    EXPECT_TRUE(f.provider->reserve(principal, 100));  // exactly the cap is allowed
    // Balance never resets with time.
    f.clock->advance(10 * 365 * 86400);
    EXPECT_FALSE(f.provider->reserve(principal, 1));
}

TEST(LocalProvider, RollingOverCapIsRateLimitedWithRetryAfterThenResets) {
    Fixture f;
    auto principal = *f.provider->resolve("sk-rolling");
    auto r = f.provider->reserve(principal, 1000);
    ASSERT_TRUE(r);
    ASSERT_TRUE(f.provider->settle(*r, {600, 400}));
    f.clock->advance(600);
    auto denied = f.provider->reserve(principal, 1);
    ASSERT_FALSE(denied);
    EXPECT_EQ(denied.error().code(), ErrorCode::kRateLimited);
    EXPECT_EQ(denied.error().retry_after_secs(), 3000);
    auto env = openai_envelope(denied.error());
    EXPECT_EQ(env.http_status, 429);
    EXPECT_EQ(env.body["error"]["code"], "rate_limit_exceeded");
    EXPECT_EQ(env.retry_after_secs, 3000);
    EXPECT_EQ(f.provider->snapshot(principal)->resets_in_secs, 3000);

    f.clock->advance(3000);  // window elapsed: lazily reset on next access
    EXPECT_EQ(f.provider->snapshot(principal)->spent, 0);
    auto again = f.provider->reserve(principal, 1000);
    ASSERT_TRUE(again) << again.error().message();
    f.provider->release(*again);
    EXPECT_EQ(f.provider->snapshot(principal)->spent, 0);
}

TEST(LocalProvider, UncappedKeysAlwaysReserveButAreMetered) {
    Fixture f;
    auto principal = *f.provider->resolve("sk-infra");
    for (int i = 0; i < 5; ++i) {
        auto r = f.provider->reserve(principal, 1'000'000'000);
        ASSERT_TRUE(r);
        ASSERT_TRUE(f.provider->settle(*r, {10, 5}));
    }
    auto snap = f.provider->snapshot(principal);
    EXPECT_EQ(snap->spent, 75);
    EXPECT_FALSE(snap->hard_cap);
    EXPECT_FALSE(snap->remaining);
}

TEST(LocalProvider, UnknownPrincipalCannotReserve) {
    Fixture f;
    auto r = f.provider->reserve(Principal{"x", "nope"}, 1);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidApiKey);
}

TEST(LocalProvider, ConcurrentReservationsNeverExceedCap) {
    EntitlementsConfig cfg;
    cfg.keys.push_back(key("sk-a0", "agent-zero", 10'000));
    Fixture f(nullptr, cfg);
    auto principal = *f.provider->resolve("sk-a0");
    constexpr int kThreads = 20;
    std::atomic<int> served{0};
    std::atomic<int> refused{0};
    std::atomic<int64_t> max_seen{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 50; ++i) {
                auto r = f.provider->reserve(principal, 700 + (t % 3) * 100);
                if (!r) {
                    ++refused;
                    EXPECT_EQ(r.error().code(), ErrorCode::kInsufficientQuota);
                    continue;
                }
                auto snap = f.provider->snapshot(principal);
                int64_t committed = snap->spent + snap->reserved;
                int64_t prev = max_seen.load();
                while (committed > prev && !max_seen.compare_exchange_weak(prev, committed)) {
                }
                ++served;
                if (i % 2 == 0) {
                    ReservationGuard guard(f.provider, *r);
                    ASSERT_TRUE(guard.settle({r->amount / 2, r->amount / 4}));
                } else {
                    ReservationGuard guard(f.provider, *r);  // dropped: released
                }
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    auto snap = f.provider->snapshot(principal);
    EXPECT_LE(snap->spent, 10'000);
    EXPECT_LE(max_seen.load(), 10'000);
    EXPECT_EQ(snap->reserved, 0);
    EXPECT_EQ(f.provider->outstanding_reservations(), 0u);
    EXPECT_GT(served.load(), 0);
    EXPECT_GT(refused.load(), 0);
}

TEST(ReservationGuard, ReleasesOnDestructionAndMoves) {
    Fixture f;
    auto principal = *f.provider->resolve("sk-balance");
    {
        ReservationGuard guard(f.provider, *f.provider->reserve(principal, 400));
        EXPECT_TRUE(guard.active());
        EXPECT_EQ(f.provider->snapshot(principal)->reserved, 400);
        ReservationGuard moved(std::move(guard));
        EXPECT_FALSE(guard.active());  // NOLINT(bugprone-use-after-move): tests the move
        EXPECT_TRUE(moved.active());
    }
    EXPECT_EQ(f.provider->snapshot(principal)->reserved, 0);
    EXPECT_EQ(f.provider->snapshot(principal)->spent, 0);
    ReservationGuard empty;
    EXPECT_FALSE(empty.active());
    EXPECT_EQ(empty.settle({5, 5})->total(), 0);
}

// ---- ledger ----

class LedgerTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::path(::testing::TempDir()) /
               ("cortex-ledger-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    std::unique_ptr<Ledger> open() {
        auto l = SqliteLedger::open_in(dir_.string());
        EXPECT_TRUE(l) << l.error().message();
        return l ? std::unique_ptr<Ledger>(std::move(*l)) : nullptr;
    }

    std::filesystem::path dir_;
};

TEST_F(LedgerTest, SpendSurvivesRestart) {
    auto clock = std::make_shared<ManualClock>();
    {
        auto p = LocalEntitlementProvider::create(config(), open(), clock);
        ASSERT_TRUE(p);
        auto principal = *(*p)->resolve("sk-balance");
        auto r = (*p)->reserve(principal, 500);
        ASSERT_TRUE(r);
        ASSERT_TRUE((*p)->settle(*r, {200, 100}));
        auto rolling = *(*p)->resolve("sk-rolling");
        auto r2 = (*p)->reserve(rolling, 50);
        ASSERT_TRUE((*p)->settle(*r2, {50, 0}));
    }
    clock->advance(60);
    auto p = LocalEntitlementProvider::create(config(), open(), clock);
    ASSERT_TRUE(p);
    auto snap = (*p)->snapshot(*(*p)->resolve("sk-balance"));
    EXPECT_EQ(snap->spent, 300);
    EXPECT_EQ(snap->remaining, 700);
    auto rolling = (*p)->snapshot(*(*p)->resolve("sk-rolling"));
    EXPECT_EQ(rolling->spent, 50);
    EXPECT_EQ(rolling->resets_in_secs, 3600 - 60);  // window start persisted too
}

TEST_F(LedgerTest, CrashHoldsCountAsSpent) {
    auto clock = std::make_shared<ManualClock>();
    {
        // What a crash mid-request leaves behind: a hold that was never settled or released.
        auto ledger = open();
        ASSERT_TRUE(ledger);
        ASSERT_TRUE(ledger->write(LedgerRow{"id-sk-balance", "acct-a", 100, 250, 0}));
    }
    auto p = LocalEntitlementProvider::create(config(), open(), clock);
    ASSERT_TRUE(p);
    auto snap = (*p)->snapshot(*(*p)->resolve("sk-balance"));
    EXPECT_EQ(snap->spent, 350);
    EXPECT_EQ(snap->reserved, 0);
}

TEST_F(LedgerTest, CorruptLedgerIsAStartupError) {
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / "ledger.sqlite3") << "this is not a sqlite database, just garbage bytes"
                                           << std::string(4096, 'x');
    auto l = SqliteLedger::open_in(dir_.string());
    ASSERT_FALSE(l);
    EXPECT_EQ(l.error().code(), ErrorCode::kConfig);
    EXPECT_NE(l.error().message().find("ledger.sqlite3"), std::string::npos);
}

TEST_F(LedgerTest, UnreadableStateDirIsAnError) {
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / "file") << "x";
    auto l = SqliteLedger::open_in((dir_ / "file" / "sub").string());
    ASSERT_FALSE(l);
    EXPECT_EQ(l.error().code(), ErrorCode::kConfig);
}

class FailingLedger final : public Ledger {
public:
    Result<std::vector<LedgerRow>> load_all() override { return std::vector<LedgerRow>{}; }
    Status write(const LedgerRow&) override {
        if (fail_writes) {
            return fail(ErrorCode::kIo, "disk full");
        }
        return ok();
    }
    bool fail_writes = false;
};

TEST(LocalProviderLedger, WriteFailureFailsClosedWith503) {
    auto ledger = std::make_unique<FailingLedger>();
    auto* raw = ledger.get();
    Fixture f(std::move(ledger));
    auto principal = *f.provider->resolve("sk-infra");
    raw->fail_writes = true;
    auto r = f.provider->reserve(principal, 10);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kServiceUnavailable);
    EXPECT_EQ(openai_envelope(r.error()).http_status, 503);
    EXPECT_EQ(f.provider->snapshot(principal)->reserved, 0);
    raw->fail_writes = false;
    EXPECT_TRUE(f.provider->reserve(principal, 10));
}

}  // namespace
}  // namespace helexa::gateway
