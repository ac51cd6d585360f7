#include "helexa/gateway/ledger.h"

#include <filesystem>
#include <system_error>

#include <fmt/format.h>
#include <sqlite3.h>

namespace helexa::gateway {
namespace {

Error sqlite_error(sqlite3* db, const std::string& path, std::string_view what, ErrorCode code) {
    return Error(code, fmt::format("spend ledger {}: {}: {}", path, what,
                                   db != nullptr ? sqlite3_errmsg(db) : "out of memory"));
}

Status exec(sqlite3* db, const std::string& path, const char* sql, ErrorCode code) {
    char* message = nullptr;
    int rc = sqlite3_exec(db, sql, nullptr, nullptr, &message);
    if (rc != SQLITE_OK) {
        std::string text = message != nullptr ? message : sqlite3_errstr(rc);
        sqlite3_free(message);
        return fail(code, fmt::format("spend ledger {}: {}: {}", path, sql, text));
    }
    return ok();
}

}  // namespace

Result<std::unique_ptr<SqliteLedger>> SqliteLedger::open(const std::string& path) {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) {
        Error err = sqlite_error(db, path, "cannot open", ErrorCode::kConfig);
        sqlite3_close(db);
        return fail(std::move(err));
    }
    std::unique_ptr<SqliteLedger> ledger(new SqliteLedger(db, path));
    sqlite3_busy_timeout(db, 2000);
    // A non-database file fails here ("file is not a database"): a startup error, never a reset.
    HELEXA_TRY_STATUS(exec(db, path, "PRAGMA journal_mode=WAL;", ErrorCode::kConfig));
    HELEXA_TRY_STATUS(exec(db, path, "PRAGMA synchronous=NORMAL;", ErrorCode::kConfig));
    {
        sqlite3_stmt* check = nullptr;
        rc = sqlite3_prepare_v2(db, "PRAGMA quick_check;", -1, &check, nullptr);
        if (rc != SQLITE_OK) {
            return fail(sqlite_error(db, path, "integrity check", ErrorCode::kConfig));
        }
        rc = sqlite3_step(check);
        std::string verdict;
        if (rc == SQLITE_ROW) {
            const auto* text = sqlite3_column_text(check, 0);
            verdict = text != nullptr ? reinterpret_cast<const char*>(text) : "";
        }
        sqlite3_finalize(check);
        if (verdict != "ok") {
            return fail(ErrorCode::kConfig,
                        fmt::format("spend ledger {}: corrupt ({}); refusing to start rather "
                                    "than reset budgets",
                                    path, verdict.empty() ? sqlite3_errmsg(db) : verdict));
        }
    }
    HELEXA_TRY_STATUS(exec(db, path,
                           "CREATE TABLE IF NOT EXISTS spend ("
                           " key_id TEXT PRIMARY KEY NOT NULL,"
                           " account_id TEXT NOT NULL,"
                           " spent INTEGER NOT NULL,"
                           " held INTEGER NOT NULL,"
                           " window_start INTEGER NOT NULL);",
                           ErrorCode::kConfig));
    rc = sqlite3_prepare_v2(db,
                            "INSERT INTO spend (key_id, account_id, spent, held, window_start) "
                            "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(key_id) DO UPDATE SET "
                            "account_id=?2, spent=?3, held=?4, window_start=?5;",
                            -1, &ledger->upsert_, nullptr);
    if (rc != SQLITE_OK) {
        return fail(sqlite_error(db, path, "prepare", ErrorCode::kConfig));
    }
    return ledger;
}

Result<std::unique_ptr<SqliteLedger>> SqliteLedger::open_in(const std::string& state_dir) {
    std::error_code ec;
    std::filesystem::create_directories(state_dir, ec);
    if (ec) {
        return fail(ErrorCode::kConfig, fmt::format("state_dir {}: cannot create: {}", state_dir,
                                                    ec.message()));
    }
    return open((std::filesystem::path(state_dir) / "ledger.sqlite3").string());
}

SqliteLedger::~SqliteLedger() {
    sqlite3_finalize(upsert_);
    sqlite3_close(db_);
}

Result<std::vector<LedgerRow>> SqliteLedger::load_all() {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db_,
                                "SELECT key_id, account_id, spent, held, window_start FROM spend;",
                                -1, &stmt, nullptr);
    if (rc != SQLITE_OK) {
        return fail(sqlite_error(db_, path_, "read", ErrorCode::kConfig));
    }
    std::vector<LedgerRow> rows;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        LedgerRow row;
        const auto* key = sqlite3_column_text(stmt, 0);
        const auto* account = sqlite3_column_text(stmt, 1);
        row.key_id = key != nullptr ? reinterpret_cast<const char*>(key) : "";
        row.account_id = account != nullptr ? reinterpret_cast<const char*>(account) : "";
        row.spent = sqlite3_column_int64(stmt, 2);
        row.held = sqlite3_column_int64(stmt, 3);
        row.window_start = sqlite3_column_int64(stmt, 4);
        if (row.spent < 0 || row.held < 0) {
            sqlite3_finalize(stmt);
            return fail(ErrorCode::kConfig,
                        fmt::format("spend ledger {}: corrupt row for key {} (negative spend)",
                                    path_, row.key_id));
        }
        rows.push_back(std::move(row));
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
        return fail(sqlite_error(db_, path_, "read", ErrorCode::kConfig));
    }
    return rows;
}

Status SqliteLedger::write(const LedgerRow& row) {
    sqlite3_reset(upsert_);
    sqlite3_bind_text(upsert_, 1, row.key_id.data(), static_cast<int>(row.key_id.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_text(upsert_, 2, row.account_id.data(), static_cast<int>(row.account_id.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_int64(upsert_, 3, row.spent);
    sqlite3_bind_int64(upsert_, 4, row.held);
    sqlite3_bind_int64(upsert_, 5, row.window_start);
    int rc = sqlite3_step(upsert_);
    sqlite3_reset(upsert_);
    if (rc != SQLITE_DONE) {
        return fail(sqlite_error(db_, path_, "write", ErrorCode::kIo));
    }
    return ok();
}

}  // namespace helexa::gateway
