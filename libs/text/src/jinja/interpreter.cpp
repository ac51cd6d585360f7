#include "jinja/interpreter.h"

#include <cmath>
#include <limits>

namespace helexa::text::jinja::detail {
namespace {

// Hard cap on evaluator recursion (expressions, statements and calls combined), independent of
// the user-visible call-depth limit, so the C++ stack stays bounded.
constexpr int kMaxEvalDepth = 3000;

const std::vector<Value> kEmptyItems{};

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

// A user macro bound to the frame it was defined in.
class MacroObject : public Object {
public:
    MacroObject(const Stmt* def, Frame* closure) : def_(def), closure_(closure) {}
    std::string type_name() const override { return "Macro"; }
    bool callable() const override { return true; }
    Value call(Interpreter& in, CallArgs& args) override {
        Value caller;
        for (auto it = args.keyword.begin(); it != args.keyword.end(); ++it) {
            if (it->first == "caller") {
                caller = it->second;
                args.keyword.erase(it);
                break;
            }
        }
        return in.call_macro(*def_, args, closure_, caller);
    }
    std::string repr() const override { return "<Macro '" + def_->targets[0] + "'>"; }

private:
    const Stmt* def_;
    Frame* closure_;
};

// The body of a `{% call %}` block, invoked as caller() from the macro.
class CallerObject : public Object {
public:
    CallerObject(const Stmt* block, Frame* closure) : block_(block), closure_(closure) {}
    std::string type_name() const override { return "Macro"; }
    bool callable() const override { return true; }
    Value call(Interpreter& in, CallArgs& args) override {
        return in.call_caller(*block_, args, closure_);
    }

private:
    const Stmt* block_;
    Frame* closure_;
};

}  // namespace

// The `loop` variable inside for loops.
class LoopObject : public Object {
public:
    std::string type_name() const override { return "LoopContext"; }
    bool callable() const override { return stmt != nullptr && stmt->recursive; }

    Value get_attr(std::string_view name) const override {
        int64_t n = static_cast<int64_t>(items->size());
        if (name == "index") {
            return Value(index0 + 1);
        }
        if (name == "index0") {
            return Value(index0);
        }
        if (name == "revindex") {
            return Value(n - index0);
        }
        if (name == "revindex0") {
            return Value(n - index0 - 1);
        }
        if (name == "first") {
            return Value(index0 == 0);
        }
        if (name == "last") {
            return Value(index0 == n - 1);
        }
        if (name == "length") {
            return Value(n);
        }
        if (name == "depth") {
            return Value(depth + 1);
        }
        if (name == "depth0") {
            return Value(depth);
        }
        if (name == "previtem") {
            if (index0 > 0) {
                return (*items)[static_cast<size_t>(index0 - 1)];
            }
            return Value::undefined("previtem");
        }
        if (name == "nextitem") {
            if (index0 + 1 < n) {
                return (*items)[static_cast<size_t>(index0 + 1)];
            }
            return Value::undefined("nextitem");
        }
        return Value::undefined(std::string(name));
    }

    bool call_method(Interpreter&, std::string_view name, CallArgs& args,
                     Value& result) override {
        if (name == "cycle") {
            if (args.positional.empty()) {
                raise("no items for cycling given");
            }
            result = args.positional[static_cast<size_t>(index0) % args.positional.size()];
            return true;
        }
        if (name == "changed") {
            Value key = Value::list(args.positional);
            bool changed = !has_last || !equals(key, last_changed);
            last_changed = key;
            has_last = true;
            result = Value(changed);
            return true;
        }
        return false;
    }

    Value call(Interpreter& in, CallArgs& args) override {
        if (!callable()) {
            raise("loop is not callable (add 'recursive' to the for tag)");
        }
        if (args.positional.size() != 1) {
            raise("loop() takes exactly one argument");
        }
        Frame* saved = in.frame_;
        in.frame_ = frame;
        std::string saved_out;
        std::swap(saved_out, in.out_);
        Value iterable = args.positional[0];
        try {
            in.exec_for_items(*stmt, iterable, depth + 1);
        } catch (...) {
            std::swap(saved_out, in.out_);
            in.frame_ = saved;
            throw;
        }
        std::swap(saved_out, in.out_);
        in.frame_ = saved;
        return Value(std::move(saved_out));
    }

