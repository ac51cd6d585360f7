#include "jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace helexa::text::jinja::detail {

void raise(std::string message) {
    throw TemplateError{std::move(message), 0};
}

std::string cat(std::initializer_list<std::string_view> parts) {
    std::string out;
    for (auto p : parts) {
        out.append(p);
    }
    return out;
}

Value Value::list(std::vector<Value> items) {
    auto l = std::make_shared<List>();
    l->items = std::move(items);
    return Value(std::move(l));
}

Value Value::tuple(std::vector<Value> items) {
    auto l = std::make_shared<List>();
    l->items = std::move(items);
    l->is_tuple = true;
    return Value(std::move(l));
}

Value Value::dict() {
    return Value(std::make_shared<Dict>());
}

Value Value::from_json(const nlohmann::ordered_json& j, int depth) {
    if (depth > 512) {
        raise("context value nested too deeply (limit 512)");
    }
    switch (j.type()) {
        case nlohmann::ordered_json::value_t::null:
        case nlohmann::ordered_json::value_t::discarded:
            return Value::none();
        case nlohmann::ordered_json::value_t::boolean:
            return Value(j.get<bool>());
        case nlohmann::ordered_json::value_t::number_integer:
            return Value(j.get<int64_t>());
        case nlohmann::ordered_json::value_t::number_unsigned: {
            uint64_t u = j.get<uint64_t>();
            if (u > static_cast<uint64_t>(INT64_MAX)) {
                return Value(static_cast<double>(u));
            }
            return Value(static_cast<int64_t>(u));
        }
        case nlohmann::ordered_json::value_t::number_float:
            return Value(j.get<double>());
        case nlohmann::ordered_json::value_t::string:
            return Value(j.get_ref<const std::string&>());
        case nlohmann::ordered_json::value_t::binary:
            return Value::none();
        case nlohmann::ordered_json::value_t::array: {
            auto l = std::make_shared<List>();
            l->items.reserve(j.size());
            for (const auto& e : j) {
                l->items.push_back(from_json(e, depth + 1));
            }
            return Value(std::move(l));
        }
        case nlohmann::ordered_json::value_t::object: {
            auto d = std::make_shared<Dict>();
            d->items.reserve(j.size());
            for (auto it = j.begin(); it != j.end(); ++it) {
                // ordered_json keeps duplicate-free keys in insertion order.
                d->items.emplace_back(it.key(), from_json(it.value(), depth + 1));
            }
            return Value(std::move(d));
        }
    }
    return Value::none();
}

bool Value::is_callable() const {
    return is_object() && as_object()->callable();
}

double Value::to_double() const {
    if (is_int()) {
        return static_cast<double>(as_int());
    }
    if (is_float()) {
        return as_float();
    }
    if (is_bool()) {
        return as_bool() ? 1.0 : 0.0;
    }
    raise("expected a number, got " + type_name());
}

bool Value::truthy() const {
    struct V {
        bool operator()(const Undefined&) const { return false; }
        bool operator()(const None&) const { return false; }
        bool operator()(bool b) const { return b; }
        bool operator()(int64_t i) const { return i != 0; }
        bool operator()(double d) const { return d != 0.0; }
        bool operator()(const std::string& s) const { return !s.empty(); }
        bool operator()(const ListPtr& l) const { return !l->items.empty(); }
        bool operator()(const DictPtr& d) const { return !d->items.empty(); }
        bool operator()(const ObjectPtr&) const { return true; }
    };
    return std::visit(V{}, v_);
}

std::string Value::type_name() const {
    struct V {
        std::string operator()(const Undefined&) const { return "Undefined"; }
        std::string operator()(const None&) const { return "NoneType"; }
        std::string operator()(bool) const { return "bool"; }
        std::string operator()(int64_t) const { return "int"; }
        std::string operator()(double) const { return "float"; }
        std::string operator()(const std::string&) const { return "str"; }
        std::string operator()(const ListPtr& l) const { return l->is_tuple ? "tuple" : "list"; }
        std::string operator()(const DictPtr& d) const {
            return d->is_namespace ? "Namespace" : "dict";
        }
        std::string operator()(const ObjectPtr& o) const { return o->type_name(); }
    };
    return std::visit(V{}, v_);
}

