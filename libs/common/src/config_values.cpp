// ConfigReader's typed getters: each turns a file value or an environment string into a bool,
// integer (range-checked), number, string, array or listen address, or throws a ConfigError that
// says which key, which source and what was expected. Also listen-address parsing.
#include <cctype>
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "internal/config_internal.h"

namespace helexa {

namespace {

using detail::ConfigState;
using detail::env_error;
using detail::parse_exact;
using detail::quote;
using detail::ResolvedKey;
using detail::type_error;

// ---------------------------------------------------------------------------------------------
// Environment text and file nodes, each to one type (nullopt when it doesn't convert)

std::optional<bool> parse_bool_text(std::string_view text) {
    std::string lower;
    for (char c : trim_space(text)) {
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

// A number as an operator writes it in a variable: surrounding space and a leading '+' allowed.
template <typename Number>
std::optional<Number> parse_number_text(std::string_view text) {
    text = trim_space(text);
    if (!text.empty() && text.front() == '+') {
        text.remove_prefix(1);
    }
    return parse_exact<Number>(text);
}

std::optional<std::string> text_string(std::string_view text) {
    return std::string(text);
}

std::optional<bool> node_bool(const toml::node& n) {
    if (const auto* b = n.as_boolean()) {
        return b->get();
    }
    return std::nullopt;
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
// An integer where a float is expected (`timeout = 5`) is what the operator meant.
std::optional<double> node_double(const toml::node& n) {
    if (const auto* d = n.as_floating_point()) {
        return d->get();
    }
    if (const auto* i = n.as_integer()) {
        return static_cast<double>(i->get());
    }
    return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Reading one resolved key as a value or an array: the environment wins, then the file

// How one value type reads, and how messages name it.
template <typename T>
struct ValueKind {
    std::string_view name;      // "expected <name>" for a file value
    std::string_view env_name;  // "expected <env_name>" for an environment string
    std::optional<T> (*from_node)(const toml::node&);
    std::optional<T> (*from_text)(std::string_view);
};

constexpr ValueKind<bool> kBoolean{"boolean", "boolean (true/false/1/0/yes/no)", node_bool,
                                   parse_bool_text};
constexpr ValueKind<int64_t> kInteger{"integer", "integer", node_int,
                                      parse_number_text<int64_t>};
constexpr ValueKind<double> kNumber{"number", "number", node_double, parse_number_text<double>};
constexpr ValueKind<std::string> kString{"string", "string", node_string, text_string};

// How one array type reads: its element kind, and how messages name the whole.
template <typename T>
struct ArrayKind {
    ValueKind<T> element;
    std::string_view name;      // "expected <name>" for a file value that is not an array
    std::string_view env_name;  // "expected <env_name>" for a bad comma-separated part
};

constexpr ArrayKind<std::string> kStringArray{kString, "array of strings",
                                              "comma-separated strings"};
constexpr ArrayKind<int64_t> kIntegerArray{kInteger, "array of integers",
                                           "comma-separated integers"};
constexpr ArrayKind<double> kNumberArray{kNumber, "array of numbers", "comma-separated numbers"};

template <typename T>
std::optional<T> read_value(const ConfigState& state, const ResolvedKey& f,
                            const ValueKind<T>& kind) {
    if (f.env_value) {
        auto v = kind.from_text(*f.env_value);
        if (!v) {
            env_error(state, f.key, f.env_name, kind.env_name, *f.env_value);
        }
        return v;
    }
    if (f.node == nullptr) {
        return std::nullopt;
    }
    auto v = kind.from_node(*f.node);
    if (!v) {
        type_error(state, f.key, kind.name, *f.node);
    }
    return v;
}

// A value of the right type but out of range, worded for where it came from.
[[noreturn]] void range_error(const ConfigState& state, const ResolvedKey& f,
                              std::string_view expected) {
    if (f.env_value) {
        env_error(state, f.key, f.env_name, expected, *f.env_value);
    }
    type_error(state, f.key, expected, *f.node);
}

std::string int_range_text(int64_t min, uint64_t max) {
    return fmt::format("integer in [{}, {}]", min, max);
}

// Converts each element of a TOML array; `key` names the array in messages.
template <typename T>
std::vector<T> convert_array(const ConfigState& state, const std::string& key,
                             const toml::array& arr, const ValueKind<T>& element) {
    std::vector<T> out;
    out.reserve(arr.size());
    for (size_t i = 0; i < arr.size(); ++i) {
        const toml::node& el = *arr.get(i);
        std::optional<T> v = element.from_node(el);
        if (!v) {
            type_error(state, detail::index_key(key, i), element.name, el);
        }
        out.push_back(std::move(*v));
    }
    return out;
}

// An environment array: a TOML inline array ("[\"a\", \"b\"]") or comma-separated text.
// Returns the parsed TOML array, or nullopt when the text is comma-separated.
std::optional<toml::array> env_inline_array(const ConfigState& state, const std::string& key,
                                            const std::string& env_name, std::string_view text) {
    std::string_view t = trim_space(text);
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

// Comma-separated parts, each trimmed; blank text is no parts.
std::vector<std::string> split_commas(std::string_view text) {
    std::vector<std::string> out;
    if (trim_space(text).empty()) {
        return out;
    }
    size_t start = 0;
    while (true) {
        size_t comma = text.find(',', start);
        std::string_view part =
            text.substr(start, comma == std::string_view::npos ? text.size() - start
                                                               : comma - start);
        out.emplace_back(trim_space(part));
        if (comma == std::string_view::npos) {
            break;
        }
        start = comma + 1;
    }
    return out;
}

template <typename T>
std::optional<std::vector<T>> read_array(const ConfigState& state, const ResolvedKey& f,
                                         const ArrayKind<T>& kind) {
    if (f.env_value) {
        if (auto arr = env_inline_array(state, f.key, f.env_name, *f.env_value)) {
            return convert_array(state, f.key + " (environment " + f.env_name + ")", *arr,
                                 kind.element);
        }
        std::vector<T> out;
        for (const std::string& part : split_commas(*f.env_value)) {
            auto v = kind.element.from_text(part);
            if (!v) {
                env_error(state, f.key, f.env_name, kind.env_name, *f.env_value);
            }
            out.push_back(std::move(*v));
        }
        return out;
    }
    if (f.node == nullptr) {
        return std::nullopt;
    }
    const toml::array* arr = f.node->as_array();
    if (arr == nullptr) {
        type_error(state, f.key, kind.name, *f.node);
    }
    return convert_array(state, f.key, *arr, kind.element);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Listen addresses

std::string ListenAddress::to_string() const {
    if (host.find(':') != std::string::npos) {
        return fmt::format("[{}]:{}", host, port);
    }
    return fmt::format("{}:{}", host, port);
}

Result<ListenAddress> parse_listen_address(std::string_view text) {
    std::string_view s = trim_space(text);
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
    auto port = parse_exact<uint32_t>(port_text);
    if (!port || *port > 65535) {
        return bad("port must be a number from 0 to 65535");
    }
    return ListenAddress{std::string(host), static_cast<uint16_t>(*port)};
}

// ---------------------------------------------------------------------------------------------
// Typed getters

std::optional<bool> ConfigReader::read_bool(std::string_view path) const {
    return read_value(*state_, lookup(path), kBoolean);
}

std::optional<int64_t> ConfigReader::read_int(std::string_view path, int64_t min,
                                              uint64_t max) const {
    const Found f = lookup(path);
    auto v = read_value(*state_, f, kInteger);
    if (v && (*v < min || (*v >= 0 && static_cast<uint64_t>(*v) > max))) {
        range_error(*state_, f, int_range_text(min, max));
    }
    return v;
}

std::optional<uint64_t> ConfigReader::read_uint(std::string_view path, uint64_t max) const {
    const Found f = lookup(path);
    const std::string expected = int_range_text(0, max);
    if (f.env_value) {
        // Parsed unsigned so that values past INT64_MAX read; a negative number is then out of
        // range rather than "not an integer".
        auto v = parse_number_text<uint64_t>(*f.env_value);
        if (!v) {
            bool negative = parse_number_text<int64_t>(*f.env_value).has_value();
            env_error(*state_, f.key, f.env_name, negative ? expected : "integer", *f.env_value);
        }
        if (*v > max) {
            range_error(*state_, f, expected);
        }
        return v;
    }
    auto v = read_value(*state_, f, kInteger);
    if (!v) {
        return std::nullopt;
    }
    if (*v < 0 || static_cast<uint64_t>(*v) > max) {
        range_error(*state_, f, expected);
    }
    return static_cast<uint64_t>(*v);
}

std::optional<double> ConfigReader::read_double(std::string_view path) const {
    return read_value(*state_, lookup(path), kNumber);
}

std::optional<std::string> ConfigReader::read_string(std::string_view path) const {
    return read_value(*state_, lookup(path), kString);
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

std::optional<std::vector<std::string>> ConfigReader::read_string_array(
    std::string_view path) const {
    return read_array(*state_, lookup(path), kStringArray);
}

std::optional<std::vector<int64_t>> ConfigReader::read_int_array(std::string_view path) const {
    return read_array(*state_, lookup(path), kIntegerArray);
}

std::optional<std::vector<double>> ConfigReader::read_double_array(std::string_view path) const {
    return read_array(*state_, lookup(path), kNumberArray);
}

}  // namespace helexa
