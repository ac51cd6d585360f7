// Sequence and mapping filters: picking (first, last, min, max, attr), reshaping (batch, items,
// list, reverse, dictsort, sort, unique), mapping and filtering (map, select, reject and their
// attr forms), length and sum. Keys compare as jinja2 does: strings case-insensitively unless
// case_sensitive, attributes through dotted paths.
#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "jinja/filter_support.h"

namespace helexa::text::jinja::detail {
namespace {

Value f_attr(Interpreter& in, Value& v, CallArgs& a) {
    const Value* n = arg(a, 0, "name");
    if (n == nullptr || !n->is_string()) {
        raise("attr filter needs an attribute name");
    }
    return in.get_attr(v, n->as_string());
}

Value f_batch(Interpreter& in, Value& v, CallArgs& a) {
    int64_t size = to_int_arg(arg(a, 0, "linecount"), 1, "linecount");
    if (size <= 0) {
        raise("batch size must be positive");
    }
    const Value* fill = arg(a, 1, "fill_with");
    std::vector<Value> out;
    std::vector<Value> cur;
    for (auto& item : in.iterate(v)) {
        cur.push_back(std::move(item));
        if (static_cast<int64_t>(cur.size()) == size) {
            out.push_back(Value::list(std::move(cur)));
            cur.clear();
        }
    }
    if (!cur.empty()) {
        if (fill != nullptr && !fill->is_none()) {
            while (static_cast<int64_t>(cur.size()) < size) {
                cur.push_back(*fill);
            }
        }
        out.push_back(Value::list(std::move(cur)));
    }
    return Value::list(std::move(out));
}

Value f_first(Interpreter& in, Value& v, CallArgs&) {
    auto items = in.iterate(v);
    return items.empty() ? Value::undefined("first") : items.front();
}

Value f_last(Interpreter& in, Value& v, CallArgs&) {
    auto items = in.iterate(v);
    return items.empty() ? Value::undefined("last") : items.back();
}

Value f_items(Interpreter&, Value& v, CallArgs&) {
    if (v.is_undefined()) {
        return Value::list();
    }
    if (!v.is_dict()) {
        raise("items filter expects a mapping, got " + v.type_name());
    }
    std::vector<Value> out;
    for (const auto& [k, val] : v.as_dict()->items) {
        out.push_back(Value::tuple({Value(k), val}));
    }
    return Value::list(std::move(out));
}

Value f_length(Interpreter&, Value& v, CallArgs&) {
    return Value(v.length());
}

Value f_list(Interpreter& in, Value& v, CallArgs&) {
    return Value::list(in.iterate(v));
}

Value f_dictsort(Interpreter&, Value& v, CallArgs& a) {
    if (!v.is_dict()) {
        raise("dictsort filter expects a dict, got " + v.type_name());
    }
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    const Value* by = arg(a, 1, "by");
    bool by_value = by != nullptr && by->is_string() && by->as_string() == "value";
    bool reverse = arg_bool(a, 2, "reverse", false);
    std::vector<Value> items;
    for (const auto& [k, val] : v.as_dict()->items) {
        items.push_back(Value::tuple({Value(k), val}));
    }
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
        size_t i = by_value ? 1 : 0;
        int c = compare(lower_if_string(x.as_list()->items[i], cs),
                        lower_if_string(y.as_list()->items[i], cs));
        return reverse ? c > 0 : c < 0;
    });
    return Value::list(std::move(items));
}

Value f_map(Interpreter& in, Value& v, CallArgs& a) {
    std::vector<Value> out;
    const Value* attribute = nullptr;
    const Value* dflt = nullptr;
    for (const auto& kv : a.keyword) {
        if (kv.first == "attribute") {
            attribute = &kv.second;
        } else if (kv.first == "default") {
            dflt = &kv.second;
        }
    }
    if (attribute != nullptr) {
        for (const auto& item : in.iterate(v)) {
            Value r = resolve_attr(in, item, attribute->str());
            out.push_back(r.is_undefined() && dflt != nullptr ? *dflt : r);
        }
        return Value::list(std::move(out));
    }
    if (a.positional.empty() || !a.positional[0].is_string()) {
        raise("map requires a filter name or attribute=");
    }
    std::string name = a.positional[0].as_string();
    CallArgs rest;
    rest.positional.assign(a.positional.begin() + 1, a.positional.end());
    rest.keyword = a.keyword;
    for (const auto& item : in.iterate(v)) {
        CallArgs copy = rest;
        out.push_back(in.apply_filter(name, item, copy));
    }
    return Value::list(std::move(out));
}

Value select_impl(Interpreter& in, Value& v, CallArgs& a, bool by_attr, bool keep) {
    std::vector<Value> out;
    size_t first = by_attr ? 1 : 0;
    std::string attribute;
    if (by_attr) {
        if (a.positional.empty()) {
            raise("selectattr/rejectattr need an attribute name");
        }
        attribute = a.positional[0].str();
    }
    std::string test;
    CallArgs test_args;
    if (a.positional.size() > first) {
        test = a.positional[first].str();
        test_args.positional.assign(a.positional.begin() + static_cast<ptrdiff_t>(first) + 1,
                                    a.positional.end());
        test_args.keyword = a.keyword;
    }
    for (const auto& item : in.iterate(v)) {
        Value x = by_attr ? resolve_attr(in, item, attribute) : item;
        bool r = false;
        if (test.empty()) {
            r = x.truthy();
        } else {
            CallArgs copy = test_args;
            r = in.apply_test(test, x, copy);
        }
        if (r == keep) {
            out.push_back(item);
        }
    }
    return Value::list(std::move(out));
}

