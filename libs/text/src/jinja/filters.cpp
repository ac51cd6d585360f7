// jinja2's builtin filters and tests, with transformers' `tojson` (key order kept,
// ensure_ascii off, optional indent).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <unordered_map>

#include "jinja/interpreter.h"

namespace helexa::text::jinja::detail {
namespace {

using FilterFn = Value (*)(Interpreter&, Value&, CallArgs&);
using TestFn = bool (*)(Interpreter&, const Value&, CallArgs&);

const Value* arg(const CallArgs& a, size_t i, std::string_view name) {
    return a.get(i, name);
}

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

Value f_capitalize(Interpreter&, Value& v, CallArgs&) {
    return Value(python_capitalize(v.str()));
}

Value f_center(Interpreter& in, Value& v, CallArgs& a) {
    std::string s = v.str();
    int64_t width = to_int_arg(arg(a, 0, "width"), 80, "width");
    int64_t len = utf8_length(s);
    if (width <= len) {
        return Value(s);
    }
    in.check_size(width);
    int64_t total = width - len;
    // Python's str.center puts the extra space on the right when the padding is odd and the
    // string length is even... precisely: left = total/2 + (total & width & 1).
    int64_t left = total / 2 + (total & width & 1);
    return Value(std::string(static_cast<size_t>(left), ' ') + s +
                 std::string(static_cast<size_t>(total - left), ' '));
}

Value f_default(Interpreter&, Value& v, CallArgs& a) {
    const Value* d = arg(a, 0, "default_value");
    bool boolean = arg_bool(a, 1, "boolean", false);
    if (v.is_undefined() || (boolean && !v.truthy())) {
        return d != nullptr ? *d : Value(std::string());
    }
    return v;
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

Value f_escape(Interpreter&, Value& v, CallArgs&) {
    std::string s = v.str();
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&#34;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out += c;
        }
    }
    return Value(std::move(out));
}

Value f_first(Interpreter& in, Value& v, CallArgs&) {
    auto items = in.iterate(v);
    return items.empty() ? Value::undefined("first") : items.front();
}

Value f_last(Interpreter& in, Value& v, CallArgs&) {
    auto items = in.iterate(v);
    return items.empty() ? Value::undefined("last") : items.back();
}

bool parse_python_float(std::string s, double& out) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
        s.pop_back();
    }
    size_t b = 0;
    while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) {
        ++b;
    }
    s = s.substr(b);
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
        while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
            s.pop_back();
        }
        size_t b = 0;
        while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) {
            ++b;
        }
        s = s.substr(b);
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

