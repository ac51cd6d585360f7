// ConfigReader: TOML navigation, environment overrides, type conversion and read tracking.
#include "helexa/common/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <set>
#include <sstream>
#include <system_error>
#include <variant>

#include <fmt/format.h>
#include <toml++/toml.h>

extern char** environ;

namespace helexa {

namespace detail {
struct ConfigState {
    toml::table root;
    std::string source;
    std::string prefix;
    Environment env;
    // Full keys read as values: they and everything below them count as known.
    std::set<std::string, std::less<>> values_read;
    // Full keys opened as tables or arrays of tables: known only themselves (covers empty ones).
    std::set<std::string, std::less<>> containers_read;
};
}  // namespace detail

namespace {

using detail::ConfigState;

const toml::table* as_table(const void* node) {
    return static_cast<const toml::table*>(node);
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) {
        s.remove_prefix(1);
    }
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) {
        s.remove_suffix(1);
    }
    return s;
}

// Quotes a value for a message, escaping control characters and cutting long text.
std::string quote(std::string_view s) {
    constexpr size_t kMaxShown = 60;
    std::string out = "\"";
    size_t shown = 0;
    for (char c : s) {
        if (shown++ == kMaxShown) {
            out += "...";
            break;
        }
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
        } else {
            out += c;
        }
    }
    out += '"';
    return out;
}

// "string \"five\"", "integer 5", "table", ... for "got ..." in messages.
std::string describe(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::string:
            return "string " + quote(node.as_string()->get());
        case toml::node_type::integer:
            return fmt::format("integer {}", node.as_integer()->get());
        case toml::node_type::floating_point:
            return fmt::format("float {}", node.as_floating_point()->get());
        case toml::node_type::boolean:
            return node.as_boolean()->get() ? "boolean true" : "boolean false";
        case toml::node_type::table:
            return "table";
        case toml::node_type::array:
            return "array";
        case toml::node_type::date: {
            std::ostringstream os;
            os << node.as_date()->get();
            return "date " + os.str();
        }
        case toml::node_type::time: {
            std::ostringstream os;
            os << node.as_time()->get();
            return "time " + os.str();
        }
        case toml::node_type::date_time: {
            std::ostringstream os;
            os << node.as_date_time()->get();
            return "datetime " + os.str();
        }
        case toml::node_type::none:
            break;
    }
    return "nothing";
}

// One step of a key path: a table key or an array index.
using PathStep = std::variant<std::string, size_t>;

std::vector<PathStep> split_path(std::string_view path) {
    std::vector<PathStep> steps;
    size_t i = 0;
    auto bad = [&](std::string_view why) {
        return ConfigError(fmt::format("invalid config key path {}: {}", quote(path), why));
    };
    if (path.empty()) {
        throw bad("empty");
    }
    while (i < path.size()) {
        if (path[i] == '[') {
            size_t close = path.find(']', i);
            if (close == std::string_view::npos || close == i + 1) {
                throw bad("bad index");
            }
            size_t index = 0;
            auto digits = path.substr(i + 1, close - i - 1);
            auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
            if (ec != std::errc() || ptr != digits.data() + digits.size()) {
                throw bad("bad index");
            }
            steps.emplace_back(index);
            i = close + 1;
            if (i < path.size() && path[i] == '.') {
                ++i;
                if (i == path.size()) {
                    throw bad("trailing '.'");
                }
            }
            continue;
        }
        size_t end = path.find_first_of(".[", i);
        if (end == std::string_view::npos) {
            end = path.size();
        }
        if (end == i) {
            throw bad("empty key");
        }
        steps.emplace_back(std::string(path.substr(i, end - i)));
        i = end;
        if (i < path.size() && path[i] == '.') {
            ++i;
            if (i == path.size()) {
                throw bad("trailing '.'");
            }
        }
    }
    return steps;
}

