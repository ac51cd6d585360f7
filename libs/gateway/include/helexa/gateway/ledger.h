// Durable spend ledger: one row per key (spend, outstanding hold, window start) in SQLite (WAL)
// under the gateway's state directory, so a restart never refunds a budget.
// When to use: LocalEntitlementProvider owns one; tests may inject a failing Ledger.
// Thread-safety: a Ledger is NOT thread-safe; its owner serializes calls (the provider calls it
// under its budget mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "helexa/common/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace helexa::gateway {

struct LedgerRow {
    std::string key_id;
    std::string account_id;
    int64_t spent = 0;         // tokens charged in the current window (lifetime for balance)
    int64_t held = 0;          // reserved but not yet settled; a crash turns holds into spend
    int64_t window_start = 0;  // unix seconds; rolling windows only
};

class Ledger {
public:
    virtual ~Ledger() = default;
    virtual Result<std::vector<LedgerRow>> load_all() = 0;
    // Upsert by key_id. A failure means the request must fail closed.
    virtual Status write(const LedgerRow& row) = 0;
};

class SqliteLedger final : public Ledger {
public:
    // Opens (creating if absent) `path`, enables WAL, verifies integrity. A file that is not a
    // SQLite database, or fails the integrity check, is an error (kConfig) naming the path.
    static Result<std::unique_ptr<SqliteLedger>> open(const std::string& path);
    // `<state_dir>/ledger.sqlite3`; creates state_dir when missing.
    static Result<std::unique_ptr<SqliteLedger>> open_in(const std::string& state_dir);

    ~SqliteLedger() override;
    SqliteLedger(const SqliteLedger&) = delete;
    SqliteLedger& operator=(const SqliteLedger&) = delete;

    Result<std::vector<LedgerRow>> load_all() override;
    Status write(const LedgerRow& row) override;

private:
    SqliteLedger(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

    sqlite3* db_;
    sqlite3_stmt* upsert_ = nullptr;
    std::string path_;
};

}  // namespace helexa::gateway
