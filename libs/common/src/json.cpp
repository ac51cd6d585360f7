// JSON helpers: parsing with positions, typed getters, UTF-8-safe truncation.
#include "helexa/common/json.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace helexa {

namespace {

// Line and column (1-based, in bytes) of byte offset `pos` in `text`.
std::pair<size_t, size_t> line_column(std::string_view text, size_t pos) {
    size_t line = 1;
    size_t column = 1;
    for (size_t i = 0; i < pos && i < text.size(); ++i) {
        if (text[i] == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
    }
    return {line, column};
}

// nlohmann's message without its "[json.exception.parse_error.101] parse error at line 1,
// column 2: " preamble (we print our own position).
std::string reason_of(const nlohmann::json::parse_error& e) {
    std::string_view what = e.what();
    size_t colon = what.find(": ");
    if (what.substr(0, 1) == "[" && colon != std::string_view::npos) {
        what.remove_prefix(colon + 2);
    }
    return std::string(what);
}

Error field_error(std::string_view field, std::string message) {
    return Error(ErrorCode::kInvalidRequest, std::move(message)).with_param(std::string(field));
}

// The field's value, or nullptr when missing/null. Error when `obj` is not an object.
Result<const nlohmann::json*> find_field(const nlohmann::json& obj, std::string_view field) {
    if (!obj.is_object()) {
        return fail(ErrorCode::kInvalidRequest,
                    fmt::format("expected a JSON object, got {}", json_type_name(obj)));
    }
    auto it = obj.find(field);
    if (it == obj.end() || it->is_null()) {
        return nullptr;
    }
    return &*it;
}

Error wrong_type(std::string_view field, std::string_view expected, const nlohmann::json& v) {
    return field_error(field, fmt::format("field '{}' must be {}, got {}", field, expected,
                                          json_type_name(v)));
}

Error missing(std::string_view field) {
    return field_error(field, fmt::format("missing required field '{}'", field));
}

std::optional<int64_t> as_int(const nlohmann::json& v) {
    if (v.is_number_integer()) {
        if (v.is_number_unsigned() &&
            v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            return std::nullopt;
        }
        return v.get<int64_t>();
    }
    // 5.0 is an integer to most clients; 5.5 is not.
    if (v.is_number_float()) {
        double d = v.get<double>();
        if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9.0e15) {
            return static_cast<int64_t>(d);
        }
    }
    return std::nullopt;
}

}  // namespace

std::string_view json_type_name(const nlohmann::json& value) {
    switch (value.type()) {
        case nlohmann::json::value_t::null:
            return "null";
        case nlohmann::json::value_t::object:
            return "object";
        case nlohmann::json::value_t::array:
            return "array";
        case nlohmann::json::value_t::string:
            return "string";
        case nlohmann::json::value_t::boolean:
            return "boolean";
        case nlohmann::json::value_t::number_integer:
        case nlohmann::json::value_t::number_unsigned:
        case nlohmann::json::value_t::number_float:
            return "number";
        case nlohmann::json::value_t::binary:
            return "binary";
        case nlohmann::json::value_t::discarded:
            return "discarded";
    }
    return "unknown";
}

Result<nlohmann::json> parse_json(std::string_view body) {
    try {
        return nlohmann::json::parse(body);
    } catch (const nlohmann::json::parse_error& e) {
        // e.byte is 1-based and points just past the offending character.
        size_t offset = e.byte > 0 ? e.byte - 1 : 0;
        auto [line, column] = line_column(body, offset);
        return fail(ErrorCode::kInvalidJson, fmt::format("invalid JSON at line {}, column {}: {}",
                                                         line, column, reason_of(e)));
    } catch (const nlohmann::json::exception& e) {
        return fail(ErrorCode::kInvalidJson, fmt::format("invalid JSON: {}", e.what()));
    }
}

Result<std::optional<std::string>> get_optional_string(const nlohmann::json& obj,
                                                       std::string_view field) {
    auto v = find_field(obj, field);
    if (!v) {
        return fail(std::move(v).error());
    }
    if (*v == nullptr) {
        return std::optional<std::string>();
    }
    if (!(*v)->is_string()) {
        return fail(wrong_type(field, "a string", **v));
    }
    return std::optional<std::string>((*v)->get<std::string>());
}