Value f_indent(Interpreter& in, Value& v, CallArgs& a) {
    const Value* w = arg(a, 0, "width");
    std::string pad = w != nullptr && w->is_string()
                          ? w->as_string()
                          : std::string(static_cast<size_t>(std::max<int64_t>(
                                            0, to_int_arg(w, 4, "width"))),
                                        ' ');
    bool first = arg_bool(a, 1, "first", false);
    bool blank = arg_bool(a, 2, "blank", false);
    std::string s = v.str();
    std::string out;
    size_t start = 0;
    bool is_first = true;
    while (true) {
        size_t nl = s.find('\n', start);
        std::string line = s.substr(start, nl == std::string::npos ? std::string::npos
                                                                    : nl - start);
        bool add = is_first ? first : (blank || !line.empty());
        if (is_first && first && line.empty() && !blank) {
            add = true;  // jinja indents the first line unconditionally when first=True
        }
        if (add) {
            out += pad;
        }
        out += line;
        in.check_size(static_cast<int64_t>(out.size()));
        if (nl == std::string::npos) {
            break;
        }
        out += '\n';
        start = nl + 1;
        is_first = false;
    }
    return Value(std::move(out));
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

Value f_join(Interpreter& in, Value& v, CallArgs& a) {
    const Value* d = arg(a, 0, "d");
    const Value* attribute = arg(a, 1, "attribute");
    std::string sep = d != nullptr ? d->str() : std::string();
    std::string out;
    bool first = true;
    for (const auto& item : in.iterate(v)) {
        if (!first) {
            out += sep;
        }
        first = false;
        if (attribute != nullptr) {
            resolve_attr(in, item, attribute->str()).append_str(out);
        } else {
            item.append_str(out);
        }
        in.check_size(static_cast<int64_t>(out.size()));
    }
    return Value(std::move(out));
}

Value f_length(Interpreter&, Value& v, CallArgs&) {
    return Value(v.length());
}

Value f_list(Interpreter& in, Value& v, CallArgs&) {
    return Value::list(in.iterate(v));
}

Value f_lower(Interpreter&, Value& v, CallArgs&) {
    return Value(to_lower(v.str()));
}

Value f_upper(Interpreter&, Value& v, CallArgs&) {
    return Value(to_upper(v.str()));
}

Value f_title(Interpreter&, Value& v, CallArgs&) {
    // jinja's title: words split on whitespace, '-', '(', '{', '[', '<'.
    std::string s = v.str();
    bool start = true;
    for (auto& c : s) {
        bool sep = std::isspace(static_cast<unsigned char>(c)) || c == '-' || c == '(' ||
                   c == '{' || c == '[' || c == '<';
        if (sep) {
            start = true;
            continue;
        }
        if (start) {
            if (c >= 'a' && c <= 'z') {
                c = static_cast<char>(c - 'a' + 'A');
            }
        } else if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
        start = false;
    }
    return Value(std::move(s));
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

Value minmax(Interpreter& in, Value& v, CallArgs& a, bool want_max) {
    bool cs = arg_bool(a, 0, "case_sensitive", false);
    const Value* attribute = arg(a, 1, "attribute");
    auto items = in.iterate(v);
    if (items.empty()) {
        return Value::undefined(want_max ? "max" : "min");
    }
    size_t best = 0;
    auto key = [&](const Value& x) {
        return lower_if_string(attribute != nullptr ? resolve_attr(in, x, attribute->str()) : x,
                               cs);
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

Value f_replace(Interpreter& in, Value& v, CallArgs& a) {
    const Value* from = arg(a, 0, "old");
    const Value* to = arg(a, 1, "new");
    if (from == nullptr || to == nullptr) {
        raise("replace filter needs old and new");
    }
    std::string r = replace_all(v.str(), from->str(), to->str(),
                                to_int_arg(arg(a, 2, "count"), -1, "count"));
    in.check_size(static_cast<int64_t>(r.size()));
    return Value(std::move(r));
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

Value f_safe(Interpreter&, Value& v, CallArgs&) {
    return v;
}

Value f_string(Interpreter&, Value& v, CallArgs&) {
    return Value(v.str());
}

Value f_sum(Interpreter& in, Value& v, CallArgs& a) {
    const Value* attribute = arg(a, 0, "attribute");
    const Value* start = arg(a, 1, "start");
    int64_t isum = start != nullptr && start->is_int() ? start->as_int() : 0;
    double fsum = start != nullptr ? start->to_double() : 0.0;
    bool is_float = start != nullptr && start->is_float();
    for (const auto& item : in.iterate(v)) {
        Value x = attribute != nullptr ? resolve_attr(in, item, attribute->str()) : item;
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

Value f_trim(Interpreter&, Value& v, CallArgs& a) {
    return Value(strip_chars(v.str(), arg(a, 0, "chars"), true, true));
}

Value f_wordcount(Interpreter&, Value& v, CallArgs&) {
    return Value(static_cast<int64_t>(python_split(v.str(), nullptr, -1, false).size()));
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
        return lower_if_string(attribute != nullptr ? resolve_attr(in, x, attribute->str()) : x,
                               cs);
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
        Value k = lower_if_string(
            attribute != nullptr ? resolve_attr(in, item, attribute->str()) : item, cs);
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

// printf-style `"%s: %d"|format(a, b)`: %s %r %d %i %f %x %% with optional precision.
Value f_format(Interpreter& in, Value& v, CallArgs& a) {
    std::string fmt = v.str();
    std::string out;
    size_t next = 0;
    for (size_t i = 0; i < fmt.size(); ++i) {
        if (fmt[i] != '%') {
            out += fmt[i];
            continue;
        }
        size_t j = i + 1;
        std::string spec = "%";
        while (j < fmt.size() && std::string_view("-+ 0#.0123456789").find(fmt[j]) !=
                                     std::string_view::npos) {
            spec += fmt[j++];
        }
        if (j >= fmt.size()) {
            raise("incomplete format");
        }
        char conv = fmt[j];
        if (conv == '%') {
            out += '%';
            i = j;
            continue;
        }
        if (next >= a.positional.size()) {
            raise("not enough arguments for format string");
        }
        const Value& x = a.positional[next++];
        char buf[128];
        if (conv == 's') {
            out += x.str();
        } else if (conv == 'r') {
            out += x.repr();
        } else if (conv == 'd' || conv == 'i' || conv == 'x') {
            spec += conv == 'x' ? "llx" : "lld";
            std::snprintf(buf, sizeof(buf), spec.c_str(),
                          static_cast<long long>(x.is_float() ? static_cast<int64_t>(x.as_float())
                                                              : to_int_arg(&x, 0, "value")));
            out += buf;
        } else if (conv == 'f' || conv == 'e' || conv == 'g') {
            spec += conv;
            std::snprintf(buf, sizeof(buf), spec.c_str(), x.to_double());
            out += buf;
        } else {
            raise(std::string("unsupported format character '") + conv + "'");
        }
        in.check_size(static_cast<int64_t>(out.size()));
        i = j;
    }
    return Value(std::move(out));
}

const std::unordered_map<std::string_view, FilterFn>& filters() {
    static const std::unordered_map<std::string_view, FilterFn> kFilters = {
        {"abs", f_abs},
        {"attr", f_attr},
        {"batch", f_batch},
        {"capitalize", f_capitalize},
        {"center", f_center},
        {"count", f_length},
        {"d", f_default},
        {"default", f_default},
        {"dictsort", f_dictsort},
        {"e", f_escape},
        {"escape", f_escape},
        {"first", f_first},
        {"float", f_float},
        {"forceescape", f_escape},
        {"format", f_format},
        {"indent", f_indent},
        {"int", f_int},
        {"items", f_items},
        {"join", f_join},
        {"last", f_last},
        {"length", f_length},
        {"list", f_list},
        {"lower", f_lower},
        {"map", f_map},
        {"max", f_max},
        {"min", f_min},
        {"reject", f_reject},
        {"rejectattr", f_rejectattr},
        {"replace", f_replace},
        {"reverse", f_reverse},
        {"round", f_round},
        {"safe", f_safe},
        {"select", f_select},
        {"selectattr", f_selectattr},
        {"sort", f_sort},
        {"string", f_string},
        {"sum", f_sum},
        {"title", f_title},
        {"tojson", f_tojson},
        {"trim", f_trim},
        {"unique", f_unique},
        {"upper", f_upper},
        {"wordcount", f_wordcount},
    };
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
