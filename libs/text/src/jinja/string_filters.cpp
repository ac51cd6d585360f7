// String filters: case (lower, upper, title, capitalize), layout (center, indent, trim),
// escape, replace, wordcount, join and printf-style format, matching jinja2's output.
#include <cctype>
#include <cstdio>
#include <string>
#include <string_view>

#include "jinja/filter_support.h"

namespace helexa::text::jinja::detail {
namespace {

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

Value f_trim(Interpreter&, Value& v, CallArgs& a) {
    return Value(strip_chars(v.str(), arg(a, 0, "chars"), true, true));
}

Value f_wordcount(Interpreter&, Value& v, CallArgs&) {
    return Value(static_cast<int64_t>(python_split(v.str(), nullptr, -1, false).size()));
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

constexpr NamedFilter kStringFilters[] = {
    {"capitalize", f_capitalize},
    {"center", f_center},
    {"e", f_escape},
    {"escape", f_escape},
    {"forceescape", f_escape},
    {"format", f_format},
    {"indent", f_indent},
    {"join", f_join},
    {"lower", f_lower},
    {"replace", f_replace},
    {"title", f_title},
    {"trim", f_trim},
    {"upper", f_upper},
    {"wordcount", f_wordcount},
};

}  // namespace

std::span<const NamedFilter> string_filters() {
    return kStringFilters;
}

}  // namespace helexa::text::jinja::detail