Result<std::optional<int64_t>> get_optional_int(const nlohmann::json& obj,
                                                std::string_view field) {
    auto v = find_field(obj, field);
    if (!v) {
        return fail(std::move(v).error());
    }
    if (*v == nullptr) {
        return std::optional<int64_t>();
    }
    auto i = as_int(**v);
    if (!i) {
        return fail(wrong_type(field, "an integer", **v));
    }
    return std::optional<int64_t>(*i);
}

Result<std::optional<double>> get_optional_number(const nlohmann::json& obj,
                                                  std::string_view field) {
    auto v = find_field(obj, field);
    if (!v) {
        return fail(std::move(v).error());
    }
    if (*v == nullptr) {
        return std::optional<double>();
    }
    if (!(*v)->is_number()) {
        return fail(wrong_type(field, "a number", **v));
    }
    return std::optional<double>((*v)->get<double>());
}

Result<std::optional<bool>> get_optional_bool(const nlohmann::json& obj, std::string_view field) {
    auto v = find_field(obj, field);
    if (!v) {
        return fail(std::move(v).error());
    }
    if (*v == nullptr) {
        return std::optional<bool>();
    }
    if (!(*v)->is_boolean()) {
        return fail(wrong_type(field, "a boolean", **v));
    }
    return std::optional<bool>((*v)->get<bool>());
}

namespace {

template <typename T>
Result<T> required(Result<std::optional<T>> r, std::string_view field) {
    if (!r) {
        return fail(std::move(r).error());
    }
    if (!r->has_value()) {
        return fail(missing(field));
    }
    return std::move(**r);
}

}  // namespace

Result<std::string> get_string(const nlohmann::json& obj, std::string_view field) {
    return required(get_optional_string(obj, field), field);
}

Result<int64_t> get_int(const nlohmann::json& obj, std::string_view field) {
    return required(get_optional_int(obj, field), field);
}

Result<double> get_number(const nlohmann::json& obj, std::string_view field) {
    return required(get_optional_number(obj, field), field);
}

Result<bool> get_bool(const nlohmann::json& obj, std::string_view field) {
    return required(get_optional_bool(obj, field), field);
}

Result<const nlohmann::json*> get_object(const nlohmann::json& obj, std::string_view field) {
    auto v = find_field(obj, field);
    if (!v) {
        return v;
    }
    if (*v == nullptr) {
        return fail(missing(field));
    }
    if (!(*v)->is_object()) {
        return fail(wrong_type(field, "an object", **v));
    }
    return v;
}

Result<const nlohmann::json*> get_array(const nlohmann::json& obj, std::string_view field) {
    auto v = find_field(obj, field);
    if (!v) {
        return v;
    }
    if (*v == nullptr) {
        return fail(missing(field));
    }
    if (!(*v)->is_array()) {
        return fail(wrong_type(field, "an array", **v));
    }
    return v;
}

std::string_view truncate_utf8(std::string_view text, size_t max_bytes) {
    if (text.size() <= max_bytes) {
        return text;
    }
    // Step back over continuation bytes (10xxxxxx) to the start of the character at the cut,
    // then keep that character only if it ends before the cut.
    size_t cut = max_bytes;
    size_t start = cut;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80 &&
           cut - start < 3) {
        --start;
    }
    auto lead = static_cast<unsigned char>(text[start]);
    size_t len = 1;
    if ((lead & 0xE0) == 0xC0) {
        len = 2;
    } else if ((lead & 0xF0) == 0xE0) {
        len = 3;
    } else if ((lead & 0xF8) == 0xF0) {
        len = 4;
    }
    // The character starting at `start` crosses the cut unless it is a lone byte at `cut`.
    if (start < cut && start + len > cut) {
        return text.substr(0, start);
    }
    return text.substr(0, cut);
}

std::string truncate_for_log(std::string_view text, size_t max_bytes) {
    std::string_view cut = truncate_utf8(text, max_bytes);
    if (cut.size() == text.size()) {
        return std::string(text);
    }
    return fmt::format("{}...({} bytes)", cut, text.size());
}

}  // namespace helexa