    const std::vector<Value>* items = nullptr;
    int64_t index0 = 0;
    int depth = 0;
    const Stmt* stmt = nullptr;
    Frame* frame = nullptr;  // frame enclosing the loop, for recursive calls
    Value last_changed;
    bool has_last = false;
};

Value* Frame::find(std::string_view name) {
    for (auto& kv : vars) {
        if (kv.first == name) {
            return &kv.second;
        }
    }
    return nullptr;
}

void Frame::set(const std::string& name, Value value) {
    if (Value* v = find(name)) {
        *v = std::move(value);
        return;
    }
    vars.emplace_back(name, std::move(value));
}

Interpreter::DepthGuard::DepthGuard(Interpreter& in) : in_(in) {
    if (++in_.depth_ > kMaxEvalDepth) {
        raise("maximum recursion depth exceeded");
    }
}

Interpreter::Interpreter(const RenderLimits& limits, std::function<std::tm()> now)
    : limits_(limits), now_(std::move(now)) {}

std::string Interpreter::render(const Program& program, DictPtr globals) {
    globals_ = std::move(globals);
    Frame top;
    frame_ = &top;
    top_frame_ = &top;
    try {
        exec_body(program.body);
    } catch (TemplateError& e) {
        if (e.line == 0) {
            e.line = line_;
        }
        throw;
    }
    return std::move(out_);
}

void Interpreter::check_size(int64_t bytes) const {
    if (bytes > limits_.max_output_bytes) {
        raise("output size limit exceeded (" + std::to_string(limits_.max_output_bytes) +
              " bytes)");
    }
}

void Interpreter::count_iteration() {
    if (++iterations_ > limits_.max_loop_iterations) {
        raise("loop iteration limit exceeded (" + std::to_string(limits_.max_loop_iterations) +
              " iterations)");
    }
}

void Interpreter::write(std::string_view text) {
    check_size(static_cast<int64_t>(out_.size() + text.size()));
    out_.append(text);
}

void Interpreter::write_value(const Value& v) {
    if (v.is_string()) {
        write(v.as_string());
        return;
    }
    write(v.str());
}

Flow Interpreter::exec_body(const Body& body) {
    for (const auto& s : body) {
        Flow f = exec(*s);
        if (f != Flow::kNormal) {
            return f;
        }
    }
    return Flow::kNormal;
}

std::string Interpreter::capture(const Body& body, Frame* frame) {
    Frame* saved_frame = frame_;
    frame_ = frame;
    std::string saved;
    std::swap(saved, out_);
    try {
        exec_body(body);
    } catch (...) {
        std::swap(saved, out_);
        frame_ = saved_frame;
        throw;
    }
    std::swap(saved, out_);
    frame_ = saved_frame;
    return saved;
}

Flow Interpreter::exec(const Stmt& s) {
    DepthGuard guard(*this);
    line_ = s.line;
    switch (s.kind) {
        case StmtKind::kText:
            write(s.text);
            return Flow::kNormal;
        case StmtKind::kOutput:
            write_value(eval(*s.expr));
            return Flow::kNormal;
        case StmtKind::kIf:
            for (size_t i = 0; i < s.conditions.size(); ++i) {
                if (eval(*s.conditions[i]).truthy()) {
                    return exec_body(s.bodies[i]);
                }
            }
            return exec_body(s.else_body);
        case StmtKind::kFor:
            exec_for_items(s, eval(*s.expr), 0);
            return Flow::kNormal;
        case StmtKind::kSet:
            exec_set(s, eval(*s.expr));
            return Flow::kNormal;
        case StmtKind::kSetBlock: {
            Frame inner;
            inner.parent = frame_;
            Value v(capture(s.body, &inner));
            if (s.filter) {
                // The filter chain was parsed with a null input at its innermost node.
                const Expr* f = s.filter.get();
                std::vector<const Expr*> chain;
                while (f != nullptr) {
                    chain.push_back(f);
                    f = f->children[0].get();
                }
                for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
                    CallArgs args = eval_args(**it, 1);
                    v = apply_filter((*it)->name, std::move(v), args);
                }
            }
            frame_->set(s.targets[0], std::move(v));
            return Flow::kNormal;
        }
        case StmtKind::kMacro:
            frame_->set(s.targets[0], Value(ObjectPtr(std::make_shared<MacroObject>(&s, frame_))));
            return Flow::kNormal;
        case StmtKind::kCallBlock: {
            const Expr& call = *s.expr;
            Value callee = eval(*call.children[0]);
            CallArgs args = eval_args(call, 1);
            args.keyword.emplace_back(
                "caller", Value(ObjectPtr(std::make_shared<CallerObject>(&s, frame_))));
            write_value(call_value(callee, args));
            return Flow::kNormal;
        }
        case StmtKind::kFilterBlock: {
            Frame inner;
            inner.parent = frame_;
            Value v(capture(s.body, &inner));
            const Expr* f = s.filter.get();
            std::vector<const Expr*> chain;
            while (f != nullptr) {
                chain.push_back(f);
                f = f->children[0].get();
            }
            for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
                CallArgs args = eval_args(**it, 1);
                v = apply_filter((*it)->name, std::move(v), args);
            }
            write_value(v);
            return Flow::kNormal;
        }
        case StmtKind::kBreak:
            return Flow::kBreak;
        case StmtKind::kContinue:
            return Flow::kContinue;
        case StmtKind::kWith: {
            Frame inner;
            inner.parent = frame_;
            for (const auto& [name, expr] : s.assignments) {
                inner.set(name, eval(*expr));
            }
            Frame* saved = frame_;
            frame_ = &inner;
            Flow f = Flow::kNormal;
            try {
                f = exec_body(s.body);
            } catch (...) {
                frame_ = saved;
                throw;
            }
            frame_ = saved;
            return f;
        }
        case StmtKind::kScope:
            return exec_body(s.body);
    }
    return Flow::kNormal;
}

