// Logging: spdlog loggers per component ("cortex::proxy", "neuron::engine"), levels chosen by
// RUST_LOG-style directives, all writing to stderr; plus RequestLog, which puts `req=<id>` on
// every line of one request's life (requests are coroutines that hop threads, so the id travels
// as a value rather than in thread-local state).
//
// Use: main calls init_logging(flag or log_directives_from_env()) once, before serving; code
// fetches its logger once (`static const auto kLog = log::get("cortex::proxy");` or a member) and
// keeps the handle, since get() takes a lock. Per request: `RequestLog rlog(kLog, new_request_id())`.
//
// Directives: comma-separated; `level` sets the default, `target=level` sets a component and
// everything below it on `::` boundaries (`neuron` covers `neuron::engine`, not `neuronx`); the
// longest matching target wins. A bare `target` means trace (as in RUST_LOG). Levels: trace, debug,
// info, warn (warning), error, off.
//
// Thread-safety: everything here is thread-safe; loggers are spdlog's *_mt kind.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <spdlog/logger.h>

#include "helexa/common/result.h"

namespace helexa {

namespace log {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError, kOff };

std::string_view level_name(Level level);

struct Directive {
    std::string target;  // component prefix, e.g. "cortex::proxy"
    Level level = Level::kInfo;
    bool operator==(const Directive&) const = default;
};

struct Directives {
    Level default_level = Level::kInfo;
    std::vector<Directive> targets;

    // Level for a component: the longest target that equals it or is a `::` prefix of it, else the
    // default.
    Level level_for(std::string_view component) const;
};

// Parses directives; kConfig error naming the bad part on failure. Empty text means "info".
Result<Directives> parse_directives(std::string_view text);

// The component logger (created on first use, cached). Its level follows the directives given to
// init_logging, also when init_logging runs later. Takes a lock: keep the returned handle.
std::shared_ptr<spdlog::logger> get(std::string_view component);

}  // namespace log

// Default directives when neither --log nor the environment sets any.
inline constexpr std::string_view kDefaultLogDirectives = "info";

// HELEXA_LOG, else RUST_LOG (operators of the original set it in systemd drop-ins), else "info".
std::string log_directives_from_env();

// Installs the directives and the stderr sink. Throws ConfigError naming the bad part when the
// directives are invalid (main turns that into exit code 2). Loggers handed out earlier follow the
// new directives and sink. Call it before other threads log: re-pointing sinks while another
// thread writes through them is a race (tests call it between cases).
void init_logging(std::string_view directives);

// Same, writing to `sink` instead of stderr (tests capture output this way).
void init_logging(std::string_view directives, std::shared_ptr<spdlog::sinks::sink> sink);

// A short random hex request id (16 hex digits, 64 random bits).
std::string new_request_id();

// A logger plus the request id; every line is prefixed `req=<id> `. A cheap value: copy it into
// each coroutine of the request.
class RequestLog {
public:
    RequestLog(std::shared_ptr<spdlog::logger> logger, std::string request_id)
        : logger_(std::move(logger)), id_(std::move(request_id)) {}

    const std::string& id() const { return id_; }
    const std::shared_ptr<spdlog::logger>& logger() const { return logger_; }

    // The same request id on another component's logger.
    RequestLog with_logger(std::shared_ptr<spdlog::logger> logger) const {
        return RequestLog(std::move(logger), id_);
    }

    bool should_log(spdlog::level::level_enum level) const {
        return logger_ && logger_->should_log(level);
    }

    template <typename... Args>
    void trace(fmt::format_string<Args...> format, Args&&... args) const {
        emit(spdlog::level::trace, format, std::forward<Args>(args)...);
    }
    template <typename... Args>
    void debug(fmt::format_string<Args...> format, Args&&... args) const {
        emit(spdlog::level::debug, format, std::forward<Args>(args)...);
    }
    template <typename... Args>
    void info(fmt::format_string<Args...> format, Args&&... args) const {
        emit(spdlog::level::info, format, std::forward<Args>(args)...);
    }
    template <typename... Args>
    void warn(fmt::format_string<Args...> format, Args&&... args) const {
        emit(spdlog::level::warn, format, std::forward<Args>(args)...);
    }
    template <typename... Args>
    void error(fmt::format_string<Args...> format, Args&&... args) const {
        emit(spdlog::level::err, format, std::forward<Args>(args)...);
    }

private:
    template <typename... Args>
    void emit(spdlog::level::level_enum level, fmt::format_string<Args...> format,
              Args&&... args) const {
        // Formatting happens only when the line will be written.
        if (!should_log(level)) {
            return;
        }
        logger_->log(level, "req={} {}", id_, fmt::format(format, std::forward<Args>(args)...));
    }

    std::shared_ptr<spdlog::logger> logger_;
    std::string id_;
};

}  // namespace helexa
