// Value filters: defaults and pass-throughs (default, safe, string), number conversion and
// rounding with Python's parsing and overflow rules (abs, int, float, round), and
// transformers' `tojson` (key order kept, ensure_ascii off, optional indent).
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

#include "helexa/common/strings.h"
#include "jinja/filter_support.h"

namespace helexa::text::jinja::detail {
namespace {

Value f_abs(Interpreter&, Value& v, CallArgs&) {
    if (v.is_int()) {
        if (v.as_int() == INT64_MIN) {
            raise("integer overflow");
        }
        return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
    }
    if (v.is_bool()) {
        return Value(int64_t{v.as_bool() ? 1 : 0});
    }
    if (v.is_float()) {
        return Value(std::fabs(v.as_float()));
    }
    raise("bad operand type for abs(): '" + v.type_name() + "'");
}

Value f_default(Interpreter&, Value& v, CallArgs& a) {
    const Value* d = arg(a, 0, "default_value");
    bool boolean = arg_bool(a, 1, "boolean", false);
    if (v.is_undefined() || (boolean && !v.truthy())) {
        return d != nullptr ? *d : Value(std::string());
    }
    return v;
}

Value f_safe(Interpreter&, Value& v, CallArgs&) {
    return v;
}

Value f_string(Interpreter&, Value& v, CallArgs&) {
    return Value(v.str());
}

bool parse_python_float(std::string s, double& out) {
    s = std::string(trim_space(s));  // Python's int()/float() ignore surrounding whitespace
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    if (s.empty()) {
        return false;
    }
    char* end = nullptr;
    out = std::strtod(s.c_str(), &end);
    return end == s.c_str() + s.size();
}

Value f_float(Interpreter&, Value& v, CallArgs& a) {
    const Value* d = arg(a, 0, "default");
    Value dflt = d != nullptr ? *d : Value(0.0);
    if (v.is_float()) {
        return v;
    }
    if (v.is_int() || v.is_bool()) {
        return Value(v.to_double());
    }
    if (v.is_string()) {
        double x = 0;
        return parse_python_float(v.as_string(), x) ? Value(x) : dflt;
    }
    return dflt;
}

Value f_int(Interpreter&, Value& v, CallArgs& a) {
    const Value* d = arg(a, 0, "default");
    Value dflt = d != nullptr ? *d : Value(int64_t{0});
    int64_t base = to_int_arg(arg(a, 1, "base"), 10, "base");
    if (v.is_int()) {
        return v;
    }
    if (v.is_bool()) {
        return Value(int64_t{v.as_bool() ? 1 : 0});
    }
    if (v.is_float()) {
        double x = v.as_float();
        if (!std::isfinite(x) || std::fabs(x) >= 9.2e18) {
            return dflt;
        }
        return Value(static_cast<int64_t>(x));
    }
    if (v.is_string()) {
        std::string s = v.as_string();
        s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
        s = std::string(trim_space(s));  // Python's int()/float() ignore surrounding whitespace
        if (base < 2 || base > 36) {
            base = 10;
        }
        errno = 0;
        char* end = nullptr;
        long long r = std::strtoll(s.c_str(), &end, static_cast<int>(base));
        if (!s.empty() && end == s.c_str() + s.size() && errno == 0) {
            return Value(static_cast<int64_t>(r));
        }
        double x = 0;
        if (parse_python_float(s, x) && std::isfinite(x) && std::fabs(x) < 9.2e18) {
            return Value(static_cast<int64_t>(x));
        }
        return dflt;
    }
    return dflt;
}

Value f_round(Interpreter&, Value& v, CallArgs& a) {
    int64_t precision = to_int_arg(arg(a, 0, "precision"), 0, "precision");
    const Value* m = arg(a, 1, "method");
    std::string method = m != nullptr ? m->str() : "common";
    if (!v.is_number() && !v.is_bool()) {
        raise("round filter expects a number, got " + v.type_name());
    }
    if (method == "common" && (v.is_int() || v.is_bool())) {
        return Value(v.is_int() ? v.as_int() : int64_t{v.as_bool() ? 1 : 0});
    }
    double x = v.to_double();
    double scale = std::pow(10.0, static_cast<double>(precision));
    double r = 0;
    if (method == "common") {
        r = std::nearbyint(x * scale) / scale;  // Python's round: half to even
    } else if (method == "ceil") {
        r = std::ceil(x * scale) / scale;
    } else if (method == "floor") {
        r = std::floor(x * scale) / scale;
    } else {
        raise("method must be common, ceil or floor");
    }
    return Value(r);
}

Value f_tojson(Interpreter& in, Value& v, CallArgs& a) {
    JsonStyle style;
    for (const auto& [k, val] : a.keyword) {
        if (k == "indent") {
            style.indent = val.is_none() ? -1 : static_cast<int>(to_int_arg(&val, -1, "indent"));
        } else if (k == "ensure_ascii") {
            style.ensure_ascii = val.truthy();
        } else if (k == "sort_keys") {
            style.sort_keys = val.truthy();
        } else if (k == "separators") {
            if (!val.is_list() || val.as_list()->items.size() != 2) {
                raise("tojson separators must be a pair of strings");
            }
            style.item_separator = val.as_list()->items[0].str();
            style.key_separator = val.as_list()->items[1].str();
        } else {
            raise("tojson got an unexpected keyword argument '" + k + "'");
        }
    }
    if (!a.positional.empty()) {
        // transformers' signature: tojson(x, ensure_ascii=False, indent=None, ...)
        style.ensure_ascii = a.positional[0].truthy();
        if (a.positional.size() > 1) {
            style.indent = a.positional[1].is_none()
                               ? -1
                               : static_cast<int>(to_int_arg(&a.positional[1], -1, "indent"));
        }
    }
    if (style.indent > 64) {
        raise("tojson indent too large");
    }
    if (v.is_undefined()) {
        raise("Object of type Undefined is not JSON serializable");
    }
    std::string out;
    v.append_json(out, style, 0);
    in.check_size(static_cast<int64_t>(out.size()));
    return Value(std::move(out));
}

constexpr NamedFilter kValueFilters[] = {
    {"abs", f_abs},
    {"d", f_default},
    {"default", f_default},
    {"float", f_float},
    {"int", f_int},
    {"round", f_round},
    {"safe", f_safe},
    {"string", f_string},
    {"tojson", f_tojson},
};

}  // namespace

std::span<const NamedFilter> value_filters() {
    return kValueFilters;
}

}  // namespace helexa::text::jinja::detail