void Interpreter::exec_set(const Stmt& s, Value value) {
    if (!s.attr.empty()) {
        Value target = lookup(s.targets[0]);
        if (!target.is_dict() || !target.as_dict()->is_namespace) {
            raise("cannot assign attribute on non-namespace object '" + s.targets[0] + "'");
        }
        target.as_dict()->set(s.attr, std::move(value));
        return;
    }
    if (s.targets.size() == 1) {
        frame_->set(s.targets[0], std::move(value));
        return;
    }
    std::vector<Value> items = iterate(value);
    if (items.size() != s.targets.size()) {
        raise("cannot unpack " + std::to_string(items.size()) + " values into " +
              std::to_string(s.targets.size()) + " names");
    }
    for (size_t i = 0; i < items.size(); ++i) {
        frame_->set(s.targets[i], std::move(items[i]));
    }
}

std::vector<Value> Interpreter::iterate(const Value& v) {
    if (v.is_list()) {
        return v.as_list()->items;
    }
    if (v.is_dict()) {
        std::vector<Value> keys;
        keys.reserve(v.as_dict()->items.size());
        for (const auto& kv : v.as_dict()->items) {
            keys.emplace_back(kv.first);
        }
        return keys;
    }
    if (v.is_string()) {
        std::vector<Value> chars;
        for (auto& c : utf8_chars(v.as_string())) {
            chars.emplace_back(std::move(c));
        }
        return chars;
    }
    if (v.is_undefined()) {
        return {};
    }
    raise("'" + v.type_name() + "' object is not iterable");
}

