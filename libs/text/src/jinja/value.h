// The interpreter's value model: Python semantics for truthiness, equality, ordering and
// printing (str/repr), as jinja2 shows them. Lists and dicts are shared by reference, as in
// Python, so `namespace()` attributes and `list.append` mutate what every alias sees.
// Thread-safety: values are per-render; nothing here is shared across renders except the
// immutable constants of a compiled program.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace helexa::text::jinja::detail {

class Value;
struct List;
struct Dict;
class Object;
class Interpreter;

using ListPtr = std::shared_ptr<List>;
using DictPtr = std::shared_ptr<Dict>;
using ObjectPtr = std::shared_ptr<Object>;

// An undefined variable or missing attribute; remembers its name for error messages.
struct Undefined {
    std::string name;
};
struct None {};

// Thrown inside the interpreter only; Template::render turns it into a Result. Never crosses
// the library boundary (see template.cpp).
struct TemplateError {
    std::string message;
    int line = 0;
};

[[noreturn]] void raise(std::string message);

// Concatenates pieces into a message. (Chains of std::string operator+ trip GCC 12's
// -Wrestrict false positive at -O3.)
std::string cat(std::initializer_list<std::string_view> parts);

class Value {
public:
    using Storage =
        std::variant<Undefined, None, bool, int64_t, double, std::string, ListPtr, DictPtr, ObjectPtr>;

    Value() : v_(Undefined{}) {}
    Value(None n) : v_(n) {}
    Value(Undefined u) : v_(std::move(u)) {}
    Value(bool b) : v_(b) {}
    Value(int64_t i) : v_(i) {}
    Value(int i) : v_(static_cast<int64_t>(i)) {}
    Value(double d) : v_(d) {}
    Value(std::string s) : v_(std::move(s)) {}
    Value(std::string_view s) : v_(std::string(s)) {}
    Value(const char* s) : v_(std::string(s)) {}
    Value(ListPtr l) : v_(std::move(l)) {}
    Value(DictPtr d) : v_(std::move(d)) {}
    Value(ObjectPtr o) : v_(std::move(o)) {}

    static Value undefined(std::string name = {}) { return Value(Undefined{std::move(name)}); }
    static Value none() { return Value(None{}); }
    static Value list(std::vector<Value> items = {});
    static Value tuple(std::vector<Value> items);
    static Value dict();
    // Raises (TemplateError) past 512 levels of nesting, keeping the recursion bounded.
    static Value from_json(const nlohmann::ordered_json& j, int depth = 0);

    bool is_undefined() const { return std::holds_alternative<Undefined>(v_); }
    bool is_none() const { return std::holds_alternative<None>(v_); }
    bool is_bool() const { return std::holds_alternative<bool>(v_); }
    bool is_int() const { return std::holds_alternative<int64_t>(v_); }
    bool is_float() const { return std::holds_alternative<double>(v_); }
    // int or float, but not bool (bool is a number in Python; callers handle it explicitly).
    bool is_number() const { return is_int() || is_float(); }
    bool is_string() const { return std::holds_alternative<std::string>(v_); }
    bool is_list() const { return std::holds_alternative<ListPtr>(v_); }
    bool is_dict() const { return std::holds_alternative<DictPtr>(v_); }
    bool is_object() const { return std::holds_alternative<ObjectPtr>(v_); }
    bool is_callable() const;

    bool as_bool() const { return std::get<bool>(v_); }
    int64_t as_int() const { return std::get<int64_t>(v_); }
    double as_float() const { return std::get<double>(v_); }
    // Numeric value of int, float or bool.
    double to_double() const;
    const std::string& as_string() const { return std::get<std::string>(v_); }
    const ListPtr& as_list() const { return std::get<ListPtr>(v_); }
    const DictPtr& as_dict() const { return std::get<DictPtr>(v_); }
    const ObjectPtr& as_object() const { return std::get<ObjectPtr>(v_); }
    const std::string& undefined_name() const { return std::get<Undefined>(v_).name; }

    // Python truthiness; undefined is false.
    bool truthy() const;
    // Python type name for error messages ("str", "int", "list", "dict", "NoneType"...).
    std::string type_name() const;
    // str(x) as jinja prints it ({{ x }}): None -> "None", True -> "True", lists as repr.
    std::string str() const;
    // repr(x): strings quoted, as inside printed lists and dicts.
    std::string repr() const;
    void append_str(std::string& out) const;
    void append_repr(std::string& out) const;
    // json.dumps(x, ...) as transformers' tojson (ensure_ascii=False, sort_keys=False by
    // default); see JsonStyle.
    void append_json(std::string& out, const struct JsonStyle& style, int depth) const;
    nlohmann::ordered_json to_json() const;
    // Length of a str (code points), list, dict; raises for others.
    int64_t length() const;

    const Storage& storage() const { return v_; }

private:
    Storage v_;
};

// json.dumps options: indent < 0 means None (single line with ", " and ": ").
struct JsonStyle {
    int indent = -1;
    bool ensure_ascii = false;
    bool sort_keys = false;
    std::string item_separator;  // empty = json.dumps default for the indent mode
    std::string key_separator = ": ";
};

struct List {
    std::vector<Value> items;
    bool is_tuple = false;
};

// Insertion-ordered dict with string keys (JSON and template literals only produce those).
// Lookup is linear: chat-template dicts are small, and order must be kept anyway.
struct Dict {
    std::vector<std::pair<std::string, Value>> items;
    bool is_namespace = false;

    const Value* find(std::string_view key) const;
    Value* find(std::string_view key);
    void set(std::string key, Value value);
    bool erase(std::string_view key);
};

// Host objects: macros, builtins, the loop object, cyclers. Attribute lookup and calls go
// through this interface.
struct CallArgs {
    std::vector<Value> positional;
    std::vector<std::pair<std::string, Value>> keyword;

    // Positional index `i` or keyword `name`, else undefined.
    const Value* get(size_t i, std::string_view name) const;
};

class Object {
public:
    virtual ~Object() = default;
    virtual std::string type_name() const = 0;
    virtual Value get_attr(std::string_view name) const;
    virtual bool callable() const { return false; }
    virtual Value call(Interpreter& interp, CallArgs& args);
    // `obj.name(args)`; false when the object has no such method.
    virtual bool call_method(Interpreter& interp, std::string_view name, CallArgs& args,
                             Value& result);
    virtual std::string repr() const;
};

// Python equality (1 == 1.0, True == 1; lists and dicts deep).
bool equals(const Value& a, const Value& b);
// Python ordering for <, <=, >, >=; raises TypeError-style errors on mixed kinds.
int compare(const Value& a, const Value& b);

// Python float repr: shortest round-trip digits, "1.0", "1e-05", "inf", "nan".
std::string format_float(double d);
void append_python_repr_string(std::string& out, std::string_view s);
void append_json_string(std::string& out, std::string_view s, bool ensure_ascii = false);
// Number of UTF-8 code points in s (invalid bytes count as one each).
int64_t utf8_length(std::string_view s);

}  // namespace helexa::text::jinja::detail