std::string join_key(std::string_view base, std::string_view path) {
    if (base.empty()) {
        return std::string(path);
    }
    if (!path.empty() && path.front() == '[') {
        return fmt::format("{}{}", base, path);
    }
    return fmt::format("{}.{}", base, path);
}

std::string env_name_for(std::string_view prefix, std::string_view full_key) {
    std::string out(prefix);
    for (char c : full_key) {
        if (c == '.' || c == '[') {
            out += "__";
        } else if (c == ']') {
            continue;
        } else if (c == '-') {
            out += '_';
        } else {
            out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
    }
    return out;
}

// True when `key` is `ancestor` or lies below it ("a.b" and "a[0]" are below "a").
bool is_at_or_below(std::string_view key, std::string_view ancestor) {
    if (key.size() < ancestor.size() || key.substr(0, ancestor.size()) != ancestor) {
        return false;
    }
    return key.size() == ancestor.size() || key[ancestor.size()] == '.' ||
           key[ancestor.size()] == '[';
}

std::optional<bool> parse_bool_text(std::string_view text) {
    std::string lower;
    for (char c : trim(text)) {
        lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (lower == "true" || lower == "1" || lower == "yes" || lower == "on") {
        return true;
    }
    if (lower == "false" || lower == "0" || lower == "no" || lower == "off") {
        return false;
    }
    return std::nullopt;
}

template <typename Int>
std::optional<Int> parse_int_text(std::string_view text) {
    text = trim(text);
    if (!text.empty() && text.front() == '+') {
        text.remove_prefix(1);
    }
    Int value{};
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

std::optional<double> parse_double_text(std::string_view text) {
    text = trim(text);
    if (!text.empty() && text.front() == '+') {
        text.remove_prefix(1);
    }
    double value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

std::string read_whole_file(const std::filesystem::path& path, int& err) {
    err = 0;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        return {};
    }
    std::string data;
    char buf[65536];
    while (true) {
        ssize_t n = ::read(fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            err = errno;
            break;
        }
        if (n == 0) {
            break;
        }
        data.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return data;
}

std::string errno_text(int err) {
    return std::error_code(err, std::generic_category()).message();
}

}  // namespace

int config_exit_code() {
    return kConfigExitCode;
}

Environment process_environment() {
    Environment env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        std::string_view entry(*e);
        size_t eq = entry.find('=');
        if (eq == std::string_view::npos) {
            continue;
        }
        env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
    }
    return env;
}

std::string ListenAddress::to_string() const {
    if (host.find(':') != std::string::npos) {
        return fmt::format("[{}]:{}", host, port);
    }
    return fmt::format("{}:{}", host, port);
}

Result<ListenAddress> parse_listen_address(std::string_view text) {
    std::string_view s = trim(text);
    auto bad = [&](std::string_view why) {
        return fail(ErrorCode::kConfig, fmt::format("invalid listen address {}: {} (expected "
                                                    "host:port, e.g. 0.0.0.0:31313 or [::1]:8080)",
                                                    quote(text), why));
    };
    std::string_view host;
    std::string_view port_text;
    if (!s.empty() && s.front() == '[') {
        size_t close = s.find(']');
        if (close == std::string_view::npos) {
            return bad("missing ']'");
        }
        host = s.substr(1, close - 1);
        std::string_view rest = s.substr(close + 1);
        if (rest.empty() || rest.front() != ':') {
            return bad("missing ':port' after ']'");
        }
        port_text = rest.substr(1);
        if (host.empty()) {
            return bad("empty host");
        }
        for (char c : host) {
            if (std::isxdigit(static_cast<unsigned char>(c)) == 0 && c != ':' && c != '.' &&
                c != '%') {
                return bad("invalid IPv6 address");
            }
        }
    } else {
        size_t colon = s.rfind(':');
        if (colon == std::string_view::npos) {
            return bad("missing ':port'");
        }
        host = s.substr(0, colon);
        port_text = s.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            return bad("IPv6 addresses need brackets");
        }
        if (host.empty()) {
            return bad("missing host (use 0.0.0.0 for all interfaces)");
        }
        for (char c : host) {
            if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '.' && c != '-' &&
                c != '_') {
                return bad("invalid character in host");
            }
        }
    }
    if (port_text.empty()) {
        return bad("missing port");
    }
    uint32_t port = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port > 65535) {
        return bad("port must be a number from 0 to 65535");
    }
    return ListenAddress{std::string(host), static_cast<uint16_t>(port)};
}

