// Python str/list/dict methods that chat templates call (`content.split('</think>')`,
// `message.get('x')`, `ns.items.append(x)`), plus the string helpers the filters share.
// Case mapping is ASCII-only: non-ASCII letters pass through unchanged.
#include <algorithm>
#include <cctype>

#include "jinja/interpreter.h"

namespace helexa::text::jinja::detail {
namespace {

bool is_py_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' ||
           (c >= 0x1C && c <= 0x1F);
}

const std::string& str_arg(const CallArgs& args, size_t i, const char* name, const char* method) {
    const Value* v = args.get(i, name);
    if (v == nullptr || !v->is_string()) {
        raise(std::string(method) + "() argument '" + name + "' must be a string");
    }
    return v->as_string();
}

bool starts_or_ends(const std::string& s, const Value& affix, bool start, const char* method) {
    auto test = [&](const Value& a) {
        if (!a.is_string()) {
            raise(std::string(method) + " first arg must be str or a tuple of str, not " +
                  a.type_name());
        }
        const std::string& x = a.as_string();
        if (x.size() > s.size()) {
            return false;
        }
        return start ? s.compare(0, x.size(), x) == 0
                     : s.compare(s.size() - x.size(), x.size(), x) == 0;
    };
    if (affix.is_list()) {
        for (const auto& a : affix.as_list()->items) {
            if (test(a)) {
                return true;
            }
        }
        return false;
    }
    return test(affix);
}

int64_t count_occurrences(const std::string& s, const std::string& sub) {
    if (sub.empty()) {
        return utf8_length(s) + 1;
    }
    int64_t n = 0;
    for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) {
        ++n;
    }
    return n;
}

// Byte offset -> code point index, for find()/index() results.
int64_t cp_index(const std::string& s, size_t byte_pos) {
    return utf8_length(std::string_view(s).substr(0, byte_pos));
}

std::string python_format(Interpreter&, const std::string& fmt, const CallArgs& args) {
    std::string out;
    size_t auto_index = 0;
    for (size_t i = 0; i < fmt.size(); ++i) {
        char c = fmt[i];
        if (c == '{') {
            if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
                out += '{';
                ++i;
                continue;
            }
            size_t close = fmt.find('}', i);
            if (close == std::string::npos) {
                raise("Single '{' encountered in format string");
            }
            std::string field = fmt.substr(i + 1, close - i - 1);
            size_t colon = field.find(':');
            if (colon != std::string::npos) {
                raise("format specs in str.format() are not supported");
            }
            const Value* v = nullptr;
            if (field.empty()) {
                if (auto_index >= args.positional.size()) {
                    raise("Replacement index " + std::to_string(auto_index) +
                          " out of range for positional args tuple");
                }
                v = &args.positional[auto_index++];
            } else if (std::all_of(field.begin(), field.end(),
                                   [](char d) { return std::isdigit(static_cast<unsigned char>(d)); })) {
                size_t idx = static_cast<size_t>(std::stoul(field));
                if (idx >= args.positional.size()) {
                    raise("Replacement index " + field + " out of range for positional args tuple");
                }
                v = &args.positional[idx];
            } else {
                for (const auto& kv : args.keyword) {
                    if (kv.first == field) {
                        v = &kv.second;
                    }
                }
                if (v == nullptr) {
                    raise("KeyError: '" + field + "' in str.format()");
                }
            }
            v->append_str(out);
            i = close;
        } else if (c == '}') {
            if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
                ++i;
            }
            out += '}';
        } else {
            out += c;
        }
    }
    return out;
}

