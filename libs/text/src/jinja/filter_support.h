// Private to the jinja filter files: the filter signature, the per-file filter lists that
// filters.cpp merges into one lookup table, and the argument and attribute helpers the
// filters share. Not for use outside libs/text/src/jinja/*filters.cpp.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "jinja/interpreter.h"

namespace helexa::text::jinja::detail {

using FilterFn = Value (*)(Interpreter&, Value&, CallArgs&);

struct NamedFilter {
    std::string_view name;
    FilterFn fn;
};

// Each filter file's builtins, merged by filters.cpp. Names are unique across all lists.
std::span<const NamedFilter> string_filters();    // string_filters.cpp
std::span<const NamedFilter> sequence_filters();  // sequence_filters.cpp
std::span<const NamedFilter> value_filters();     // value_filters.cpp

// Argument `i`, or keyword `name`; nullptr when neither was passed.
inline const Value* arg(const CallArgs& a, size_t i, std::string_view name) {
    return a.get(i, name);
}

bool arg_bool(const CallArgs& a, size_t i, std::string_view name, bool dflt);

// Attribute path "a.b.0" as jinja's make_attrgetter resolves it.
Value resolve_attr(Interpreter& in, const Value& item, const std::string& path);

// `item`'s `attribute` path when an `attribute=` argument was given, else `item` itself.
Value attribute_or_item(Interpreter& in, const Value& item, const Value* attribute);

// The comparison key of sort, unique, min, max and dictsort: strings lowered unless
// case-sensitive.
Value lower_if_string(const Value& v, bool case_sensitive);

}  // namespace helexa::text::jinja::detail
