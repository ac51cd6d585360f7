// ConfigReader's sources and structure: loading TOML from a file, text or nothing; key paths and
// the environment variable each maps to; resolving a key (environment over file); tables and
// arrays of tables; and the read tracking behind unknown_keys(). Typed getters live in
// config_values.cpp, message wording in config_messages.cpp.
#include "helexa/common/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <variant>

#include <fmt/format.h>

#include "internal/config_internal.h"

extern char** environ;

namespace helexa {

namespace {

using detail::as_table;
using detail::ConfigState;
using detail::index_key;
using detail::quote;
using detail::type_error;

// ---------------------------------------------------------------------------------------------
// Key paths

// One step of a key path: a table key or an array index.
using PathStep = std::variant<std::string, size_t>;

std::vector<PathStep> split_path(std::string_view path) {
    auto bad = [&](std::string_view why) {
        return ConfigError(fmt::format("invalid config key path {}: {}", quote(path), why));
    };
    if (path.empty()) {
        throw bad("empty");
    }
    std::vector<PathStep> steps;
    size_t i = 0;
    // After a step, a '.' must lead to another one.
    auto skip_separator = [&] {
        if (i < path.size() && path[i] == '.') {
            ++i;
            if (i == path.size()) {
                throw bad("trailing '.'");
            }
        }
    };
    while (i < path.size()) {
        if (path[i] == '[') {
            size_t close = path.find(']', i);
            if (close == std::string_view::npos || close == i + 1) {
                throw bad("bad index");
            }
            auto index = detail::parse_exact<size_t>(path.substr(i + 1, close - i - 1));
            if (!index) {
                throw bad("bad index");
            }
            steps.emplace_back(*index);
            i = close + 1;
        } else {
            size_t end = path.find_first_of(".[", i);
            if (end == std::string_view::npos) {
                end = path.size();
            }
            if (end == i) {
                throw bad("empty key");
            }
            steps.emplace_back(std::string(path.substr(i, end - i)));
            i = end;
        }
        skip_separator();
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
                type_error(state, walked, "table", *current);
            }
            current = tbl->get(*key);
            walked = join_key(walked, *key);
        } else {
            size_t index = std::get<size_t>(step);
            const toml::array* arr = current->as_array();
            if (arr == nullptr) {
                type_error(state, walked, "array", *current);
            }
            current = index < arr->size() ? arr->get(index) : nullptr;
            walked = index_key(walked, index);
        }
    }
    return current;
}

// The override for `env_name`, or nullptr: an empty variable counts as unset.
const std::string* env_override(const ConfigState& state, const std::string& env_name) {
    auto it = state.env.find(env_name);
    if (it == state.env.end() || it->second.empty()) {
        return nullptr;
    }
    return &it->second;
}

// Checks that `node` (at `key`) is a table and records it as read.
const toml::table* open_table(ConfigState& state, const std::string& key,
                              const toml::node& node) {
    const toml::table* tbl = node.as_table();
    if (tbl == nullptr) {
        type_error(state, key, "table", node);
    }
    state.containers_read.insert(key);
    return tbl;
}

// ---------------------------------------------------------------------------------------------
// Files

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

// The text of a config file; nullopt when it is missing and `missing_ok`. Other failures throw.
std::optional<std::string> read_config_file(const std::filesystem::path& path, bool missing_ok) {
    int err = 0;
    std::string text = read_whole_file(path, err);
    if (err == ENOENT && missing_ok) {
        return std::nullopt;
    }
    if (err != 0) {
        throw ConfigError(fmt::format("cannot read config file '{}': {}", path.string(),
                                      std::error_code(err, std::generic_category()).message()));
    }
    return text;
}

// ---------------------------------------------------------------------------------------------
// Unknown keys

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
                collect_leaves(*arr->get(i), index_key(key, i), out);
            }
            return;
        }
    }
    out.push_back(key);
}

}  // namespace

std::string detail::index_key(std::string_view key, size_t index) {
    return fmt::format("{}[{}]", key, index);
}

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
    std::optional<std::string> text = read_config_file(path, /*missing_ok=*/false);
    return from_string(*text, path.string(), std::move(env_prefix), std::move(env));
}

ConfigReader ConfigReader::from_optional_file(const std::filesystem::path& path,
                                              std::string env_prefix, Environment env) {
    std::optional<std::string> text = read_config_file(path, /*missing_ok=*/true);
    if (!text) {
        return empty(path.string(), std::move(env_prefix), std::move(env));
    }
    return from_string(*text, path.string(), std::move(env_prefix), std::move(env));
}

// ---------------------------------------------------------------------------------------------
// Keys and lookup

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
    if (env_override(*state_, env_var_name(path)) != nullptr) {
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
    if (const std::string* value = env_override(*state_, found.env_name)) {
        found.env_value = *value;
    }
    state_->values_read.insert(found.key);
    return found;
}

// ---------------------------------------------------------------------------------------------
// Tables

std::optional<ConfigReader> ConfigReader::optional_table(std::string_view path) const {
    std::string key = full_key(path);
    const toml::node* node = walk(*state_, as_table(node_), base_path_, path);
    if (node == nullptr) {
        return std::nullopt;
    }
    const toml::table* tbl = open_table(*state_, key, *node);
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
    const toml::table* tbl = node != nullptr ? open_table(*state_, full, *node) : nullptr;
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
        std::string element_key = index_key(key, i);
        const toml::table* tbl = open_table(*state_, element_key, *arr->get(i));
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