bool str_method(Interpreter& in, const std::string& s, std::string_view name, CallArgs& args,
                Value& r) {
    if (name == "startswith" || name == "endswith") {
        const Value* a = args.get(0, "prefix");
        if (a == nullptr) {
            raise(std::string(name) + "() takes at least 1 argument");
        }
        r = Value(starts_or_ends(s, *a, name == "startswith", std::string(name).c_str()));
    } else if (name == "split" || name == "rsplit") {
        const Value* sep = args.get(0, "sep");
        int64_t maxsplit = to_int_arg(args.get(1, "maxsplit"), -1, "maxsplit");
        std::vector<Value> parts;
        for (auto& p : python_split(s, sep, maxsplit, name == "rsplit")) {
            parts.emplace_back(std::move(p));
        }
        r = Value::list(std::move(parts));
    } else if (name == "strip" || name == "lstrip" || name == "rstrip") {
        r = Value(strip_chars(s, args.get(0, "chars"), name != "rstrip", name != "lstrip"));
    } else if (name == "replace") {
        const std::string& from = str_arg(args, 0, "old", "replace");
        const std::string& to = str_arg(args, 1, "new", "replace");
        std::string res = replace_all(s, from, to, to_int_arg(args.get(2, "count"), -1, "count"));
        in.check_size(static_cast<int64_t>(res.size()));
        r = Value(std::move(res));
    } else if (name == "upper") {
        r = Value(to_upper(s));
    } else if (name == "lower") {
        r = Value(to_lower(s));
    } else if (name == "title") {
        r = Value(python_title(s));
    } else if (name == "capitalize") {
        r = Value(python_capitalize(s));
    } else if (name == "format") {
        std::string res = python_format(in, s, args);
        in.check_size(static_cast<int64_t>(res.size()));
        r = Value(std::move(res));
    } else if (name == "count") {
        r = Value(count_occurrences(s, str_arg(args, 0, "sub", "count")));
    } else if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
        const std::string& sub = str_arg(args, 0, "sub", "find");
        size_t p = (name == "find" || name == "index") ? s.find(sub) : s.rfind(sub);
        if (p == std::string::npos) {
            if (name == "index" || name == "rindex") {
                raise("substring not found");
            }
            r = Value(int64_t{-1});
        } else {
            r = Value(cp_index(s, p));
        }
    } else if (name == "join") {
        const Value* it = args.get(0, "iterable");
        if (it == nullptr) {
            raise("join() takes exactly one argument");
        }
        std::string res;
        bool first = true;
        for (const auto& v : in.iterate(*it)) {
            if (!v.is_string()) {
                raise("sequence item: expected str instance, " + v.type_name() + " found");
            }
            if (!first) {
                res += s;
            }
            first = false;
            res += v.as_string();
            in.check_size(static_cast<int64_t>(res.size()));
        }
        r = Value(std::move(res));
    } else if (name == "splitlines") {
        std::vector<Value> lines;
        size_t start = 0;
        for (size_t i = 0; i < s.size(); ++i) {
            if (s[i] == '\n' || s[i] == '\r') {
                lines.emplace_back(s.substr(start, i - start));
                if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') {
                    ++i;
                }
                start = i + 1;
            }
        }
        if (start < s.size()) {
            lines.emplace_back(s.substr(start));
        }
        r = Value::list(std::move(lines));
    } else if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" ||
               name == "islower" || name == "isupper") {
        bool ok = !s.empty();
        bool cased = false;
        for (char ch : s) {
            auto c = static_cast<unsigned char>(ch);
            if (name == "isdigit") {
                ok = ok && std::isdigit(c);
            } else if (name == "isalpha") {
                ok = ok && std::isalpha(c);
            } else if (name == "isalnum") {
                ok = ok && std::isalnum(c);
            } else if (name == "isspace") {
                ok = ok && is_py_space(ch);
            } else if (name == "islower") {
                ok = ok && !std::isupper(c);
                cased = cased || std::islower(c);
            } else {
                ok = ok && !std::islower(c);
                cased = cased || std::isupper(c);
            }
        }
        if (name == "islower" || name == "isupper") {
            ok = ok && cased;
        }
        r = Value(ok);
    } else if (name == "removeprefix" || name == "removesuffix") {
        const std::string& a = str_arg(args, 0, "affix", std::string(name).c_str());
        bool pre = name == "removeprefix";
        if (a.size() <= s.size() && (pre ? s.compare(0, a.size(), a) == 0
                                         : s.compare(s.size() - a.size(), a.size(), a) == 0)) {
            r = Value(pre ? s.substr(a.size()) : s.substr(0, s.size() - a.size()));
        } else {
            r = Value(s);
        }
    } else {
        return false;
    }
    return true;
}

