// How configuration errors read: trimming and quoting values, describing TOML nodes, and the two
// errors every typed read ends in (wrong type in the file, unconvertible environment string).
// Messages name the file, the full key (and variable) and expected vs actual, for the operator.
#include <cctype>
#include <sstream>

#include <fmt/format.h>

#include "helexa/common/strings.h"
#include "internal/config_internal.h"

namespace helexa::detail {

namespace {

// "<label> <value>" for the TOML types that print themselves (date, time, datetime).
template <typename Value>
std::string labelled(std::string_view label, const Value& value) {
    std::ostringstream os;
    os << label << ' ' << value;
    return os.str();
}

}  // namespace

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
        case toml::node_type::date:
            return labelled("date", node.as_date()->get());
        case toml::node_type::time:
            return labelled("time", node.as_time()->get());
        case toml::node_type::date_time:
            return labelled("datetime", node.as_date_time()->get());
        case toml::node_type::none:
            break;
    }
    return "nothing";
}

void type_error(const ConfigState& state, const std::string& key, std::string_view expected,
                const toml::node& node) {
    throw ConfigError(fmt::format("{}: key '{}': expected {}, got {}", state.source, key, expected,
                                  describe(node)));
}

void env_error(const ConfigState& state, const std::string& key, const std::string& env_name,
               std::string_view expected, std::string_view value) {
    throw ConfigError(fmt::format("{}: key '{}' (environment {}): expected {}, got {}",
                                  state.source, key, env_name, expected, quote(value)));
}

}  // namespace helexa::detail
