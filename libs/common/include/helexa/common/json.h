// JSON helpers for request bodies: parse with a readable position message, typed field access
// whose errors name the field (and set the envelope `param`), and UTF-8-safe truncation for
// logging bodies.
//
// Use: `auto body = parse_json(text); if (!body) return fail(body.error());` then
// `auto model = get_string(*body, "model");`. A JSON null counts as absent for the optional
// getters (clients send `"stop": null`).
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "helexa/common/result.h"

namespace helexa {

// Parses a request body. Errors: kInvalidJson, "invalid JSON at line L, column C: <reason>".
Result<nlohmann::json> parse_json(std::string_view body);

// Required fields: kInvalidRequest when `obj` is not an object, the field is missing or null, or
// it has the wrong type ("field 'model' must be a string, got number"); param = field.
Result<std::string> get_string(const nlohmann::json& obj, std::string_view field);
Result<int64_t> get_int(const nlohmann::json& obj, std::string_view field);
Result<double> get_number(const nlohmann::json& obj, std::string_view field);
Result<bool> get_bool(const nlohmann::json& obj, std::string_view field);
// Pointers into `obj` (which must outlive them).
Result<const nlohmann::json*> get_object(const nlohmann::json& obj, std::string_view field);
Result<const nlohmann::json*> get_array(const nlohmann::json& obj, std::string_view field);

// Optional fields: nullopt when missing or null; an error only for a wrong type.
Result<std::optional<std::string>> get_optional_string(const nlohmann::json& obj,
                                                       std::string_view field);
Result<std::optional<int64_t>> get_optional_int(const nlohmann::json& obj,
                                                std::string_view field);
Result<std::optional<double>> get_optional_number(const nlohmann::json& obj,
                                                  std::string_view field);
Result<std::optional<bool>> get_optional_bool(const nlohmann::json& obj, std::string_view field);

// JSON type name as used in messages: "string", "number", "boolean", "object", "array", "null".
std::string_view json_type_name(const nlohmann::json& value);

// The longest prefix of `text` of at most `max_bytes` bytes that does not split a UTF-8
// sequence. Invalid bytes are treated as one-byte characters.
std::string_view truncate_utf8(std::string_view text, size_t max_bytes);

// For logs: the truncated text followed by "...(N bytes)" when something was cut.
std::string truncate_for_log(std::string_view text, size_t max_bytes);

}  // namespace helexa