bool list_method(Interpreter& in, const ListPtr& l, std::string_view name, CallArgs& args,
                 Value& r) {
    auto& items = l->items;
    if (name == "append") {
        if (args.positional.size() != 1) {
            raise("append() takes exactly one argument");
        }
        in.check_size(static_cast<int64_t>(items.size() + 1));
        items.push_back(args.positional[0]);
        r = Value::none();
    } else if (name == "extend") {
        const Value* v = args.get(0, "iterable");
        if (v == nullptr) {
            raise("extend() takes exactly one argument");
        }
        auto more = in.iterate(*v);
        in.check_size(static_cast<int64_t>(items.size() + more.size()));
        items.insert(items.end(), more.begin(), more.end());
        r = Value::none();
    } else if (name == "pop") {
        if (items.empty()) {
            raise("pop from empty list");
        }
        int64_t n = static_cast<int64_t>(items.size());
        int64_t i = to_int_arg(args.get(0, "index"), -1, "index");
        if (i < 0) {
            i += n;
        }
        if (i < 0 || i >= n) {
            raise("pop index out of range");
        }
        r = items[static_cast<size_t>(i)];
        items.erase(items.begin() + i);
    } else if (name == "insert") {
        int64_t n = static_cast<int64_t>(items.size());
        int64_t i = to_int_arg(args.get(0, "index"), 0, "index");
        const Value* v = args.get(1, "object");
        if (v == nullptr) {
            raise("insert() takes exactly 2 arguments");
        }
        i = i < 0 ? std::max<int64_t>(0, i + n) : std::min(i, n);
        in.check_size(n + 1);
        items.insert(items.begin() + i, *v);
        r = Value::none();
    } else if (name == "index" || name == "count") {
        const Value* v = args.get(0, "value");
        if (v == nullptr) {
            raise(std::string(name) + "() takes exactly one argument");
        }
        int64_t count = 0;
        for (size_t i = 0; i < items.size(); ++i) {
            if (equals(items[i], *v)) {
                if (name == "index") {
                    r = Value(static_cast<int64_t>(i));
                    return true;
                }
                ++count;
            }
        }
        if (name == "index") {
            raise(v->repr() + " is not in list");
        }
        r = Value(count);
    } else if (name == "reverse") {
        std::reverse(items.begin(), items.end());
        r = Value::none();
    } else if (name == "copy") {
        r = Value::list(items);
    } else {
        return false;
    }
    return true;
}

bool dict_method(Interpreter& in, const DictPtr& d, std::string_view name, CallArgs& args,
                 Value& r) {
    if (name == "keys" || name == "values" || name == "items") {
        std::vector<Value> out;
        out.reserve(d->items.size());
        for (const auto& [k, v] : d->items) {
            if (name == "keys") {
                out.emplace_back(k);
            } else if (name == "values") {
                out.push_back(v);
            } else {
                out.push_back(Value::tuple({Value(k), v}));
            }
        }
        r = Value::list(std::move(out));
    } else if (name == "get") {
        const Value* k = args.get(0, "key");
        const Value* dflt = args.get(1, "default");
        if (k == nullptr) {
            raise("get() takes at least 1 argument");
        }
        const Value* v = k->is_string() ? d->find(k->as_string()) : nullptr;
        r = v != nullptr ? *v : (dflt != nullptr ? *dflt : Value::none());
    } else if (name == "pop") {
        const Value* k = args.get(0, "key");
        const Value* dflt = args.get(1, "default");
        if (k == nullptr) {
            raise("pop() takes at least 1 argument");
        }
        const Value* v = k->is_string() ? d->find(k->as_string()) : nullptr;
        if (v != nullptr) {
            r = *v;
            d->erase(k->as_string());
        } else if (dflt != nullptr) {
            r = *dflt;
        } else {
            raise("KeyError: " + k->repr());
        }
    } else if (name == "setdefault") {
        const Value* k = args.get(0, "key");
        if (k == nullptr || !k->is_string()) {
            raise("setdefault() needs a string key");
        }
        const Value* dflt = args.get(1, "default");
        if (Value* v = d->find(k->as_string())) {
            r = *v;
        } else {
            r = dflt != nullptr ? *dflt : Value::none();
            d->set(k->as_string(), r);
        }
    } else if (name == "update") {
        for (const auto& p : args.positional) {
            if (!p.is_dict()) {
                raise("update() argument must be a dict");
            }
            for (const auto& [k, v] : p.as_dict()->items) {
                d->set(k, v);
            }
        }
        for (const auto& [k, v] : args.keyword) {
            d->set(k, v);
        }
        in.check_size(static_cast<int64_t>(d->items.size()));
        r = Value::none();
    } else if (name == "copy") {
        auto c = std::make_shared<Dict>(*d);
        c->is_namespace = false;
        r = Value(c);
    } else {
        return false;
    }
    return true;
}

}  // namespace