std::string format_float(double d) {
    if (std::isnan(d)) {
        return "nan";
    }
    if (std::isinf(d)) {
        return d > 0 ? "inf" : "-inf";
    }
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
    std::string sci(buf, res.ptr);
    // sci looks like "-1.2345e+02": split sign, digits and exponent.
    bool neg = false;
    size_t pos = 0;
    if (sci[0] == '-') {
        neg = true;
        pos = 1;
    }
    size_t e_pos = sci.find('e');
    std::string digits;
    for (size_t i = pos; i < e_pos; ++i) {
        if (sci[i] != '.') {
            digits.push_back(sci[i]);
        }
    }
    int exp = std::stoi(sci.substr(e_pos + 1));
    while (digits.size() > 1 && digits.back() == '0') {
        digits.pop_back();
    }
    std::string out = neg ? "-" : "";
    if (exp >= -4 && exp < 16) {
        int n = static_cast<int>(digits.size());
        if (exp < 0) {
            out += "0.";
            out.append(static_cast<size_t>(-exp - 1), '0');
            out += digits;
        } else if (exp + 1 >= n) {
            out += digits;
            out.append(static_cast<size_t>(exp + 1 - n), '0');
            out += ".0";
        } else {
            out += digits.substr(0, static_cast<size_t>(exp + 1));
            out += '.';
            out += digits.substr(static_cast<size_t>(exp + 1));
        }
        return out;
    }
    out += digits[0];
    if (digits.size() > 1) {
        out += '.';
        out += digits.substr(1);
    }
    char ebuf[16];
    std::snprintf(ebuf, sizeof(ebuf), "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += ebuf;
    return out;
}

namespace {

// Decodes one UTF-8 code point at s[i]; returns its length (1 for invalid bytes).
size_t utf8_decode(std::string_view s, size_t i, uint32_t& cp) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) {
        cp = c;
        return 1;
    }
    if (n == 1) {
        cp = c;
        return 1;
    }
    cp = c & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) {
        auto cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xC0) != 0x80) {
            cp = c;
            return 1;
        }
        cp = (cp << 6) | (cc & 0x3F);
    }
    return n;
}

}  // namespace

int64_t utf8_length(std::string_view s) {
    int64_t n = 0;
    for (size_t i = 0; i < s.size();) {
        uint32_t cp = 0;
        i += utf8_decode(s, i, cp);
        ++n;
    }
    return n;
}

void append_python_repr_string(std::string& out, std::string_view s) {
    bool has_single = s.find('\'') != std::string_view::npos;
    bool has_double = s.find('"') != std::string_view::npos;
    char quote = (has_single && !has_double) ? '"' : '\'';
    out += quote;
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (ch == quote || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (ch == '\n') {
            out += "\\n";
        } else if (ch == '\r') {
            out += "\\r";
        } else if (ch == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == 0x7F) {
            char buf[8];
            std::snprintf(buf, sizeof(buf), "\\x%02x", c);
            out += buf;
        } else {
            out += ch;
        }
    }
    out += quote;
}

void append_json_string(std::string& out, std::string_view s, bool ensure_ascii) {
    out += '"';
    for (size_t i = 0; i < s.size(); ++i) {
        char ch = s[i];
        auto c = static_cast<unsigned char>(ch);
        switch (ch) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (c < 0x20 || (ensure_ascii && c == 0x7F)) {
                    char buf[8];
                    std::snprintf(buf, sizeof(buf), "\\u%04x", c);
                    out += buf;
                } else if (ensure_ascii && c >= 0x80) {
                    uint32_t cp = 0;
                    size_t n = utf8_decode(s, i, cp);
                    i += n - 1;
                    char buf[16];
                    if (cp >= 0x10000) {
                        uint32_t v = cp - 0x10000;
                        std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", 0xD800 + (v >> 10),
                                      0xDC00 + (v & 0x3FF));
                    } else {
                        std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
                    }
                    out += buf;
                } else {
                    out += ch;
                }
        }
    }
    out += '"';
}

void Value::append_str(std::string& out) const {
    if (is_string()) {
        out += as_string();
        return;
    }
    if (is_undefined()) {
        return;
    }
    append_repr(out);
}

