// Internals shared by the ConfigReader sources (config.cpp, config_values.cpp,
// config_messages.cpp): the state a reader and its children share, what a key resolves to, and
// the helpers every part uses to parse text and word operator-facing errors. Not public API.
// Thread-safety: as ConfigReader (single-threaded start-up code).
#pragma once

#include <charconv>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>

#include <toml++/toml.h>

#include "helexa/common/config.h"
#include "helexa/common/strings.h"

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

// What a key resolves to: the file node (null when absent from the file), the environment
// override (when set and non-empty), and the full key and variable name for messages.
struct ResolvedKey {
    const toml::node* node = nullptr;
    std::optional<std::string> env_value;
    std::string key;
    std::string env_name;
};

// A reader's node: the toml::table it stands for, or nullptr when the table is absent.
inline const toml::table* as_table(const void* node) {
    return static_cast<const toml::table*>(node);
}

// `text` read whole as a number: no sign or space allowed beyond what from_chars takes.
template <typename Number>
std::optional<Number> parse_exact(std::string_view text) {
    Number value{};
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

// "key[index]": the full key of an array element.
std::string index_key(std::string_view key, size_t index);

// Messages (config_messages.cpp).

// Quotes a value for a message, escaping control characters and cutting long text.
std::string quote(std::string_view s);
// "string \"five\"", "integer 5", "table", ... for "got ..." in messages.
std::string describe(const toml::node& node);

// "<source>: key '<key>': expected <expected>, got <node>".
[[noreturn]] void type_error(const ConfigState& state, const std::string& key,
                             std::string_view expected, const toml::node& node);
// "<source>: key '<key>' (environment <VAR>): expected <expected>, got \"<value>\"".
[[noreturn]] void env_error(const ConfigState& state, const std::string& key,
                            const std::string& env_name, std::string_view expected,
                            std::string_view value);

}  // namespace detail

// ConfigReader::lookup's result. The public header only names it; its fields live in
// detail::ResolvedKey so that helpers outside the class can take it.
struct ConfigReader::Found : detail::ResolvedKey {};

}  // namespace helexa
