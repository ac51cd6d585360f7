// Binary operators, comparisons, slicing and the global functions, with Python semantics.
#include <cmath>
#include <limits>
#include <unordered_map>

#include "jinja/interpreter.h"

namespace helexa::text::jinja::detail {
namespace {

[[noreturn]] void undefined_error(const Value& v) {
    if (v.undefined_name().empty()) {
        raise("value is undefined");
    }
    raise("'" + v.undefined_name() + "' is undefined");
}

bool int_like(const Value& v) {
    return v.is_int() || v.is_bool();
}

int64_t int_of(const Value& v) {
    return v.is_int() ? v.as_int() : (v.as_bool() ? 1 : 0);
}

bool num_like(const Value& v) {
    return v.is_int() || v.is_bool() || v.is_float();
}

[[noreturn]] void unsupported(const char* op, const Value& a, const Value& b) {
    raise(std::string("unsupported operand type(s) for ") + op + ": '" + a.type_name() +
          "' and '" + b.type_name() + "'");
}

[[noreturn]] void overflow() {
    raise("integer overflow");
}

int64_t checked_pow(int64_t base, int64_t exp) {
    int64_t result = 1;
    while (exp > 0) {
        if ((exp & 1) != 0 && __builtin_mul_overflow(result, base, &result)) {
            overflow();
        }
        exp >>= 1;
        if (exp > 0 && __builtin_mul_overflow(base, base, &base)) {
            overflow();
        }
    }
    return result;
}

bool contains(const Value& container, const Value& item) {
    if (container.is_string()) {
        if (!item.is_string()) {
            raise("'in <string>' requires string as left operand, not " + item.type_name());
        }
        return container.as_string().find(item.as_string()) != std::string::npos;
    }
    if (container.is_list()) {
        for (const auto& v : container.as_list()->items) {
            if (equals(v, item)) {
                return true;
            }
        }
        return false;
    }
    if (container.is_dict()) {
        return item.is_string() && container.as_dict()->find(item.as_string()) != nullptr;
    }
    if (container.is_undefined()) {
        return false;
    }
    raise("argument of type '" + container.type_name() + "' is not iterable");
}

// Python's slice.indices(): clamps start/stop for the given step and length.
void slice_bounds(int64_t n, const Value& start_v, const Value& stop_v, int64_t step,
                  int64_t& start, int64_t& stop) {
    int64_t lower = step > 0 ? 0 : -1;
    int64_t upper = step > 0 ? n : n - 1;
    auto clamp = [&](const Value& v, int64_t dflt) {
        if (v.is_none() || v.is_undefined()) {
            return dflt;
        }
        if (!int_like(v)) {
            raise("slice indices must be integers or None");
        }
        int64_t i = int_of(v);
        if (i < 0) {
            i += n;
            return i < lower ? lower : i;
        }
        return i > upper ? upper : i;
    };
    start = clamp(start_v, step > 0 ? lower : upper);
    stop = clamp(stop_v, step > 0 ? upper : lower);
}

class Builtin : public Object {
public:
    using Fn = Value (*)(Interpreter&, CallArgs&);
    Builtin(std::string name, Fn fn) : name_(std::move(name)), fn_(fn) {}
    std::string type_name() const override { return "builtin_function_or_method"; }
    bool callable() const override { return true; }
    Value call(Interpreter& in, CallArgs& args) override { return fn_(in, args); }
    std::string repr() const override { return "<built-in function " + name_ + ">"; }

private:
    std::string name_;
    Fn fn_;
};

Value builtin_range(Interpreter& in, CallArgs& args) {
    auto arg = [&](size_t i) {
        const Value& v = args.positional[i];
        if (!int_like(v)) {
            raise("range() arguments must be integers, got " + v.type_name());
        }
        return int_of(v);
    };
    int64_t start = 0;
    int64_t stop = 0;
    int64_t step = 1;
    if (args.positional.size() == 1) {
        stop = arg(0);
    } else if (args.positional.size() == 2 || args.positional.size() == 3) {
        start = arg(0);
        stop = arg(1);
        if (args.positional.size() == 3) {
            step = arg(2);
        }
    } else {
        raise("range() expects 1 to 3 arguments");
    }
    if (step == 0) {
        raise("range() arg 3 must not be zero");
    }
    std::vector<Value> items;
    for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
        in.count_iteration();
        items.emplace_back(i);
        if (__builtin_add_overflow(i, step, &i)) {
            break;
        }
    }
    return Value::list(std::move(items));
}

Value builtin_namespace(Interpreter&, CallArgs& args) {
    auto d = std::make_shared<Dict>();
    d->is_namespace = true;
    for (const auto& p : args.positional) {
        if (!p.is_dict()) {
            raise("namespace() positional arguments must be dicts");
        }
        for (const auto& [k, v] : p.as_dict()->items) {
            d->set(k, v);
        }
    }
    for (const auto& [k, v] : args.keyword) {
        d->set(k, v);
    }
    return Value(d);
}

Value builtin_dict(Interpreter&, CallArgs& args) {
    Value d = Value::dict();
    for (const auto& p : args.positional) {
        if (p.is_dict()) {
            for (const auto& [k, v] : p.as_dict()->items) {
                d.as_dict()->set(k, v);
            }
        } else {
            raise("dict() positional argument must be a dict");
        }
    }
    for (const auto& [k, v] : args.keyword) {
        d.as_dict()->set(k, v);
    }
    return d;
}

Value builtin_raise_exception(Interpreter&, CallArgs& args) {
    const Value* msg = args.get(0, "message");
    raise(msg != nullptr ? msg->str() : std::string("raise_exception called"));
}

Value builtin_strftime_now(Interpreter& in, CallArgs& args) {
    const Value* fmt = args.get(0, "format");
    if (fmt == nullptr || !fmt->is_string()) {
        raise("strftime_now() expects a format string");
    }
    std::tm tm = in.now();
    if (fmt->as_string().empty()) {
        return Value(std::string());
    }
    // NOTE: strftime gives no way to tell "buffer too small" from "empty result"; grow a few
    // times and give up past 64 KiB.
    for (size_t cap = 256; cap <= 65536; cap *= 4) {
        std::string buf(cap, '\0');
        size_t n = std::strftime(buf.data(), buf.size(), fmt->as_string().c_str(), &tm);
        if (n > 0) {
            buf.resize(n);
            return Value(std::move(buf));
        }
    }
    return Value(std::string());
}

}  // namespace