void Value::append_repr(std::string& out) const {
    struct V {
        std::string& out;
        void operator()(const Undefined&) const {}
        void operator()(const None&) const { out += "None"; }
        void operator()(bool b) const { out += b ? "True" : "False"; }
        void operator()(int64_t i) const { out += std::to_string(i); }
        void operator()(double d) const { out += format_float(d); }
        void operator()(const std::string& s) const { append_python_repr_string(out, s); }
        void operator()(const ListPtr& l) const {
            out += l->is_tuple ? '(' : '[';
            for (size_t i = 0; i < l->items.size(); ++i) {
                if (i > 0) {
                    out += ", ";
                }
                l->items[i].append_repr(out);
            }
            if (l->is_tuple && l->items.size() == 1) {
                out += ',';
            }
            out += l->is_tuple ? ')' : ']';
        }
        void operator()(const DictPtr& d) const {
            if (d->is_namespace) {
                out += "<Namespace ";
            }
            out += '{';
            for (size_t i = 0; i < d->items.size(); ++i) {
                if (i > 0) {
                    out += ", ";
                }
                append_python_repr_string(out, d->items[i].first);
                out += ": ";
                d->items[i].second.append_repr(out);
            }
            out += '}';
            if (d->is_namespace) {
                out += '>';
            }
        }
        void operator()(const ObjectPtr& o) const { out += o->repr(); }
    };
    std::visit(V{out}, v_);
}

std::string Value::str() const {
    std::string out;
    append_str(out);
    return out;
}

std::string Value::repr() const {
    std::string out;
    append_repr(out);
    return out;
}

namespace {

void json_newline(std::string& out, int indent, int depth) {
    out += '\n';
    out.append(static_cast<size_t>(indent) * static_cast<size_t>(depth), ' ');
}

}  // namespace

void Value::append_json(std::string& out, const JsonStyle& style, int depth) const {
    const int indent = style.indent;
    const std::string& item_sep =
        !style.item_separator.empty() ? style.item_separator : (indent >= 0 ? std::string(",") : std::string(", "));
    if (depth > 512) {
        raise("tojson: value nested too deeply");
    }
    if (is_none()) {
        out += "null";
    } else if (is_bool()) {
        out += as_bool() ? "true" : "false";
    } else if (is_int()) {
        out += std::to_string(as_int());
    } else if (is_float()) {
        double d = as_float();
        if (std::isnan(d)) {
            out += "NaN";
        } else if (std::isinf(d)) {
            out += d > 0 ? "Infinity" : "-Infinity";
        } else {
            out += format_float(d);
        }
    } else if (is_string()) {
        append_json_string(out, as_string(), style.ensure_ascii);
    } else if (is_list()) {
        const auto& items = as_list()->items;
        if (items.empty()) {
            out += "[]";
            return;
        }
        out += '[';
        for (size_t i = 0; i < items.size(); ++i) {
            if (i > 0) {
                out += item_sep;
            }
            if (indent >= 0) {
                json_newline(out, indent, depth + 1);
            }
            items[i].append_json(out, style, depth + 1);
        }
        if (indent >= 0) {
            json_newline(out, indent, depth);
        }
        out += ']';
    } else if (is_dict()) {
        const auto& d = *as_dict();
        if (d.is_namespace) {
            raise("Object of type Namespace is not JSON serializable");
        }
        if (d.items.empty()) {
            out += "{}";
            return;
        }
        std::vector<const std::pair<std::string, Value>*> entries;
        entries.reserve(d.items.size());
        for (const auto& kv : d.items) {
            entries.push_back(&kv);
        }
        if (style.sort_keys) {
            std::stable_sort(entries.begin(), entries.end(),
                             [](const auto* a, const auto* b) { return a->first < b->first; });
        }
        out += '{';
        for (size_t i = 0; i < entries.size(); ++i) {
            if (i > 0) {
                out += item_sep;
            }
            if (indent >= 0) {
                json_newline(out, indent, depth + 1);
            }
            append_json_string(out, entries[i]->first, style.ensure_ascii);
            out += style.key_separator;
            entries[i]->second.append_json(out, style, depth + 1);
        }
        if (indent >= 0) {
            json_newline(out, indent, depth);
        }
        out += '}';
    } else {
        raise("Object of type " + type_name() + " is not JSON serializable");
    }
}

nlohmann::ordered_json Value::to_json() const {
    if (is_none() || is_undefined()) {
        return nullptr;
    }
    if (is_bool()) {
        return as_bool();
    }
    if (is_int()) {
        return as_int();
    }
    if (is_float()) {
        return as_float();
    }
    if (is_string()) {
        return as_string();
    }
    if (is_list()) {
        auto j = nlohmann::ordered_json::array();
        for (const auto& e : as_list()->items) {
            j.push_back(e.to_json());
        }
        return j;
    }
    if (is_dict()) {
        auto j = nlohmann::ordered_json::object();
        for (const auto& [k, v] : as_dict()->items) {
            j[k] = v.to_json();
        }
        return j;
    }
    return repr();
}

