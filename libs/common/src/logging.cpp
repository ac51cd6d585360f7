// Logging: directive parsing, level resolution and the component logger cache.
#include "helexa/common/logging.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include "helexa/common/config.h"
#include "helexa/common/strings.h"

namespace helexa {

namespace log {

namespace {

std::optional<Level> parse_level(std::string_view text) {
    std::string lower;
    for (char c : text) {
        lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (lower == "trace") {
        return Level::kTrace;
    }
    if (lower == "debug") {
        return Level::kDebug;
    }
    if (lower == "info") {
        return Level::kInfo;
    }
    if (lower == "warn" || lower == "warning") {
        return Level::kWarn;
    }
    if (lower == "error") {
        return Level::kError;
    }
    if (lower == "off") {
        return Level::kOff;
    }
    return std::nullopt;
}

bool valid_target(std::string_view target) {
    if (target.empty()) {
        return false;
    }
    for (char c : target) {
        if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '_' && c != ':' &&
            c != '-' && c != '.') {
            return false;
        }
    }
    return true;
}

spdlog::level::level_enum to_spdlog(Level level) {
    switch (level) {
        case Level::kTrace:
            return spdlog::level::trace;
        case Level::kDebug:
            return spdlog::level::debug;
        case Level::kInfo:
            return spdlog::level::info;
        case Level::kWarn:
            return spdlog::level::warn;
        case Level::kError:
            return spdlog::level::err;
        case Level::kOff:
            return spdlog::level::off;
    }
    return spdlog::level::info;
}

// Process-wide logging state: the one sink, the directives and every logger handed out.
struct LogState {
    std::mutex mutex;
    Directives directives;
    spdlog::sink_ptr sink;
    std::map<std::string, std::shared_ptr<spdlog::logger>, std::less<>> loggers;
};

LogState& state() {
    static LogState* s = new LogState();  // never destroyed: loggers may log during exit
    return *s;
}

// Timestamps in UTC, RFC 3339 style, then level and component.
constexpr const char* kPattern = "%Y-%m-%dT%H:%M:%S.%fZ %^%-5l%$ %n: %v";

spdlog::sink_ptr make_default_sink() {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    return sink;
}

void apply_sink_format(const spdlog::sink_ptr& sink) {
    sink->set_formatter(
        std::make_unique<spdlog::pattern_formatter>(kPattern, spdlog::pattern_time_type::utc));
}

}  // namespace

std::string_view level_name(Level level) {
    switch (level) {
        case Level::kTrace:
            return "trace";
        case Level::kDebug:
            return "debug";
        case Level::kInfo:
            return "info";
        case Level::kWarn:
            return "warn";
        case Level::kError:
            return "error";
        case Level::kOff:
            return "off";
    }
    return "info";
}

Level Directives::level_for(std::string_view component) const {
    const Directive* best = nullptr;
    for (const Directive& d : targets) {
        bool matches = component == d.target ||
                       (component.size() > d.target.size() + 1 &&
                        component.substr(0, d.target.size()) == d.target &&
                        component.substr(d.target.size(), 2) == "::");
        // Later directives for the same target win, as in RUST_LOG.
        if (matches && (best == nullptr || d.target.size() >= best->target.size())) {
            best = &d;
        }
    }
    return best != nullptr ? best->level : default_level;
}

Result<Directives> parse_directives(std::string_view text) {
    Directives out;
    size_t start = 0;
    while (start <= text.size()) {
        size_t comma = text.find(',', start);
        size_t end = comma == std::string_view::npos ? text.size() : comma;
        std::string_view part = trim_space(text.substr(start, end - start));
        start = end + 1;
        if (!part.empty()) {
            auto bad = [&](std::string_view why) {
                return fail(ErrorCode::kConfig,
                            fmt::format("invalid log directive '{}': {} (expected LEVEL or "
                                        "TARGET=LEVEL with LEVEL one of trace, debug, info, warn, "
                                        "error, off)",
                                        part, why));
            };
            size_t eq = part.find('=');
            if (eq == std::string_view::npos) {
                if (auto level = parse_level(part)) {
                    out.default_level = *level;
                } else if (valid_target(part)) {
                    out.targets.push_back(Directive{std::string(part), Level::kTrace});
                } else {
                    return bad("not a level or a target");
                }
            } else {
                std::string_view target = trim_space(part.substr(0, eq));
                std::string_view level_text = trim_space(part.substr(eq + 1));
                if (!valid_target(target)) {
                    return bad(target.empty() ? "empty target" : "invalid target");
                }
                auto level = parse_level(level_text);
                if (!level) {
                    return bad(fmt::format("unknown level '{}'", level_text));
                }
                out.targets.push_back(Directive{std::string(target), *level});
            }
        }
        if (comma == std::string_view::npos) {
            break;
        }
    }
    return out;
}

std::shared_ptr<spdlog::logger> get(std::string_view component) {
    LogState& s = state();
    std::lock_guard lock(s.mutex);
    auto it = s.loggers.find(component);
    if (it != s.loggers.end()) {
        return it->second;
    }
    if (!s.sink) {
        s.sink = make_default_sink();
        apply_sink_format(s.sink);
    }
    auto logger = std::make_shared<spdlog::logger>(std::string(component), s.sink);
    logger->set_level(to_spdlog(s.directives.level_for(component)));
    // Warnings and errors reach stderr at once; lower levels ride the normal buffering.
    logger->flush_on(spdlog::level::warn);
    s.loggers.emplace(std::string(component), logger);
    return logger;
}

}  // namespace log

std::string log_directives_from_env() {
    for (const char* name : {"HELEXA_LOG", "RUST_LOG"}) {
        const char* value = std::getenv(name);
        if (value != nullptr && *value != '\0') {
            return value;
        }
    }
    return std::string(kDefaultLogDirectives);
}

void init_logging(std::string_view directives, std::shared_ptr<spdlog::sinks::sink> sink) {
    auto parsed = log::parse_directives(directives);
    if (!parsed) {
        throw ConfigError(parsed.error().message());
    }
    log::LogState& s = log::state();
    std::lock_guard lock(s.mutex);
    s.directives = std::move(*parsed);
    s.sink = std::move(sink);
    log::apply_sink_format(s.sink);
    // Loggers handed out earlier keep working: point them at the new sink and level.
    for (auto& [name, logger] : s.loggers) {
        logger->sinks().assign(1, s.sink);
        logger->set_level(log::to_spdlog(s.directives.level_for(name)));
    }
}

void init_logging(std::string_view directives) {
    init_logging(directives, log::make_default_sink());
}

std::string new_request_id() {
    thread_local std::mt19937_64 rng(std::random_device{}());
    // Hex by hand: this runs once per proxied request, and fmt's format-string machinery was
    // ~1% of the gateway's CPU per request (docs/perf/gateway-proxy.md).
    static constexpr char kHex[] = "0123456789abcdef";
    uint64_t v = rng();
    std::string id(16, '0');
    for (int i = 15; i >= 0; --i) {
        id[static_cast<size_t>(i)] = kHex[v & 0xf];
        v >>= 4;
    }
    return id;
}

}  // namespace helexa