std::optional<Value> call_method(Interpreter& in, const Value& obj, std::string_view name,
                                 CallArgs& args) {
    Value r;
    if (obj.is_string()) {
        if (str_method(in, obj.as_string(), name, args, r)) {
            return r;
        }
    } else if (obj.is_list()) {
        if (list_method(in, obj.as_list(), name, args, r)) {
            return r;
        }
    } else if (obj.is_dict() && !obj.as_dict()->is_namespace) {
        if (dict_method(in, obj.as_dict(), name, args, r)) {
            return r;
        }
    }
    return std::nullopt;
}

bool has_method(const Value& obj, std::string_view name) {
    if (obj.is_dict()) {
        static constexpr std::string_view kDict[] = {"keys", "values", "items", "get", "pop",
                                                     "setdefault", "update", "copy"};
        return std::find(std::begin(kDict), std::end(kDict), name) != std::end(kDict);
    }
    return false;
}

int64_t to_int_arg(const Value* v, int64_t fallback, const char* what) {
    if (v == nullptr || v->is_none()) {
        return fallback;
    }
    if (v->is_int()) {
        return v->as_int();
    }
    if (v->is_bool()) {
        return v->as_bool() ? 1 : 0;
    }
    raise(std::string("'") + what + "' must be an integer, got " + v->type_name());
}

std::vector<std::string> utf8_chars(std::string_view s) {
    std::vector<std::string> out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
        if (i + n > s.size()) {
            n = 1;
        }
        for (size_t k = 1; k < n; ++k) {
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) {
                n = 1;
                break;
            }
        }
        out.emplace_back(s.substr(i, n));
        i += n;
    }
    return out;
}

std::string to_upper(std::string_view s) {
    std::string r(s);
    for (auto& c : r) {
        if (c >= 'a' && c <= 'z') {
            c = static_cast<char>(c - 'a' + 'A');
        }
    }
    return r;
}

std::string to_lower(std::string_view s) {
    std::string r(s);
    for (auto& c : r) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return r;
}

std::string python_title(std::string_view s) {
    std::string r(s);
    bool prev_cased = false;
    for (auto& c : r) {
        bool upper = c >= 'A' && c <= 'Z';
        bool lower = c >= 'a' && c <= 'z';
        if (upper || lower) {
            if (prev_cased && upper) {
                c = static_cast<char>(c - 'A' + 'a');
            } else if (!prev_cased && lower) {
                c = static_cast<char>(c - 'a' + 'A');
            }
            prev_cased = true;
        } else {
            prev_cased = false;
        }
    }
    return r;
}

std::string python_capitalize(std::string_view s) {
    std::string r = to_lower(s);
    if (!r.empty() && r[0] >= 'a' && r[0] <= 'z') {
        r[0] = static_cast<char>(r[0] - 'a' + 'A');
    }
    return r;
}