// ---------------------------------------------------------------------------------------------
// Construction

ConfigReader::ConfigReader(std::shared_ptr<detail::ConfigState> state, std::string base_path,
                           const void* node)
    : state_(std::move(state)), base_path_(std::move(base_path)), node_(node) {}

ConfigReader ConfigReader::from_string(std::string_view toml_text, std::string source_name,
                                       std::string env_prefix, Environment env) {
    auto state = std::make_shared<ConfigState>();
    state->source = std::move(source_name);
    state->prefix = std::move(env_prefix);
    state->env = std::move(env);
    try {
        state->root = toml::parse(toml_text, std::string_view(state->source));
    } catch (const toml::parse_error& e) {
        throw ConfigError(fmt::format("{}: malformed TOML at line {}, column {}: {}", state->source,
                                      e.source().begin.line, e.source().begin.column,
                                      e.description()));
    }
    const void* root = &state->root;
    return ConfigReader(std::move(state), "", root);
}

ConfigReader ConfigReader::empty(std::string source_name, std::string env_prefix,
                                 Environment env) {
    return from_string("", std::move(source_name), std::move(env_prefix), std::move(env));
}

ConfigReader ConfigReader::from_file(const std::filesystem::path& path, std::string env_prefix,
                                     Environment env) {
    int err = 0;
    std::string text = read_whole_file(path, err);
    if (err != 0) {
        throw ConfigError(
            fmt::format("cannot read config file '{}': {}", path.string(), errno_text(err)));
    }
    return from_string(text, path.string(), std::move(env_prefix), std::move(env));
}

ConfigReader ConfigReader::from_optional_file(const std::filesystem::path& path,
                                              std::string env_prefix, Environment env) {
    int err = 0;
    std::string text = read_whole_file(path, err);
    if (err == ENOENT) {
        return empty(path.string(), std::move(env_prefix), std::move(env));
    }
    if (err != 0) {
        throw ConfigError(
            fmt::format("cannot read config file '{}': {}", path.string(), errno_text(err)));
    }
    return from_string(text, path.string(), std::move(env_prefix), std::move(env));
}

// ---------------------------------------------------------------------------------------------
// Lookup

// What a key resolves to: the file node (may be null) and the environment override (if set).
struct ConfigReader::Found {
    const toml::node* node = nullptr;
    std::optional<std::string> env_value;
    std::string key;
    std::string env_name;
};

namespace {

// Walks `path` from `start`; a missing step gives nullptr, a non-container on the way throws.
const toml::node* walk(const ConfigState& state, const toml::table* start, std::string_view base,
                       std::string_view path) {
    std::vector<PathStep> steps = split_path(path);
    const toml::node* current = start;
    std::string walked(base);
    for (const PathStep& step : steps) {
        if (current == nullptr) {
            return nullptr;
        }
        if (const auto* key = std::get_if<std::string>(&step)) {
            const toml::table* tbl = current->as_table();
            if (tbl == nullptr) {
                throw ConfigError(fmt::format("{}: key '{}': expected table, got {}", state.source,
                                              walked, describe(*current)));
            }
            current = tbl->get(*key);
            walked = join_key(walked, *key);
        } else {
            size_t index = std::get<size_t>(step);
            const toml::array* arr = current->as_array();
            if (arr == nullptr) {
                throw ConfigError(fmt::format("{}: key '{}': expected array, got {}", state.source,
                                              walked, describe(*current)));
            }
            current = index < arr->size() ? arr->get(index) : nullptr;
            walked = fmt::format("{}[{}]", walked, index);
        }
    }
    return current;
}

}  // namespace

