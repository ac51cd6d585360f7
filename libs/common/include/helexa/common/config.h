// Configuration: TOML files (toml++) with an environment-variable override for every key a program
// reads, typed getters and errors that name the file, the full key and expected vs actual type.
//
// Use: each daemon builds one ConfigReader at start-up from its file (cortex.toml, neuron.toml, ...)
// and a prefix ("CORTEX_", "NEURON_", "HELEXA_BENCH_"), reads every key it knows with get/require,
// then logs a warning for each entry of unknown_keys(). Any ConfigError is caught in main, printed
// and turned into exit code config_exit_code() (2).
//
// Environment mapping (docs/design/config.md): PREFIX + the upper-cased full key, with '.' and
// array indices joined by "__" and '-' turned into '_':
//   gateway.listen      -> CORTEX_GATEWAY__LISTEN
//   port                -> NEURON_PORT
//   neurons[1].endpoint -> CORTEX_NEURONS__1__ENDPOINT
// The environment wins over the file. An empty variable counts as unset. Overrides are looked up
// only for keys the program reads, so unrelated PREFIX_* variables are never "unknown keys".
//
// Thread-safety: a ConfigReader and the children it hands out share read-tracking state and are
// meant for single-threaded start-up code. Copying a reader is cheap (shared state).
#pragma once

#include <concepts>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "helexa/common/result.h"

namespace helexa {

// Thrown by config loading and typed access. The message is complete and meant for the operator:
//   cortex.toml: key 'gateway.poll_interval_secs': expected integer, got string "five"
class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Exit code for a start-up configuration error (bad file, bad key, bad flag).
inline constexpr int kConfigExitCode = 2;
int config_exit_code();

// Environment snapshot: variable name -> value.
using Environment = std::map<std::string, std::string, std::less<>>;

// The current process environment (a copy taken now).
Environment process_environment();

// A "host:port" listen address. IPv6 hosts are written in brackets ("[::1]:8080"); `host` holds
// them without brackets. Port 0 is allowed (tests bind an ephemeral port).
struct ListenAddress {
    std::string host;
    uint16_t port = 0;

    // Back to "host:port" ("[::1]:8080" for IPv6).
    std::string to_string() const;
    bool operator==(const ListenAddress&) const = default;
};

// Parses "host:port". Errors (kConfig) name the text and what is wrong with it.
Result<ListenAddress> parse_listen_address(std::string_view text);

// The value types get/require/get_optional understand. Integers are range-checked against T.
template <typename T>
concept ConfigValueType =
    std::same_as<T, bool> || std::same_as<T, std::string> || std::same_as<T, double> ||
    std::same_as<T, float> || (std::integral<T> && !std::same_as<T, bool> && sizeof(T) <= 8) ||
    std::same_as<T, std::vector<std::string>> || std::same_as<T, std::vector<int64_t>> ||
    std::same_as<T, std::vector<double>> || std::same_as<T, ListenAddress>;

namespace detail {
struct ConfigState;
}

class ConfigReader {
public:
    // Loads a TOML file. Throws ConfigError when the file can't be read (path + errno text) or is
    // malformed (file, line, column).
    static ConfigReader from_file(const std::filesystem::path& path, std::string env_prefix,
                                  Environment env = process_environment());

    // Like from_file, but a missing file (ENOENT) gives an empty configuration: every key takes its
    // documented default or its environment override. Other read errors still throw.
    static ConfigReader from_optional_file(const std::filesystem::path& path,
                                           std::string env_prefix,
                                           Environment env = process_environment());

    // Parses TOML text; `source_name` stands in for the file name in messages (tests, fuzzing).
    static ConfigReader from_string(std::string_view toml_text, std::string source_name,
                                    std::string env_prefix,
                                    Environment env = process_environment());

    // An empty configuration (no file at all); only the environment applies.
    static ConfigReader empty(std::string source_name, std::string env_prefix,
                              Environment env = process_environment());

    // `path` is relative to this reader: dotted keys with optional indices ("gateway.listen",
    // "neurons[0].endpoint"). Absent from file and environment -> nullopt. Present with the wrong
    // type (or an unconvertible environment string) -> ConfigError.
    template <ConfigValueType T>
    std::optional<T> get_optional(std::string_view path) const;