void Interpreter::exec_for_items(const Stmt& s, const Value& iterable, int depth) {
    std::vector<Value> source = iterate(iterable);
    Frame loop_frame;
    loop_frame.parent = frame_;
    Frame* saved = frame_;
    frame_ = &loop_frame;
    auto bind = [&](const Value& item) {
        if (s.targets.size() == 1) {
            loop_frame.set(s.targets[0], item);
            return;
        }
        std::vector<Value> parts = iterate(item);
        if (parts.size() != s.targets.size()) {
            raise("cannot unpack " + std::to_string(parts.size()) + " values into " +
                  std::to_string(s.targets.size()) + " loop variables");
        }
        for (size_t i = 0; i < parts.size(); ++i) {
            loop_frame.set(s.targets[i], parts[i]);
        }
    };
    try {
        std::vector<Value> items;
        if (s.filter) {
            for (const auto& item : source) {
                count_iteration();
                bind(item);
                if (eval(*s.filter).truthy()) {
                    items.push_back(item);
                }
            }
        } else {
            items = std::move(source);
        }
        auto loop = std::make_shared<LoopObject>();
        loop->items = &items;
        loop->depth = depth;
        loop->stmt = &s;
        loop->frame = saved;
        Value loop_value{ObjectPtr(loop)};
        for (size_t i = 0; i < items.size(); ++i) {
            count_iteration();
            loop->index0 = static_cast<int64_t>(i);
            bind(items[i]);
            loop_frame.set("loop", loop_value);
            if (exec_body(s.body) == Flow::kBreak) {
                break;
            }
        }
        // The loop object must not outlive `items` if a template stored it somewhere.
        loop->items = &kEmptyItems;
        if (items.empty()) {
            frame_ = saved;
            exec_body(s.else_body);
        }
    } catch (...) {
        frame_ = saved;
        throw;
    }
    frame_ = saved;
}

Value Interpreter::call_macro(const Stmt& macro, CallArgs& args, Frame* closure,
                              const Value& caller) {
    if (++call_depth_ > limits_.max_call_depth) {
        --call_depth_;
        raise("maximum macro call depth exceeded (" + std::to_string(limits_.max_call_depth) +
              ")");
    }
    Frame frame;
    frame.parent = closure;
    const auto& params = macro.params;
    if (args.positional.size() > params.size()) {
        --call_depth_;
        raise("macro '" + macro.targets[0] + "' takes not more than " +
              std::to_string(params.size()) + " argument(s)");
    }
    std::vector<Value> varargs;
    for (size_t i = 0; i < params.size(); ++i) {
        const Value* v = args.get(i, params[i].name);
        if (v != nullptr) {
            frame.set(params[i].name, *v);
        } else if (params[i].default_value) {
            Frame* saved = frame_;
            frame_ = &frame;
            Value d = eval(*params[i].default_value);
            frame_ = saved;
            frame.set(params[i].name, std::move(d));
        } else {
            frame.set(params[i].name, Value::undefined(params[i].name));
        }
    }
    auto kwargs = Value::dict();
    for (const auto& [k, v] : args.keyword) {
        bool known = false;
        for (const auto& p : params) {
            known = known || p.name == k;
        }
        if (!known) {
            kwargs.as_dict()->set(k, v);
        }
    }
    frame.set("kwargs", kwargs);
    frame.set("varargs", Value::list());
    if (!caller.is_undefined()) {
        frame.set("caller", caller);
    }
    std::string out;
    try {
        out = capture(macro.body, &frame);
    } catch (...) {
        --call_depth_;
        throw;
    }
    --call_depth_;
    return Value(std::move(out));
}

