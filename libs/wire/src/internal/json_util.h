// Small non-throwing helpers over nlohmann::json shared by the wire translators.
// Internal to helexa_wire. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "helexa/common/result.h"

namespace helexa::wire::detail {

using nlohmann::json;

// The member `key` of `obj`, or nullptr when obj is not an object, lacks the key, or holds null.
// Null is treated as absent: clients send `"temperature": null` to mean "unset".
inline const json* member(const json& obj, std::string_view key) {
    if (!obj.is_object()) {
        return nullptr;
    }
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) {
        return nullptr;
    }
    return &*it;
}

inline std::string type_name(const json& value) {
    return value.type_name();
}

// kInvalidRequest naming the offending field ("messages[2].content: expected string or array").
inline Error invalid_field(const std::string& field, const std::string& what) {
    return Error(ErrorCode::kInvalidRequest, field + ": " + what).with_param(field);
}

// The member as a string, if present and a string.
inline std::optional<std::string> string_member(const json& obj, std::string_view key) {
    const json* value = member(obj, key);
    if (value == nullptr || !value->is_string()) {
        return std::nullopt;
    }
    return value->get<std::string>();
}

// Reads the member `key` of `obj`, which must be a string, into `out`; otherwise fails with
// invalid_field naming `parent.key` ("messages[1].role: expected a string").
inline Status read_string(const json& obj, std::string_view key, const std::string& parent,
                          std::string& out) {
    auto value = string_member(obj, key);
    if (!value) {
        return tl::unexpected(invalid_field(parent + "." + std::string(key), "expected a string"));
    }
    out = std::move(*value);
    return ok();
}

// The member as an integer, if present and an integer (or an integral float such as 32000.0).
inline std::optional<int64_t> int_member(const json& obj, std::string_view key) {
    const json* value = member(obj, key);
    if (value == nullptr) {
        return std::nullopt;
    }
    if (value->is_number_integer()) {
        return value->get<int64_t>();
    }
    if (value->is_number_unsigned()) {
        uint64_t v = value->get<uint64_t>();
        return v > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v);
    }
    if (value->is_number_float()) {
        double d = value->get<double>();
        if (d >= -9.0e18 && d <= 9.0e18 && static_cast<double>(static_cast<int64_t>(d)) == d) {
            return static_cast<int64_t>(d);
        }
    }
    return std::nullopt;
}

inline bool is_integral(const json& value) {
    if (value.is_number_integer() || value.is_number_unsigned()) {
        return true;
    }
    if (value.is_number_float()) {
        double d = value.get<double>();
        return d >= -9.0e18 && d <= 9.0e18 && static_cast<double>(static_cast<int64_t>(d)) == d;
    }
    return false;
}

inline int64_t as_int(const json& value) {
    if (value.is_number_unsigned()) {
        uint64_t v = value.get<uint64_t>();
        return v > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v);
    }
    if (value.is_number_integer()) {
        return value.get<int64_t>();
    }
    return static_cast<int64_t>(value.get<double>());
}

// dump() that never throws on invalid UTF-8 inside strings (replaces bad bytes).
inline std::string safe_dump(const json& value) {
    return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace helexa::wire::detail
