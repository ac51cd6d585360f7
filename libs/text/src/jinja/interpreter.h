// Tree-walking renderer for a parsed Program. One Interpreter per render: it owns the output
// buffer, the scope chain and the limit counters; the Program is shared and read-only.
#pragma once

#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "jinja/ast.h"
#include "jinja/value.h"

namespace helexa::text::jinja::detail {

struct RenderLimits {
    int64_t max_output_bytes = 0;
    int64_t max_loop_iterations = 0;
    int32_t max_call_depth = 0;
};

// A scope: variables set here, then the parent's. Frames live on the C++ stack of the
// statement that opened them.
struct Frame {
    std::vector<std::pair<std::string, Value>> vars;
    Frame* parent = nullptr;

    Value* find(std::string_view name);
    void set(const std::string& name, Value value);
};

enum class Flow { kNormal, kBreak, kContinue };

class Interpreter {
public:
    Interpreter(const RenderLimits& limits, std::function<std::tm()> now);

    // Renders `program` with `globals` (a dict) as the render context.
    std::string render(const Program& program, DictPtr globals);

    // Entry points for host objects, filters and methods.
    Value call_value(const Value& callee, CallArgs& args);
    Value call_macro(const Stmt& macro, CallArgs& args, Frame* closure, const Value& caller);
    Value call_caller(const Stmt& call_block, CallArgs& args, Frame* closure);
    Value apply_filter(const std::string& name, Value input, CallArgs& args);
    bool apply_test(const std::string& name, const Value& input, CallArgs& args);
    bool has_test(const std::string& name) const;
    Value get_attr(const Value& obj, std::string_view name);
    Value get_item(const Value& obj, const Value& key);
    std::tm now() const { return now_(); }
    // Checks a value produced by concatenation/repetition against the output limit.
    void check_size(int64_t bytes) const;
    void count_iteration();
    // Items a `for` loop (or list()) would iterate over.
    std::vector<Value> iterate(const Value& v);

    Value eval(const Expr& e);

private:
    Flow exec_body(const Body& body);
    Flow exec(const Stmt& s);
    void exec_for_items(const Stmt& s, const Value& iterable, int depth);
    void exec_set(const Stmt& s, Value value);
    void write(std::string_view text);
    void write_value(const Value& v);
    Value lookup(const std::string& name);
    Value eval_call(const Expr& e);
    Value eval_binary(const Expr& e);
    Value eval_compare(const Expr& e);
    Value eval_slice(const Expr& e);
    CallArgs eval_args(const Expr& e, size_t first_child);
    std::string capture(const Body& body, Frame* frame);

    struct DepthGuard {
        explicit DepthGuard(Interpreter& in);
        ~DepthGuard() { --in_.depth_; }
        DepthGuard(const DepthGuard&) = delete;
        DepthGuard& operator=(const DepthGuard&) = delete;
        Interpreter& in_;
    };

    RenderLimits limits_;
    std::function<std::tm()> now_;
    DictPtr globals_;
    Frame* frame_ = nullptr;
    Frame* top_frame_ = nullptr;
    std::string out_;
    int64_t iterations_ = 0;
    int depth_ = 0;
    int call_depth_ = 0;
    int line_ = 0;  // line of the statement or expression being evaluated, for errors

    friend class LoopObject;
};

// Python-style string/list/dict methods (`s.startswith(x)`, `d.items()`); nullopt when `obj`
// has no method `name`.
std::optional<Value> call_method(Interpreter& in, const Value& obj, std::string_view name,
                                 CallArgs& args);
bool has_method(const Value& obj, std::string_view name);
// Global functions (range, namespace, raise_exception, strftime_now, dict, cycler, joiner).
std::optional<Value> lookup_builtin(std::string_view name);

// Shared helpers for filters and methods.
int64_t to_int_arg(const Value* v, int64_t fallback, const char* what);
std::string python_title(std::string_view s);
std::string python_capitalize(std::string_view s);
std::string to_upper(std::string_view s);
std::string to_lower(std::string_view s);
std::string strip_chars(std::string_view s, const Value* chars, bool left, bool right);
std::vector<std::string> python_split(std::string_view s, const Value* sep, int64_t maxsplit,
                                      bool from_right);
std::string replace_all(std::string_view s, std::string_view from, std::string_view to,
                        int64_t count);
// Code-point based slicing/indexing for strings.
std::vector<std::string> utf8_chars(std::string_view s);

}  // namespace helexa::text::jinja::detail