Value Interpreter::call_caller(const Stmt& call_block, CallArgs& args, Frame* closure) {
    if (++call_depth_ > limits_.max_call_depth) {
        --call_depth_;
        raise("maximum macro call depth exceeded");
    }
    Frame frame;
    frame.parent = closure;
    for (size_t i = 0; i < call_block.params.size(); ++i) {
        const auto& p = call_block.params[i];
        const Value* v = args.get(i, p.name);
        if (v != nullptr) {
            frame.set(p.name, *v);
        } else if (p.default_value) {
            frame.set(p.name, eval(*p.default_value));
        } else {
            frame.set(p.name, Value::undefined(p.name));
        }
    }
    std::string out;
    try {
        out = capture(call_block.body, &frame);
    } catch (...) {
        --call_depth_;
        throw;
    }
    --call_depth_;
    return Value(std::move(out));
}

Value Interpreter::lookup(const std::string& name) {
    for (Frame* f = frame_; f != nullptr; f = f->parent) {
        if (Value* v = f->find(name)) {
            return *v;
        }
    }
    if (const Value* v = globals_->find(name)) {
        return *v;
    }
    if (auto b = lookup_builtin(name)) {
        return *b;
    }
    return Value::undefined(name);
}

Value Interpreter::get_attr(const Value& obj, std::string_view name) {
    if (obj.is_dict()) {
        const auto& d = *obj.as_dict();
        if (!d.is_namespace && has_method(obj, name)) {
            return Value::undefined(std::string(name));  // bound methods only via calls
        }
        if (const Value* v = d.find(name)) {
            return *v;
        }
        return Value::undefined(std::string(name));
    }
    if (obj.is_object()) {
        return obj.as_object()->get_attr(name);
    }
    if (obj.is_undefined()) {
        undefined_error(obj);
    }
    return Value::undefined(std::string(name));
}

Value Interpreter::get_item(const Value& obj, const Value& key) {
    if (obj.is_dict()) {
        if (key.is_string()) {
            if (const Value* v = obj.as_dict()->find(key.as_string())) {
                return *v;
            }
            return Value::undefined(key.as_string());
        }
        return Value::undefined(key.str());
    }
    if ((obj.is_list() || obj.is_string()) && int_like(key)) {
        int64_t i = int_of(key);
        if (obj.is_list()) {
            const auto& items = obj.as_list()->items;
            int64_t n = static_cast<int64_t>(items.size());
            if (i < 0) {
                i += n;
            }
            if (i < 0 || i >= n) {
                return Value::undefined("[" + std::to_string(int_of(key)) + "]");
            }
            return items[static_cast<size_t>(i)];
        }
        auto chars = utf8_chars(obj.as_string());
        int64_t n = static_cast<int64_t>(chars.size());
        if (i < 0) {
            i += n;
        }
        if (i < 0 || i >= n) {
            return Value::undefined("[" + std::to_string(int_of(key)) + "]");
        }
        return Value(chars[static_cast<size_t>(i)]);
    }
    if (obj.is_undefined()) {
        undefined_error(obj);
    }
    if (obj.is_object() && key.is_string()) {
        return obj.as_object()->get_attr(key.as_string());
    }
    return Value::undefined(key.str());
}

CallArgs Interpreter::eval_args(const Expr& e, size_t first_child) {
    CallArgs args;
    args.positional.reserve(e.children.size() - first_child);
    for (size_t i = first_child; i < e.children.size(); ++i) {
        args.positional.push_back(eval(*e.children[i]));
    }
    for (const auto& [k, v] : e.kwargs) {
        args.keyword.emplace_back(k, eval(*v));
    }
    return args;
}

Value Interpreter::call_value(const Value& callee, CallArgs& args) {
    if (callee.is_object()) {
        return callee.as_object()->call(*this, args);
    }
    if (callee.is_undefined()) {
        undefined_error(callee);
    }
    raise(cat({"'", callee.type_name(), "' object is not callable"}));
}