Value Interpreter::eval_binary(const Expr& e) {
    Value a = eval(*e.children[0]);
    Value b = eval(*e.children[1]);
    line_ = e.line;
    if (e.bin_op == BinOp::kConcat) {
        std::string s = a.str();
        std::string t = b.str();
        check_size(static_cast<int64_t>(s.size() + t.size()));
        return Value(s + t);
    }
    if (a.is_undefined()) {
        undefined_error(a);
    }
    if (b.is_undefined()) {
        undefined_error(b);
    }
    switch (e.bin_op) {
        case BinOp::kAdd:
            if (int_like(a) && int_like(b)) {
                int64_t r = 0;
                if (__builtin_add_overflow(int_of(a), int_of(b), &r)) {
                    overflow();
                }
                return Value(r);
            }
            if (num_like(a) && num_like(b)) {
                return Value(a.to_double() + b.to_double());
            }
            if (a.is_string() && b.is_string()) {
                check_size(static_cast<int64_t>(a.as_string().size() + b.as_string().size()));
                return Value(a.as_string() + b.as_string());
            }
            if (a.is_list() && b.is_list()) {
                const auto& x = a.as_list()->items;
                const auto& y = b.as_list()->items;
                check_size(static_cast<int64_t>(x.size() + y.size()));
                std::vector<Value> items;
                items.reserve(x.size() + y.size());
                items.insert(items.end(), x.begin(), x.end());
                items.insert(items.end(), y.begin(), y.end());
                return a.as_list()->is_tuple ? Value::tuple(std::move(items))
                                             : Value::list(std::move(items));
            }
            unsupported("+", a, b);
        case BinOp::kSub:
            if (int_like(a) && int_like(b)) {
                int64_t r = 0;
                if (__builtin_sub_overflow(int_of(a), int_of(b), &r)) {
                    overflow();
                }
                return Value(r);
            }
            if (num_like(a) && num_like(b)) {
                return Value(a.to_double() - b.to_double());
            }
            unsupported("-", a, b);
        case BinOp::kMul: {
            if (int_like(a) && int_like(b)) {
                int64_t r = 0;
                if (__builtin_mul_overflow(int_of(a), int_of(b), &r)) {
                    overflow();
                }
                return Value(r);
            }
            if (num_like(a) && num_like(b)) {
                return Value(a.to_double() * b.to_double());
            }
            const Value& seq = int_like(a) ? b : a;
            const Value& count = int_like(a) ? a : b;
            if (int_like(count) && (seq.is_string() || seq.is_list())) {
                int64_t n = std::max<int64_t>(0, int_of(count));
                int64_t unit = seq.is_string() ? static_cast<int64_t>(seq.as_string().size())
                                               : static_cast<int64_t>(seq.as_list()->items.size());
                if (unit > 0 && n > limits_.max_output_bytes / unit) {
                    check_size(limits_.max_output_bytes + 1);
                }
                if (seq.is_string()) {
                    std::string r;
                    r.reserve(static_cast<size_t>(unit * n));
                    for (int64_t i = 0; i < n; ++i) {
                        r += seq.as_string();
                    }
                    return Value(std::move(r));
                }
                std::vector<Value> items;
                for (int64_t i = 0; i < n; ++i) {
                    items.insert(items.end(), seq.as_list()->items.begin(),
                                 seq.as_list()->items.end());
                }
                return Value::list(std::move(items));
            }
            unsupported("*", a, b);
        }
        case BinOp::kDiv:
            if (num_like(a) && num_like(b)) {
                if (b.to_double() == 0.0) {
                    raise("division by zero");
                }
                return Value(a.to_double() / b.to_double());
            }
            unsupported("/", a, b);
        case BinOp::kFloorDiv:
            if (int_like(a) && int_like(b)) {
                if (int_of(b) == 0) {
                    raise("integer division or modulo by zero");
                }
                if (int_of(a) == std::numeric_limits<int64_t>::min() && int_of(b) == -1) {
                    overflow();
                }
                int64_t x = int_of(a);
                int64_t y = int_of(b);
                int64_t q = x / y;
                if ((x % y != 0) && ((x < 0) != (y < 0))) {
                    --q;
                }
                return Value(q);
            }
            if (num_like(a) && num_like(b)) {
                if (b.to_double() == 0.0) {
                    raise("float floor division by zero");
                }
                return Value(std::floor(a.to_double() / b.to_double()));
            }
            unsupported("//", a, b);
        case BinOp::kMod:
            if (int_like(a) && int_like(b)) {
                int64_t x = int_of(a);
                int64_t y = int_of(b);
                if (y == 0) {
                    raise("integer division or modulo by zero");
                }
                if (y == -1) {
                    return Value(int64_t{0});
                }
                int64_t r = x % y;
                if (r != 0 && ((r < 0) != (y < 0))) {
                    r += y;
                }
                return Value(r);
            }
            if (num_like(a) && num_like(b)) {
                double y = b.to_double();
                if (y == 0.0) {
                    raise("float modulo");
                }
                double r = std::fmod(a.to_double(), y);
                if (r != 0.0 && ((r < 0) != (y < 0))) {
                    r += y;
                }
                return Value(r);
            }
            unsupported("%", a, b);
        case BinOp::kPow:
            if (int_like(a) && int_like(b) && int_of(b) >= 0) {
                return Value(checked_pow(int_of(a), int_of(b)));
            }
            if (num_like(a) && num_like(b)) {
                if (a.to_double() == 0.0 && b.to_double() < 0) {
                    raise("0.0 cannot be raised to a negative power");
                }
                return Value(std::pow(a.to_double(), b.to_double()));
            }
            unsupported("**", a, b);
        case BinOp::kConcat:
            break;
    }
    return Value::undefined();
}