const std::string& ConfigReader::source() const {
    return state_->source;
}

std::string ConfigReader::full_key(std::string_view path) const {
    return join_key(base_path_, path);
}

std::string ConfigReader::env_var_name(std::string_view path) const {
    return env_name_for(state_->prefix, full_key(path));
}

bool ConfigReader::contains(std::string_view path) const {
    auto it = state_->env.find(env_var_name(path));
    if (it != state_->env.end() && !it->second.empty()) {
        return true;
    }
    return walk(*state_, as_table(node_), base_path_, path) != nullptr;
}

void ConfigReader::throw_missing(std::string_view path) const {
    throw ConfigError(fmt::format("{}: missing required key '{}' (or set {})", state_->source,
                                  full_key(path), env_var_name(path)));
}

ConfigReader::Found ConfigReader::lookup(std::string_view path) const {
    Found found;
    found.key = full_key(path);
    found.env_name = env_name_for(state_->prefix, found.key);
    found.node = walk(*state_, as_table(node_), base_path_, path);
    auto env_it = state_->env.find(found.env_name);
    if (env_it != state_->env.end() && !env_it->second.empty()) {
        found.env_value = env_it->second;
    }
    state_->values_read.insert(found.key);
    return found;
}

namespace {

[[noreturn]] void type_error(const ConfigState& state, const std::string& key,
                             std::string_view expected, const toml::node& node) {
    throw ConfigError(fmt::format("{}: key '{}': expected {}, got {}", state.source, key, expected,
                                  describe(node)));
}

[[noreturn]] void env_error(const ConfigState& state, const std::string& key,
                            const std::string& env_name, std::string_view expected,
                            std::string_view value) {
    throw ConfigError(fmt::format("{}: key '{}' (environment {}): expected {}, got {}",
                                  state.source, key, env_name, expected, quote(value)));
}

std::string int_range_text(int64_t min, uint64_t max) {
    return fmt::format("integer in [{}, {}]", min, max);
}

}  // namespace

std::optional<bool> ConfigReader::read_bool(std::string_view path) const {
    const Found f = lookup(path);
    if (f.env_value) {
        auto v = parse_bool_text(*f.env_value);
        if (!v) {
            env_error(*state_, f.key, f.env_name, "boolean (true/false/1/0/yes/no)", *f.env_value);
        }
        return v;
    }
    if (f.node == nullptr) {
        return std::nullopt;
    }
    if (const auto* b = f.node->as_boolean()) {
        return b->get();
    }
    type_error(*state_, f.key, "boolean", *f.node);
}

std::optional<int64_t> ConfigReader::read_int(std::string_view path, int64_t min,
                                              uint64_t max) const {
    const Found f = lookup(path);
    auto in_range = [&](int64_t v) {
        return v >= min && (v < 0 || static_cast<uint64_t>(v) <= max);
    };
    if (f.env_value) {
        auto v = parse_int_text<int64_t>(*f.env_value);
        if (!v) {
            env_error(*state_, f.key, f.env_name, "integer", *f.env_value);
        }
        if (!in_range(*v)) {
            env_error(*state_, f.key, f.env_name, int_range_text(min, max), *f.env_value);
        }
        return v;
    }
    if (f.node == nullptr) {
        return std::nullopt;
    }
    const auto* i = f.node->as_integer();
    if (i == nullptr) {
        type_error(*state_, f.key, "integer", *f.node);
    }
    if (!in_range(i->get())) {
        type_error(*state_, f.key, int_range_text(min, max), *f.node);
    }
    return i->get();
}