    template <ConfigValueType T>
    T get(std::string_view path, T default_value) const {
        auto value = get_optional<T>(path);
        return value ? std::move(*value) : std::move(default_value);
    }
    // String literal defaults for std::string keys: get<std::string>("x", "default").
    std::string get(std::string_view path, const char* default_value) const {
        return get<std::string>(path, std::string(default_value));
    }

    // Absent -> ConfigError naming the key and its environment variable.
    template <ConfigValueType T>
    T require(std::string_view path) const {
        auto value = get_optional<T>(path);
        if (!value) {
            throw_missing(path);
        }
        return std::move(*value);
    }

    // True when the key is present in the file or set in the environment. Does not mark it read.
    bool contains(std::string_view path) const;

    // Sub-table ("gateway", "harness.candle", an inline table). Absent -> an empty child reader
    // whose keys still take environment overrides; present but not a table -> ConfigError.
    ConfigReader table(std::string_view path) const;
    // Sub-table only when present in the file.
    std::optional<ConfigReader> optional_table(std::string_view path) const;
    // A direct child table whose key is taken literally (may contain '.'), e.g. one entry of
    // `[harness.candle.sources.<scheme>]` found through keys().
    ConfigReader child_table(std::string_view key) const;

    // Array of tables (`[[neurons]]`). Absent -> empty. Children report keys as "neurons[1].x".
    std::vector<ConfigReader> table_array(std::string_view path) const;

    // Keys of this table present in the file, in file order. Does not mark anything read.
    std::vector<std::string> keys() const;

    // Full keys present in the file under this reader but never read (nor covered by a read of
    // an ancestor value), sorted. Callers log a warning for each; they are not fatal.
    std::vector<std::string> unknown_keys() const;

    // Full key of `path` under this reader ("neurons[1].endpoint"), and its environment variable.
    std::string full_key(std::string_view path) const;
    std::string env_var_name(std::string_view path) const;

    // The file name (or source name) used in messages.
    const std::string& source() const;
    // Full key of this reader itself ("" for the root).
    const std::string& prefix_path() const { return base_path_; }

private:
    struct Found;
    ConfigReader(std::shared_ptr<detail::ConfigState> state, std::string base_path,
                 const void* node);

    Found lookup(std::string_view path) const;
    [[noreturn]] void throw_missing(std::string_view path) const;

    std::optional<bool> read_bool(std::string_view path) const;
    std::optional<int64_t> read_int(std::string_view path, int64_t min, uint64_t max) const;
    std::optional<uint64_t> read_uint(std::string_view path, uint64_t max) const;
    std::optional<double> read_double(std::string_view path) const;
    std::optional<std::string> read_string(std::string_view path) const;
    std::optional<std::vector<std::string>> read_string_array(std::string_view path) const;
    std::optional<std::vector<int64_t>> read_int_array(std::string_view path) const;
    std::optional<std::vector<double>> read_double_array(std::string_view path) const;
    std::optional<ListenAddress> read_listen(std::string_view path) const;

    std::shared_ptr<detail::ConfigState> state_;
    std::string base_path_;
    const void* node_ = nullptr;  // toml::table* of this reader, or nullptr when absent
};

template <ConfigValueType T>
std::optional<T> ConfigReader::get_optional(std::string_view path) const {
    if constexpr (std::same_as<T, bool>) {
        return read_bool(path);
    } else if constexpr (std::same_as<T, std::string>) {
        return read_string(path);
    } else if constexpr (std::same_as<T, double>) {
        return read_double(path);
    } else if constexpr (std::same_as<T, float>) {
        auto v = read_double(path);
        return v ? std::optional<float>(static_cast<float>(*v)) : std::nullopt;
    } else if constexpr (std::same_as<T, std::vector<std::string>>) {
        return read_string_array(path);
    } else if constexpr (std::same_as<T, std::vector<int64_t>>) {
        return read_int_array(path);
    } else if constexpr (std::same_as<T, std::vector<double>>) {
        return read_double_array(path);
    } else if constexpr (std::same_as<T, ListenAddress>) {
        return read_listen(path);
    } else if constexpr (std::is_unsigned_v<T>) {
        auto v = read_uint(path, std::numeric_limits<T>::max());
        return v ? std::optional<T>(static_cast<T>(*v)) : std::nullopt;
    } else {
        auto v = read_int(path, std::numeric_limits<T>::min(),
                          static_cast<uint64_t>(std::numeric_limits<T>::max()));
        return v ? std::optional<T>(static_cast<T>(*v)) : std::nullopt;
    }
}

}  // namespace helexa