int64_t Value::length() const {
    if (is_string()) {
        return utf8_length(as_string());
    }
    if (is_list()) {
        return static_cast<int64_t>(as_list()->items.size());
    }
    if (is_dict()) {
        return static_cast<int64_t>(as_dict()->items.size());
    }
    if (is_undefined()) {
        return 0;
    }
    raise("object of type '" + type_name() + "' has no len()");
}

const Value* Dict::find(std::string_view key) const {
    for (const auto& kv : items) {
        if (kv.first == key) {
            return &kv.second;
        }
    }
    return nullptr;
}

Value* Dict::find(std::string_view key) {
    for (auto& kv : items) {
        if (kv.first == key) {
            return &kv.second;
        }
    }
    return nullptr;
}

void Dict::set(std::string key, Value value) {
    if (Value* v = find(key)) {
        *v = std::move(value);
        return;
    }
    items.emplace_back(std::move(key), std::move(value));
}

bool Dict::erase(std::string_view key) {
    for (auto it = items.begin(); it != items.end(); ++it) {
        if (it->first == key) {
            items.erase(it);
            return true;
        }
    }
    return false;
}

const Value* CallArgs::get(size_t i, std::string_view name) const {
    if (i < positional.size()) {
        return &positional[i];
    }
    for (const auto& kv : keyword) {
        if (kv.first == name) {
            return &kv.second;
        }
    }
    return nullptr;
}

Value Object::get_attr(std::string_view name) const {
    return Value::undefined(std::string(name));
}

Value Object::call(Interpreter&, CallArgs&) {
    raise(cat({"'", type_name(), "' object is not callable"}));
}

bool Object::call_method(Interpreter&, std::string_view, CallArgs&, Value&) {
    return false;
}

std::string Object::repr() const {
    return cat({"<", type_name(), ">"});
}

namespace {

bool numeric_like(const Value& v) {
    return v.is_int() || v.is_float() || v.is_bool();
}

}  // namespace

bool equals(const Value& a, const Value& b) {
    if (numeric_like(a) && numeric_like(b)) {
        if ((a.is_int() || a.is_bool()) && (b.is_int() || b.is_bool())) {
            int64_t x = a.is_int() ? a.as_int() : (a.as_bool() ? 1 : 0);
            int64_t y = b.is_int() ? b.as_int() : (b.as_bool() ? 1 : 0);
            return x == y;
        }
        return a.to_double() == b.to_double();
    }
    if (a.storage().index() != b.storage().index()) {
        return false;
    }
    if (a.is_undefined() || a.is_none()) {
        return true;
    }
    if (a.is_string()) {
        return a.as_string() == b.as_string();
    }
    if (a.is_list()) {
        const auto& x = *a.as_list();
        const auto& y = *b.as_list();
        if (x.is_tuple != y.is_tuple || x.items.size() != y.items.size()) {
            return false;
        }
        for (size_t i = 0; i < x.items.size(); ++i) {
            if (!equals(x.items[i], y.items[i])) {
                return false;
            }
        }
        return true;
    }
    if (a.is_dict()) {
        const auto& x = *a.as_dict();
        const auto& y = *b.as_dict();
        if (x.is_namespace || y.is_namespace) {
            return &x == &y;
        }
        if (x.items.size() != y.items.size()) {
            return false;
        }
        for (const auto& [k, v] : x.items) {
            const Value* other = y.find(k);
            if (other == nullptr || !equals(v, *other)) {
                return false;
            }
        }
        return true;
    }
    if (a.is_object()) {
        return a.as_object() == b.as_object();
    }
    return false;
}

int compare(const Value& a, const Value& b) {
    if (numeric_like(a) && numeric_like(b)) {
        if ((a.is_int() || a.is_bool()) && (b.is_int() || b.is_bool())) {
            int64_t x = a.is_int() ? a.as_int() : (a.as_bool() ? 1 : 0);
            int64_t y = b.is_int() ? b.as_int() : (b.as_bool() ? 1 : 0);
            return x < y ? -1 : (x > y ? 1 : 0);
        }
        double x = a.to_double();
        double y = b.to_double();
        return x < y ? -1 : (x > y ? 1 : 0);
    }
    if (a.is_string() && b.is_string()) {
        int c = a.as_string().compare(b.as_string());
        return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    if (a.is_list() && b.is_list()) {
        const auto& x = a.as_list()->items;
        const auto& y = b.as_list()->items;
        for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
            if (!equals(x[i], y[i])) {
                return compare(x[i], y[i]);
            }
        }
        return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
    }
    raise("'<' not supported between instances of '" + a.type_name() + "' and '" +
          b.type_name() + "'");
}

}  // namespace helexa::text::jinja::detail