std::optional<uint64_t> ConfigReader::read_uint(std::string_view path, uint64_t max) const {
    const Found f = lookup(path);
    std::string expected = int_range_text(0, max);
    if (f.env_value) {
        auto v = parse_int_text<uint64_t>(*f.env_value);
        if (!v) {
            bool negative = parse_int_text<int64_t>(*f.env_value).has_value();
            env_error(*state_, f.key, f.env_name, negative ? expected : "integer", *f.env_value);
        }
        if (*v > max) {
            env_error(*state_, f.key, f.env_name, expected, *f.env_value);
        }
        return v;
    }
    if (f.node == nullptr) {
        return std::nullopt;
    }
    const auto* i = f.node->as_integer();
    if (i == nullptr) {
        type_error(*state_, f.key, "integer", *f.node);
    }
    if (i->get() < 0 || static_cast<uint64_t>(i->get()) > max) {
        type_error(*state_, f.key, expected, *f.node);
    }
    return static_cast<uint64_t>(i->get());
}

std::optional<double> ConfigReader::read_double(std::string_view path) const {
    const Found f = lookup(path);
    if (f.env_value) {
        auto v = parse_double_text(*f.env_value);
        if (!v) {
            env_error(*state_, f.key, f.env_name, "number", *f.env_value);
        }
        return v;
    }
    if (f.node == nullptr) {
        return std::nullopt;
    }
    if (const auto* d = f.node->as_floating_point()) {
        return d->get();
    }
    // An integer where a float is expected (`timeout = 5`) is what the operator meant.
    if (const auto* i = f.node->as_integer()) {
        return static_cast<double>(i->get());
    }
    type_error(*state_, f.key, "number", *f.node);
}

std::optional<std::string> ConfigReader::read_string(std::string_view path) const {
    const Found f = lookup(path);
    if (f.env_value) {
        return f.env_value;
    }
    if (f.node == nullptr) {
        return std::nullopt;
    }
    if (const auto* s = f.node->as_string()) {
        return s->get();
    }
    type_error(*state_, f.key, "string", *f.node);
}

std::optional<ListenAddress> ConfigReader::read_listen(std::string_view path) const {
    auto text = read_string(path);
    if (!text) {
        return std::nullopt;
    }
    auto parsed = parse_listen_address(*text);
    if (!parsed) {
        throw ConfigError(fmt::format("{}: key '{}': {}", state_->source, full_key(path),
                                      parsed.error().message()));
    }
    return *parsed;
}

namespace {

// Converts each element of a TOML array with `convert` (which returns nullopt on a wrong type).
template <typename T, typename Convert>
std::vector<T> convert_array(const ConfigState& state, const std::string& key,
                             const toml::array& arr, std::string_view expected_element,
                             Convert convert) {
    std::vector<T> out;
    out.reserve(arr.size());
    for (size_t i = 0; i < arr.size(); ++i) {
        const toml::node& el = *arr.get(i);
        std::optional<T> v = convert(el);
        if (!v) {
            type_error(state, fmt::format("{}[{}]", key, i), expected_element, el);
        }
        out.push_back(std::move(*v));
    }
    return out;
}

// An environment array: a TOML inline array ("[\"a\", \"b\"]") or comma-separated text.
// Returns the parsed TOML array, or nullopt when the text is comma-separated.
std::optional<toml::array> env_inline_array(const ConfigState& state, const std::string& key,
                                            const std::string& env_name, std::string_view text) {
    std::string_view t = trim(text);
    if (t.empty() || t.front() != '[') {
        return std::nullopt;
    }
    try {
        toml::table parsed = toml::parse(fmt::format("v = {}", t), std::string_view(env_name));
        if (const toml::array* arr = parsed.get_as<toml::array>("v")) {
            return *arr;
        }
    } catch (const toml::parse_error&) {
        // Reported below as "expected array".
    }
    env_error(state, key, env_name, "array (comma-separated or a TOML inline array)", text);
}

std::vector<std::string> split_commas(std::string_view text) {
    std::vector<std::string> out;
    if (trim(text).empty()) {
        return out;
    }
    size_t start = 0;
    while (true) {
        size_t comma = text.find(',', start);
        std::string_view part =
            text.substr(start, comma == std::string_view::npos ? text.size() - start
                                                               : comma - start);
        out.emplace_back(trim(part));
        if (comma == std::string_view::npos) {
            break;
        }
        start = comma + 1;
    }
    return out;
}

std::optional<std::string> node_string(const toml::node& n) {
    if (const auto* s = n.as_string()) {
        return s->get();
    }
    return std::nullopt;
}
std::optional<int64_t> node_int(const toml::node& n) {
    if (const auto* i = n.as_integer()) {
        return i->get();
    }
    return std::nullopt;
}
std::optional<double> node_double(const toml::node& n) {
    if (const auto* d = n.as_floating_point()) {
        return d->get();
    }
    if (const auto* i = n.as_integer()) {
        return static_cast<double>(i->get());
    }
    return std::nullopt;
}

}  // namespace