Value f_select(Interpreter& in, Value& v, CallArgs& a) {
    return select_impl(in, v, a, false, true);
}
Value f_reject(Interpreter& in, Value& v, CallArgs& a) {
    return select_impl(in, v, a, false, false);
}
Value f_selectattr(Interpreter& in, Value& v, CallArgs& a) {
    return select_impl(in, v, a, true, true);
}
Value f_rejectattr(Interpreter& in, Value& v, CallArgs& a) {
    return select_impl(in, v, a, true, false);
}

Value f_sort(Interpreter& in, Value& v, CallArgs& a) {
    bool reverse = arg_bool(a, 0, "reverse", false);
    bool cs = arg_bool(a, 1, "case_sensitive", false);
    const Value* attribute = arg(a, 2, "attribute");
    auto items = in.iterate(v);
    auto key = [&](const Value& x) {
        return lower_if_string(attribute_or_item(in, x, attribute), cs);
    };
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
        int c = compare(key(x), key(y));
        return reverse ? c > 0 : c < 0;
    });
    return Value::list(std::move(items));
}

Value f_unique(Interpreter& in, Value& v, CallArgs& a) {
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    const Value* attribute = arg(a, 1, "attribute");
    std::vector<Value> out;
    std::vector<Value> seen;
    for (const auto& item : in.iterate(v)) {
        Value k = lower_if_string(attribute_or_item(in, item, attribute), cs);
        bool dup = false;
        for (const auto& s : seen) {
            dup = dup || equals(s, k);
        }
        if (!dup) {
            seen.push_back(k);
            out.push_back(item);
        }
    }
    return Value::list(std::move(out));
}

Value minmax(Interpreter& in, Value& v, CallArgs& a, bool want_max) {
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    const Value* attribute = arg(a, 1, "attribute");
    auto items = in.iterate(v);
    if (items.empty()) {
        return Value::undefined(want_max ? "max" : "min");
    }
    size_t best = 0;
    auto key = [&](const Value& x) {
        return lower_if_string(attribute_or_item(in, x, attribute), cs);
    };
    for (size_t i = 1; i < items.size(); ++i) {
        int c = compare(key(items[i]), key(items[best]));
        if (want_max ? c > 0 : c < 0) {
            best = i;
        }
    }
    return items[best];
}

Value f_max(Interpreter& in, Value& v, CallArgs& a) {
    return minmax(in, v, a, true);
}

Value f_min(Interpreter& in, Value& v, CallArgs& a) {
    return minmax(in, v, a, false);
}

Value f_reverse(Interpreter& in, Value& v, CallArgs&) {
    if (v.is_string()) {
        auto chars = utf8_chars(v.as_string());
        std::string r;
        for (auto it = chars.rbegin(); it != chars.rend(); ++it) {
            r += *it;
        }
        return Value(std::move(r));
    }
    auto items = in.iterate(v);
    std::reverse(items.begin(), items.end());
    return Value::list(std::move(items));
}

Value f_sum(Interpreter& in, Value& v, CallArgs& a) {
    const Value* attribute = arg(a, 0, "attribute");
    const Value* start = arg(a, 1, "start");
    int64_t isum = start != nullptr && start->is_int() ? start->as_int() : 0;
    double fsum = start != nullptr ? start->to_double() : 0.0;
    bool is_float = start != nullptr && start->is_float();
    for (const auto& item : in.iterate(v)) {
        Value x = attribute_or_item(in, item, attribute);
        if (x.is_float()) {
            is_float = true;
        } else if (!x.is_int() && !x.is_bool()) {
            raise("unsupported operand type(s) for +: 'int' and '" + x.type_name() + "'");
        }
        fsum += x.to_double();
        if (!is_float && __builtin_add_overflow(isum, static_cast<int64_t>(x.to_double()), &isum)) {
            raise("integer overflow");
        }
    }
    return is_float ? Value(fsum) : Value(isum);
}

constexpr NamedFilter kSequenceFilters[] = {
    {"attr", f_attr},
    {"batch", f_batch},
    {"count", f_length},
    {"dictsort", f_dictsort},
    {"first", f_first},
    {"items", f_items},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"map", f_map},
    {"max", f_max},
    {"min", f_min},
    {"reject", f_reject},
    {"rejectattr", f_rejectattr},
    {"reverse", f_reverse},
    {"select", f_select},
    {"selectattr", f_selectattr},
    {"sort", f_sort},
    {"sum", f_sum},
    {"unique", f_unique},
};

}  // namespace

std::span<const NamedFilter> sequence_filters() {
    return kSequenceFilters;
}

}  // namespace helexa::text::jinja::detail