Value Interpreter::eval_call(const Expr& e) {
    const Expr& callee = *e.children[0];
    if (callee.kind == ExprKind::kGetAttr) {
        Value obj = eval(*callee.children[0]);
        line_ = e.line;
        CallArgs args = eval_args(e, 1);
        if (obj.is_object()) {
            Value result;
            if (obj.as_object()->call_method(*this, callee.name, args, result)) {
                return result;
            }
        } else if (auto r = call_method(*this, obj, callee.name, args)) {
            return std::move(*r);
        }
        if (obj.is_undefined()) {
            undefined_error(obj);
        }
        Value fn = get_attr(obj, callee.name);
        if (fn.is_undefined()) {
            raise("'" + obj.type_name() + "' object has no attribute '" + callee.name + "'");
        }
        return call_value(fn, args);
    }
    Value fn = eval(callee);
    line_ = e.line;
    CallArgs args = eval_args(e, 1);
    return call_value(fn, args);
}

Value Interpreter::eval(const Expr& e) {
    DepthGuard guard(*this);
    line_ = e.line;
    switch (e.kind) {
        case ExprKind::kLiteral:
            return e.literal;
        case ExprKind::kName:
            return lookup(e.name);
        case ExprKind::kList:
        case ExprKind::kTuple: {
            std::vector<Value> items;
            items.reserve(e.children.size());
            for (const auto& c : e.children) {
                items.push_back(eval(*c));
            }
            return e.kind == ExprKind::kList ? Value::list(std::move(items))
                                             : Value::tuple(std::move(items));
        }
        case ExprKind::kDict: {
            Value d = Value::dict();
            for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
                Value k = eval(*e.children[i]);
                if (!k.is_string()) {
                    raise("dict keys must be strings, got " + k.type_name());
                }
                d.as_dict()->set(k.as_string(), eval(*e.children[i + 1]));
            }
            return d;
        }
        case ExprKind::kGetAttr:
            return get_attr(eval(*e.children[0]), e.name);
        case ExprKind::kGetItem: {
            Value obj = eval(*e.children[0]);
            Value key = eval(*e.children[1]);
            return get_item(obj, key);
        }
        case ExprKind::kSlice:
            return eval_slice(e);
        case ExprKind::kCall:
            return eval_call(e);
        case ExprKind::kFilter: {
            Value input = eval(*e.children[0]);
            CallArgs args = eval_args(e, 1);
            line_ = e.line;
            return apply_filter(e.name, std::move(input), args);
        }
        case ExprKind::kTest: {
            Value input = eval(*e.children[0]);
            CallArgs args = eval_args(e, 1);
            line_ = e.line;
            bool r = apply_test(e.name, input, args);
            return Value(e.negated ? !r : r);
        }
        case ExprKind::kNot:
            return Value(!eval(*e.children[0]).truthy());
        case ExprKind::kNeg:
        case ExprKind::kPos: {
            Value v = eval(*e.children[0]);
            if (v.is_undefined()) {
                undefined_error(v);
            }
            if (int_like(v)) {
                int64_t i = int_of(v);
                if (e.kind == ExprKind::kNeg && i == std::numeric_limits<int64_t>::min()) {
                    raise("integer overflow");
                }
                return Value(e.kind == ExprKind::kNeg ? -i : i);
            }
            if (v.is_float()) {
                return Value(e.kind == ExprKind::kNeg ? -v.as_float() : v.as_float());
            }
            raise("bad operand type for unary " + std::string(e.kind == ExprKind::kNeg ? "-" : "+") +
                  ": '" + v.type_name() + "'");
        }
        case ExprKind::kAnd: {
            Value l = eval(*e.children[0]);
            return l.truthy() ? eval(*e.children[1]) : l;
        }
        case ExprKind::kOr: {
            Value l = eval(*e.children[0]);
            return l.truthy() ? l : eval(*e.children[1]);
        }
        case ExprKind::kBinary:
            return eval_binary(e);
        case ExprKind::kCompare:
            return eval_compare(e);
        case ExprKind::kCondExpr:
            if (eval(*e.children[1]).truthy()) {
                return eval(*e.children[0]);
            }
            if (e.children[2]) {
                return eval(*e.children[2]);
            }
            return Value::undefined();
    }
    return Value::undefined();
}

}  // namespace helexa::text::jinja::detail