std::optional<std::vector<std::string>> ConfigReader::read_string_array(
    std::string_view path) const {
    const Found f = lookup(path);
    if (f.env_value) {
        std::string env_key = f.env_name;
        if (auto arr = env_inline_array(*state_, f.key, f.env_name, *f.env_value)) {
            return convert_array<std::string>(*state_, f.key + " (environment " + env_key + ")",
                                              *arr, "string", node_string);
        }
        return split_commas(*f.env_value);
    }
    if (f.node == nullptr) {
        return std::nullopt;
    }
    const toml::array* arr = f.node->as_array();
    if (arr == nullptr) {
        type_error(*state_, f.key, "array of strings", *f.node);
    }
    return convert_array<std::string>(*state_, f.key, *arr, "string", node_string);
}

std::optional<std::vector<int64_t>> ConfigReader::read_int_array(std::string_view path) const {
    const Found f = lookup(path);
    if (f.env_value) {
        if (auto arr = env_inline_array(*state_, f.key, f.env_name, *f.env_value)) {
            return convert_array<int64_t>(*state_, f.key + " (environment " + f.env_name + ")",
                                          *arr, "integer", node_int);
        }
        std::vector<int64_t> out;
        for (const std::string& part : split_commas(*f.env_value)) {
            auto v = parse_int_text<int64_t>(part);
            if (!v) {
                env_error(*state_, f.key, f.env_name, "comma-separated integers", *f.env_value);
            }
            out.push_back(*v);
        }
        return out;
    }
    if (f.node == nullptr) {
        return std::nullopt;
    }
    const toml::array* arr = f.node->as_array();
    if (arr == nullptr) {
        type_error(*state_, f.key, "array of integers", *f.node);
    }
    return convert_array<int64_t>(*state_, f.key, *arr, "integer", node_int);
}

std::optional<std::vector<double>> ConfigReader::read_double_array(std::string_view path) const {
    const Found f = lookup(path);
    if (f.env_value) {
        if (auto arr = env_inline_array(*state_, f.key, f.env_name, *f.env_value)) {
            return convert_array<double>(*state_, f.key + " (environment " + f.env_name + ")",
                                         *arr, "number", node_double);
        }
        std::vector<double> out;
        for (const std::string& part : split_commas(*f.env_value)) {
            auto v = parse_double_text(part);
            if (!v) {
                env_error(*state_, f.key, f.env_name, "comma-separated numbers", *f.env_value);
            }
            out.push_back(*v);
        }
        return out;
    }
    if (f.node == nullptr) {
        return std::nullopt;
    }
    const toml::array* arr = f.node->as_array();
    if (arr == nullptr) {
        type_error(*state_, f.key, "array of numbers", *f.node);
    }
    return convert_array<double>(*state_, f.key, *arr, "number", node_double);
}

// ---------------------------------------------------------------------------------------------
// Tables

std::optional<ConfigReader> ConfigReader::optional_table(std::string_view path) const {
    std::string key = full_key(path);
    const toml::node* node = walk(*state_, as_table(node_), base_path_, path);
    if (node == nullptr) {
        return std::nullopt;
    }
    const toml::table* tbl = node->as_table();
    if (tbl == nullptr) {
        type_error(*state_, key, "table", *node);
    }
    state_->containers_read.insert(key);
    return ConfigReader(state_, std::move(key), tbl);
}