Value Interpreter::eval_compare(const Expr& e) {
    Value left = eval(*e.children[0]);
    for (size_t i = 0; i < e.cmp_ops.size(); ++i) {
        Value right = eval(*e.children[i + 1]);
        line_ = e.line;
        bool r = false;
        CmpOp op = e.cmp_ops[i];
        switch (op) {
            case CmpOp::kEq:
                r = equals(left, right);
                break;
            case CmpOp::kNe:
                r = !equals(left, right);
                break;
            case CmpOp::kIn:
                r = contains(right, left);
                break;
            case CmpOp::kNotIn:
                r = !contains(right, left);
                break;
            case CmpOp::kLt:
            case CmpOp::kLe:
            case CmpOp::kGt:
            case CmpOp::kGe: {
                if (left.is_undefined()) {
                    undefined_error(left);
                }
                if (right.is_undefined()) {
                    undefined_error(right);
                }
                int c = compare(left, right);
                r = op == CmpOp::kLt   ? c < 0
                    : op == CmpOp::kLe ? c <= 0
                    : op == CmpOp::kGt ? c > 0
                                       : c >= 0;
                break;
            }
        }
        if (!r) {
            return Value(false);
        }
        left = std::move(right);
    }
    return Value(true);
}

Value Interpreter::eval_slice(const Expr& e) {
    Value obj = eval(*e.children[0]);
    Value start = e.children[1] ? eval(*e.children[1]) : Value::none();
    Value stop = e.children[2] ? eval(*e.children[2]) : Value::none();
    Value step_v = e.children[3] ? eval(*e.children[3]) : Value::none();
    line_ = e.line;
    int64_t step = 1;
    if (!step_v.is_none()) {
        if (!int_like(step_v)) {
            raise("slice indices must be integers or None");
        }
        step = int_of(step_v);
        if (step == 0) {
            raise("slice step cannot be zero");
        }
    }
    if (obj.is_undefined()) {
        undefined_error(obj);
    }
    std::vector<std::string> chars;
    const std::vector<Value>* items = nullptr;
    int64_t n = 0;
    if (obj.is_string()) {
        chars = utf8_chars(obj.as_string());
        n = static_cast<int64_t>(chars.size());
    } else if (obj.is_list()) {
        items = &obj.as_list()->items;
        n = static_cast<int64_t>(items->size());
    } else {
        raise("'" + obj.type_name() + "' object is not subscriptable");
    }
    int64_t lo = 0;
    int64_t hi = 0;
    slice_bounds(n, start, stop, step, lo, hi);
    std::string s;
    std::vector<Value> out;
    for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) {
        if (items != nullptr) {
            out.push_back((*items)[static_cast<size_t>(i)]);
        } else {
            s += chars[static_cast<size_t>(i)];
        }
    }
    if (items == nullptr) {
        return Value(std::move(s));
    }
    return obj.as_list()->is_tuple ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

std::optional<Value> lookup_builtin(std::string_view name) {
    static const auto* const kBuiltins = [] {
        auto* m = new std::unordered_map<std::string_view, Value>();
        auto add = [&](std::string_view n, Builtin::Fn fn) {
            m->emplace(n, Value(ObjectPtr(std::make_shared<Builtin>(std::string(n), fn))));
        };
        add("range", builtin_range);
        add("namespace", builtin_namespace);
        add("dict", builtin_dict);
        add("raise_exception", builtin_raise_exception);
        add("strftime_now", builtin_strftime_now);
        return m;
    }();
    auto it = kBuiltins->find(name);
    if (it == kBuiltins->end()) {
        return std::nullopt;
    }
    return it->second;
}

}  // namespace helexa::text::jinja::detail