std::string strip_chars(std::string_view s, const Value* chars, bool left, bool right) {
    if (chars == nullptr || chars->is_none()) {
        size_t b = 0;
        size_t e = s.size();
        if (left) {
            while (b < e && is_py_space(s[b])) {
                ++b;
            }
        }
        if (right) {
            while (e > b && is_py_space(s[e - 1])) {
                --e;
            }
        }
        return std::string(s.substr(b, e - b));
    }
    if (!chars->is_string()) {
        raise("strip arg must be None or str");
    }
    auto set = utf8_chars(chars->as_string());
    auto cs = utf8_chars(s);
    auto in_set = [&](const std::string& c) {
        return std::find(set.begin(), set.end(), c) != set.end();
    };
    size_t b = 0;
    size_t e = cs.size();
    if (left) {
        while (b < e && in_set(cs[b])) {
            ++b;
        }
    }
    if (right) {
        while (e > b && in_set(cs[e - 1])) {
            --e;
        }
    }
    std::string r;
    for (size_t i = b; i < e; ++i) {
        r += cs[i];
    }
    return r;
}

std::vector<std::string> python_split(std::string_view s, const Value* sep, int64_t maxsplit,
                                      bool from_right) {
    std::vector<std::string> out;
    if (sep == nullptr || sep->is_none()) {
        // Whitespace split: runs of whitespace separate, no empty strings.
        std::vector<std::pair<size_t, size_t>> words;
        size_t i = 0;
        while (i < s.size()) {
            while (i < s.size() && is_py_space(s[i])) {
                ++i;
            }
            if (i >= s.size()) {
                break;
            }
            size_t b = i;
            while (i < s.size() && !is_py_space(s[i])) {
                ++i;
            }
            words.emplace_back(b, i);
        }
        if (maxsplit < 0 || static_cast<int64_t>(words.size()) <= maxsplit + 1) {
            for (auto [b, e] : words) {
                out.emplace_back(s.substr(b, e - b));
            }
            return out;
        }
        size_t keep = static_cast<size_t>(maxsplit);
        if (!from_right) {
            for (size_t k = 0; k < keep; ++k) {
                out.emplace_back(s.substr(words[k].first, words[k].second - words[k].first));
            }
            out.emplace_back(s.substr(words[keep].first));
        } else {
            size_t first_kept = words.size() - keep;
            out.emplace_back(s.substr(0, words[first_kept - 1].second));
            for (size_t k = first_kept; k < words.size(); ++k) {
                out.emplace_back(s.substr(words[k].first, words[k].second - words[k].first));
            }
        }
        return out;
    }
    if (!sep->is_string()) {
        raise("must be str or None, not " + sep->type_name());
    }
    const std::string& d = sep->as_string();
    if (d.empty()) {
        raise("empty separator");
    }
    if (!from_right) {
        size_t start = 0;
        int64_t n = 0;
        for (size_t p = s.find(d); p != std::string::npos && (maxsplit < 0 || n < maxsplit);
             p = s.find(d, start)) {
            out.emplace_back(s.substr(start, p - start));
            start = p + d.size();
            ++n;
        }
        out.emplace_back(s.substr(start));
        return out;
    }
    size_t end = s.size();
    int64_t n = 0;
    while (maxsplit < 0 || n < maxsplit) {
        if (end < d.size()) {
            break;
        }
        size_t p = s.rfind(d, end - d.size());
        if (p == std::string::npos) {
            break;
        }
        out.emplace_back(s.substr(p + d.size(), end - p - d.size()));
        end = p;
        ++n;
    }
    out.emplace_back(s.substr(0, end));
    std::reverse(out.begin(), out.end());
    return out;
}

std::string replace_all(std::string_view s, std::string_view from, std::string_view to,
                        int64_t count) {
    std::string out;
    if (from.empty()) {
        auto chars = utf8_chars(s);
        int64_t n = 0;
        for (const auto& c : chars) {
            if (count < 0 || n < count) {
                out += to;
                ++n;
            }
            out += c;
        }
        if (count < 0 || n < count) {
            out += to;
        }
        return out;
    }
    size_t start = 0;
    int64_t n = 0;
    for (size_t p = s.find(from); p != std::string_view::npos && (count < 0 || n < count);
         p = s.find(from, start)) {
        out.append(s.substr(start, p - start));
        out.append(to);
        start = p + from.size();
        ++n;
    }
    out.append(s.substr(start));
    return out;
}

}  // namespace helexa::text::jinja::detail