ConfigReader ConfigReader::table(std::string_view path) const {
    if (auto t = optional_table(path)) {
        return std::move(*t);
    }
    return ConfigReader(state_, full_key(path), nullptr);
}

ConfigReader ConfigReader::child_table(std::string_view key) const {
    std::string full = join_key(base_path_, key);
    const toml::table* self = as_table(node_);
    const toml::node* node = self != nullptr ? self->get(key) : nullptr;
    if (node == nullptr) {
        return ConfigReader(state_, std::move(full), nullptr);
    }
    const toml::table* tbl = node->as_table();
    if (tbl == nullptr) {
        type_error(*state_, full, "table", *node);
    }
    state_->containers_read.insert(full);
    return ConfigReader(state_, std::move(full), tbl);
}

std::vector<ConfigReader> ConfigReader::table_array(std::string_view path) const {
    std::string key = full_key(path);
    const toml::node* node = walk(*state_, as_table(node_), base_path_, path);
    std::vector<ConfigReader> out;
    if (node == nullptr) {
        return out;
    }
    const toml::array* arr = node->as_array();
    if (arr == nullptr) {
        type_error(*state_, key, "array of tables", *node);
    }
    state_->containers_read.insert(key);
    for (size_t i = 0; i < arr->size(); ++i) {
        std::string element_key = fmt::format("{}[{}]", key, i);
        const toml::table* tbl = arr->get(i)->as_table();
        if (tbl == nullptr) {
            type_error(*state_, element_key, "table", *arr->get(i));
        }
        state_->containers_read.insert(element_key);
        out.push_back(ConfigReader(state_, std::move(element_key), tbl));
    }
    return out;
}

std::vector<std::string> ConfigReader::keys() const {
    std::vector<std::string> out;
    if (const toml::table* self = as_table(node_)) {
        for (const auto& [k, v] : *self) {
            out.emplace_back(k.str());
        }
    }
    return out;
}

namespace {

// Collects leaf keys: scalars, arrays that hold no tables, and empty tables.
void collect_leaves(const toml::node& node, const std::string& key,
                    std::vector<std::string>& out) {
    if (const toml::table* tbl = node.as_table()) {
        if (tbl->empty()) {
            out.push_back(key);
            return;
        }
        for (const auto& [k, v] : *tbl) {
            collect_leaves(v, join_key(key, k.str()), out);
        }
        return;
    }
    if (const toml::array* arr = node.as_array()) {
        bool has_tables = false;
        for (const toml::node& el : *arr) {
            has_tables = has_tables || el.is_table();
        }
        if (has_tables) {
            for (size_t i = 0; i < arr->size(); ++i) {
                collect_leaves(*arr->get(i), fmt::format("{}[{}]", key, i), out);
            }
            return;
        }
    }
    out.push_back(key);
}

}  // namespace

std::vector<std::string> ConfigReader::unknown_keys() const {
    std::vector<std::string> leaves;
    if (const toml::table* self = as_table(node_)) {
        if (base_path_.empty()) {
            for (const auto& [k, v] : *self) {
                collect_leaves(v, std::string(k.str()), leaves);
            }
        } else {
            collect_leaves(*self, base_path_, leaves);
        }
    }
    std::vector<std::string> unknown;
    for (const std::string& leaf : leaves) {
        if (state_->containers_read.count(leaf) != 0) {
            continue;
        }
        bool covered = std::any_of(
            state_->values_read.begin(), state_->values_read.end(),
            [&](const std::string& read) { return is_at_or_below(leaf, read); });
        if (!covered) {
            unknown.push_back(leaf);
        }
    }
    std::sort(unknown.begin(), unknown.end());
    return unknown;
}

}  // namespace helexa
