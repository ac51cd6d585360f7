// The builtin filter and test registry: merges the filter lists of string_filters.cpp,
// sequence_filters.cpp and value_filters.cpp into one lookup table, holds jinja2's builtin
// tests (`is defined`, `is divisibleby 3`, ...), and defines the argument and attribute helpers
// the filter files share (filter_support.h).
#include <algorithm>
#include <unordered_map>

#include "jinja/filter_support.h"

namespace helexa::text::jinja::detail {

bool arg_bool(const CallArgs& a, size_t i, std::string_view name, bool dflt) {
    const Value* v = a.get(i, name);
    return v == nullptr ? dflt : v->truthy();
}

// Attribute path "a.b.0" as jinja's make_attrgetter resolves it.
Value resolve_attr(Interpreter& in, const Value& item, const std::string& path) {
    Value cur = item;
    size_t start = 0;
    while (start <= path.size()) {
        size_t dot = path.find('.', start);
        std::string part = path.substr(start, dot == std::string::npos ? std::string::npos
                                                                        : dot - start);
        bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
            return c >= '0' && c <= '9';
        });
        if (cur.is_undefined()) {
            return cur;
        }
        cur = numeric ? in.get_item(cur, Value(static_cast<int64_t>(std::stoll(part))))
                      : in.get_item(cur, Value(part));
        if (dot == std::string::npos) {
            break;
        }
        start = dot + 1;
    }
    return cur;
}

Value lower_if_string(const Value& v, bool case_sensitive) {
    if (!case_sensitive && v.is_string()) {
        return Value(to_lower(v.as_string()));
    }
    return v;
}

Value attribute_or_item(Interpreter& in, const Value& item, const Value* attribute) {
    return attribute != nullptr ? resolve_attr(in, item, attribute->str()) : item;
}

namespace {

using TestFn = bool (*)(Interpreter&, const Value&, CallArgs&);

const std::unordered_map<std::string_view, FilterFn>& filters() {
    static const std::unordered_map<std::string_view, FilterFn> kFilters = [] {
        std::unordered_map<std::string_view, FilterFn> table;
        for (auto list : {string_filters(), sequence_filters(), value_filters()}) {
            for (const NamedFilter& f : list) {
                table.emplace(f.name, f.fn);
            }
        }
        return table;
    }();
    return kFilters;
}

// --- tests -------------------------------------------------------------------------------

const Value& test_arg(const CallArgs& a, const char* test) {
    if (a.positional.empty()) {
        raise(std::string("test '") + test + "' needs an argument");
    }
    return a.positional[0];
}

const std::unordered_map<std::string_view, TestFn>& tests() {
    static const std::unordered_map<std::string_view, TestFn> kTests = {
        {"defined", [](Interpreter&, const Value& v, CallArgs&) { return !v.is_undefined(); }},
        {"undefined", [](Interpreter&, const Value& v, CallArgs&) { return v.is_undefined(); }},
        {"none", [](Interpreter&, const Value& v, CallArgs&) { return v.is_none(); }},
        {"boolean", [](Interpreter&, const Value& v, CallArgs&) { return v.is_bool(); }},
        {"true", [](Interpreter&, const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }},
        {"false",
         [](Interpreter&, const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }},
        {"integer", [](Interpreter&, const Value& v, CallArgs&) { return v.is_int(); }},
        {"float", [](Interpreter&, const Value& v, CallArgs&) { return v.is_float(); }},
        {"number",
         [](Interpreter&, const Value& v, CallArgs&) { return v.is_number() || v.is_bool(); }},
        {"string", [](Interpreter&, const Value& v, CallArgs&) { return v.is_string(); }},
        {"mapping",
         [](Interpreter&, const Value& v, CallArgs&) {
             return v.is_dict() && !v.as_dict()->is_namespace;
         }},
        {"iterable",
         [](Interpreter&, const Value& v, CallArgs&) {
             return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
         }},
        {"sequence",
         [](Interpreter&, const Value& v, CallArgs&) {
             return v.is_string() || v.is_list() || v.is_dict();
         }},
        {"callable", [](Interpreter&, const Value& v, CallArgs&) { return v.is_callable(); }},
        {"escaped", [](Interpreter&, const Value&, CallArgs&) { return false; }},
        {"odd",
         [](Interpreter&, const Value& v, CallArgs&) {
             return v.is_int() && (v.as_int() % 2 != 0);
         }},
        {"even",
         [](Interpreter&, const Value& v, CallArgs&) { return v.is_int() && v.as_int() % 2 == 0; }},
        {"divisibleby",
         [](Interpreter&, const Value& v, CallArgs& a) {
             int64_t d = to_int_arg(&test_arg(a, "divisibleby"), 1, "num");
             if (d == 0) {
                 raise("integer division or modulo by zero");
             }
             return v.is_int() && (d == -1 || v.as_int() % d == 0);
         }},
        {"lower",
         [](Interpreter&, const Value& v, CallArgs&) {
             return v.is_string() && to_lower(v.as_string()) == v.as_string();
         }},
        {"upper",
         [](Interpreter&, const Value& v, CallArgs&) {
             return v.is_string() && to_upper(v.as_string()) == v.as_string();
         }},
        {"sameas",
         [](Interpreter&, const Value& v, CallArgs& a) {
             const Value& o = test_arg(a, "sameas");
             if (v.storage().index() != o.storage().index()) {
                 return false;
             }
             if (v.is_none() || v.is_bool() || v.is_int()) {
                 return equals(v, o);
             }
             if (v.is_list()) {
                 return v.as_list() == o.as_list();
             }
             if (v.is_dict()) {
                 return v.as_dict() == o.as_dict();
             }
             if (v.is_object()) {
                 return v.as_object() == o.as_object();
             }
             return equals(v, o);
         }},
        {"in",
         [](Interpreter& in, const Value& v, CallArgs& a) {
             const Value& seq = test_arg(a, "in");
             if (seq.is_string() && v.is_string()) {
                 return seq.as_string().find(v.as_string()) != std::string::npos;
             }
             for (const auto& x : in.iterate(seq)) {
                 if (equals(x, v)) {
                     return true;
                 }
             }
             return false;
         }},
        {"eq", [](Interpreter&, const Value& v, CallArgs& a) { return equals(v, test_arg(a, "eq")); }},
        {"ne",
         [](Interpreter&, const Value& v, CallArgs& a) { return !equals(v, test_arg(a, "ne")); }},
        {"lt",
         [](Interpreter&, const Value& v, CallArgs& a) { return compare(v, test_arg(a, "lt")) < 0; }},
        {"le",
         [](Interpreter&, const Value& v, CallArgs& a) { return compare(v, test_arg(a, "le")) <= 0; }},
        {"gt",
         [](Interpreter&, const Value& v, CallArgs& a) { return compare(v, test_arg(a, "gt")) > 0; }},
        {"ge",
         [](Interpreter&, const Value& v, CallArgs& a) { return compare(v, test_arg(a, "ge")) >= 0; }},
    };
    return kTests;
}

std::string_view test_alias(std::string_view name) {
    if (name == "equalto" || name == "==") {
        return "eq";
    }
    if (name == "!=") {
        return "ne";
    }
    if (name == "lessthan" || name == "<") {
        return "lt";
    }
    if (name == "<=") {
        return "le";
    }
    if (name == "greaterthan" || name == ">") {
        return "gt";
    }
    if (name == ">=") {
        return "ge";
    }
    return name;
}

}  // namespace

Value Interpreter::apply_filter(const std::string& name, Value input, CallArgs& args) {
    const auto& table = filters();
    auto it = table.find(name);
    if (it == table.end()) {
        raise("no filter named '" + name + "'");
    }
    return it->second(*this, input, args);
}

bool Interpreter::has_test(const std::string& name) const {
    return tests().count(test_alias(name)) != 0;
}

bool Interpreter::apply_test(const std::string& name, const Value& input, CallArgs& args) {
    const auto& table = tests();
    auto it = table.find(test_alias(name));
    if (it == table.end()) {
        if (name == "filter" || name == "test") {
            const Value& n = input;
            if (!n.is_string()) {
                return false;
            }
            return name == "filter" ? filters().count(n.as_string()) != 0
                                    : tests().count(test_alias(n.as_string())) != 0;
        }
        raise("no test named '" + name + "'");
    }
    return it->second(*this, input, args);
}

}  // namespace helexa::text::jinja::detail
