#include "jinja/parser.h"

#include <initializer_list>

#include "jinja/lexer.h"

namespace helexa::text::jinja::detail {
namespace {

// Deep enough for any real template; shallow enough that the recursive parser and evaluator
// stay far from the stack limit (also under ASan).
constexpr int kMaxNesting = 128;

class Parser {
public:
    explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

    std::unique_ptr<Program> run() {
        auto program = std::make_unique<Program>();
        std::string end_tag;
        program->body = parse_body({}, end_tag);
        return program;
    }

private:
    // --- token helpers -------------------------------------------------------------------
    const Token& cur() const { return toks_[pos_]; }
    const Token& peek(size_t n = 1) const {
        return toks_[pos_ + n < toks_.size() ? pos_ + n : toks_.size() - 1];
    }
    void advance() {
        if (pos_ + 1 < toks_.size()) {
            ++pos_;
        }
    }
    bool is_op(std::string_view op) const {
        return cur().type == TokenType::kOp && cur().text == op;
    }
    bool is_name(std::string_view name) const {
        return cur().type == TokenType::kName && cur().text == name;
    }
    bool skip_op(std::string_view op) {
        if (is_op(op)) {
            advance();
            return true;
        }
        return false;
    }
    bool skip_name(std::string_view name) {
        if (is_name(name)) {
            advance();
            return true;
        }
        return false;
    }
    [[noreturn]] void fail(const std::string& msg) const { throw TemplateError{msg, cur().line}; }
    static std::string describe(const Token& t) {
        switch (t.type) {
            case TokenType::kText:
                return "template data";
            case TokenType::kVarBegin:
                return "'{{'";
            case TokenType::kVarEnd:
                return "end of print statement";
            case TokenType::kBlockBegin:
                return "'{%'";
            case TokenType::kBlockEnd:
                return "end of statement block";
            case TokenType::kName:
                return "'" + t.text + "'";
            case TokenType::kString:
                return "string";
            case TokenType::kInt:
            case TokenType::kFloat:
                return "number";
            case TokenType::kOp:
                return "'" + t.text + "'";
            case TokenType::kEof:
                return "end of template";
        }
        return "token";
    }
    void expect_op(std::string_view op) {
        if (!skip_op(op)) {
            fail("expected '" + std::string(op) + "', got " + describe(cur()));
        }
    }
    std::string expect_name() {
        if (cur().type != TokenType::kName) {
            fail("expected a name, got " + describe(cur()));
        }
        std::string n = cur().text;
        advance();
        return n;
    }
    void expect_block_end() {
        if (cur().type != TokenType::kBlockEnd) {
            fail("expected end of statement block, got " + describe(cur()));
        }
        advance();
    }

    struct DepthGuard {
        explicit DepthGuard(Parser& p) : p_(p) {
            if (++p_.depth_ > kMaxNesting) {
                p_.fail("template nested too deeply (limit " + std::to_string(kMaxNesting) + ")");
            }
        }
        ~DepthGuard() { --p_.depth_; }
        DepthGuard(const DepthGuard&) = delete;
        DepthGuard& operator=(const DepthGuard&) = delete;
        Parser& p_;
    };

    ExprPtr make(ExprKind kind, int line) {
        auto e = std::make_unique<Expr>();
        e->kind = kind;
        e->line = line;
        return e;
    }

    // --- statements ----------------------------------------------------------------------
    // Parses until a block tag whose name is in `ends`; leaves the parser after that name
    // (before the rest of the tag) and reports which end tag closed the body.
    Body parse_body(std::initializer_list<std::string_view> ends, std::string& end_tag) {
        DepthGuard guard(*this);
        Body body;
        while (true) {
            const Token& t = cur();
            if (t.type == TokenType::kEof) {
                if (ends.size() != 0) {
                    std::string expected;
                    for (auto e : ends) {
                        expected += (expected.empty() ? "'" : " or '") + std::string(e) + "'";
                    }
                    fail("unexpected end of template, expected " + expected);
                }
                return body;
            }
            if (t.type == TokenType::kText) {
                auto s = std::make_unique<Stmt>();
                s->kind = StmtKind::kText;
                s->line = t.line;
                s->text = t.text;
                body.push_back(std::move(s));
                advance();
            } else if (t.type == TokenType::kVarBegin) {
                auto s = std::make_unique<Stmt>();
                s->kind = StmtKind::kOutput;
                s->line = t.line;
                advance();
                s->expr = parse_tuple_expr(true);
                if (cur().type != TokenType::kVarEnd) {
                    fail("expected end of print statement, got " + describe(cur()));
                }
                advance();
                body.push_back(std::move(s));
            } else if (t.type == TokenType::kBlockBegin) {
                advance();
                if (cur().type != TokenType::kName) {
                    fail("expected a tag name, got " + describe(cur()));
                }
                for (auto e : ends) {
                    if (cur().text == e) {
                        end_tag = cur().text;
                        advance();
                        return body;
                    }
                }
                body.push_back(parse_statement());
            } else {
                fail("unexpected " + describe(t));
            }
        }
    }

    StmtPtr parse_statement() {
        const std::string tag = cur().text;
        int line = cur().line;
        auto s = std::make_unique<Stmt>();
        s->line = line;
        advance();
        std::string end;
        if (tag == "if") {
            s->kind = StmtKind::kIf;
            s->conditions.push_back(parse_tuple_expr(true));
            expect_block_end();
            while (true) {
                s->bodies.push_back(parse_body({"elif", "else", "endif"}, end));
                if (end == "elif") {
                    s->conditions.push_back(parse_tuple_expr(true));
                    expect_block_end();
                } else if (end == "else") {
                    expect_block_end();
                    s->else_body = parse_body({"endif"}, end);
                    expect_block_end();
                    break;
                } else {
                    expect_block_end();
                    break;
                }
            }
        } else if (tag == "for") {
            s->kind = StmtKind::kFor;
            bool paren = skip_op("(");
            do {
                s->targets.push_back(expect_name());
            } while (skip_op(","));
            if (paren) {
                expect_op(")");
            }
            if (!skip_name("in")) {
                fail("expected 'in' in for loop, got " + describe(cur()));
            }
            s->expr = parse_tuple_expr(false);
            if (skip_name("if")) {
                s->filter = parse_tuple_expr(true);
            }
            if (skip_name("recursive")) {
                s->recursive = true;
            }
            expect_block_end();
            s->body = parse_body({"else", "endfor"}, end);
            expect_block_end();
            if (end == "else") {
                s->else_body = parse_body({"endfor"}, end);
                expect_block_end();
            }
        } else if (tag == "set") {
            std::string first = expect_name();
            if (skip_op(".")) {
                s->targets.push_back(first);
                s->attr = expect_name();
            } else {
                s->targets.push_back(first);
                while (skip_op(",")) {
                    s->targets.push_back(expect_name());
                }
            }
            if (skip_op("=")) {
                s->kind = StmtKind::kSet;
                s->expr = parse_tuple_expr(true);
                expect_block_end();
            } else {
                if (!s->attr.empty() || s->targets.size() != 1) {
                    fail("block set needs a single name");
                }
                s->kind = StmtKind::kSetBlock;
                if (is_op("|")) {
                    s->filter = parse_filter_chain(nullptr);
                }
                expect_block_end();
                s->body = parse_body({"endset"}, end);
                expect_block_end();
            }
        } else if (tag == "macro") {
            s->kind = StmtKind::kMacro;
            s->targets.push_back(expect_name());
            parse_params(s->params);
            expect_block_end();
            s->body = parse_body({"endmacro"}, end);
            skip_name(s->targets[0]);
            expect_block_end();
        } else if (tag == "call") {
            s->kind = StmtKind::kCallBlock;
            if (is_op("(")) {
                parse_params(s->params);
            }
            s->expr = parse_unary(true);
            if (s->expr->kind != ExprKind::kCall) {
                fail("expected a call in call block");
            }
            expect_block_end();
            s->body = parse_body({"endcall"}, end);
            expect_block_end();
        } else if (tag == "filter") {
            s->kind = StmtKind::kFilterBlock;
            s->filter = parse_filter_chain(nullptr, false);
            expect_block_end();
            s->body = parse_body({"endfilter"}, end);
            expect_block_end();
        } else if (tag == "break" || tag == "continue") {
            s->kind = tag == "break" ? StmtKind::kBreak : StmtKind::kContinue;
            expect_block_end();
        } else if (tag == "with") {
            s->kind = StmtKind::kWith;
            while (cur().type != TokenType::kBlockEnd) {
                if (!s->assignments.empty()) {
                    expect_op(",");
                }
                std::string n = expect_name();
                expect_op("=");
                s->assignments.emplace_back(n, parse_tuple_expr(true));
            }
            expect_block_end();
            s->body = parse_body({"endwith"}, end);
            expect_block_end();
        } else if (tag == "generation") {
            // transformers' AssistantTracker extension: renders its body unchanged.
            s->kind = StmtKind::kScope;
            expect_block_end();
            s->body = parse_body({"endgeneration"}, end);
            expect_block_end();
        } else if (tag == "block") {
            s->kind = StmtKind::kScope;
            expect_name();
            skip_name("scoped");
            expect_block_end();
            s->body = parse_body({"endblock"}, end);
            if (cur().type == TokenType::kName) {
                advance();
            }
            expect_block_end();
        } else {
            throw TemplateError{"unknown or unsupported tag '" + tag + "'", line};
        }
        return s;
    }

    void parse_params(std::vector<MacroParam>& params) {
        expect_op("(");
        while (!is_op(")")) {
            if (!params.empty()) {
                expect_op(",");
                if (is_op(")")) {
                    break;
                }
            }
            MacroParam p;
            p.name = expect_name();
            if (skip_op("=")) {
                p.default_value = parse_expression(true);
            } else if (!params.empty() && params.back().default_value) {
                fail("non-default argument follows default argument");
            }
            params.push_back(std::move(p));
        }
        expect_op(")");
    }

    // --- expressions ---------------------------------------------------------------------
    // An expression, or a bare tuple `a, b` where jinja allows one.
    ExprPtr parse_tuple_expr(bool with_condexpr) {
        int line = cur().line;
        ExprPtr first = parse_expression(with_condexpr);
        if (!is_op(",")) {
            return first;
        }
        auto t = make(ExprKind::kTuple, line);
        t->children.push_back(std::move(first));
        while (skip_op(",")) {
            if (cur().type == TokenType::kBlockEnd || cur().type == TokenType::kVarEnd ||
                is_name("if")) {
                break;
            }
            t->children.push_back(parse_expression(with_condexpr));
        }
        return t;
    }

    ExprPtr parse_expression(bool with_condexpr = true) {
        DepthGuard guard(*this);
        if (!with_condexpr) {
            return parse_or();
        }
        ExprPtr expr = parse_or();
        while (is_name("if")) {
            int line = cur().line;
            advance();
            auto c = make(ExprKind::kCondExpr, line);
            ExprPtr cond = parse_or();
            ExprPtr other;
            if (skip_name("else")) {
                other = parse_expression(true);
            }
            c->children.push_back(std::move(expr));
            c->children.push_back(std::move(cond));
            c->children.push_back(std::move(other));
            expr = std::move(c);
        }
        return expr;
    }

    ExprPtr parse_or() {
        ExprPtr left = parse_and();
        while (is_name("or")) {
            auto e = make(ExprKind::kOr, cur().line);
            advance();
            e->children.push_back(std::move(left));
            e->children.push_back(parse_and());
            left = std::move(e);
        }
        return left;
    }

    ExprPtr parse_and() {
        ExprPtr left = parse_not();
        while (is_name("and")) {
            auto e = make(ExprKind::kAnd, cur().line);
            advance();
            e->children.push_back(std::move(left));
            e->children.push_back(parse_not());
            left = std::move(e);
        }
        return left;
    }

    ExprPtr parse_not() {
        if (is_name("not")) {
            DepthGuard guard(*this);
            auto e = make(ExprKind::kNot, cur().line);
            advance();
            e->children.push_back(parse_not());
            return e;
        }
        return parse_compare();
    }

    ExprPtr parse_compare() {
        int line = cur().line;
        ExprPtr first = parse_math1();
        ExprPtr cmp;
        while (true) {
            CmpOp op;
            if (is_op("==")) {
                op = CmpOp::kEq;
            } else if (is_op("!=")) {
                op = CmpOp::kNe;
            } else if (is_op("<")) {
                op = CmpOp::kLt;
            } else if (is_op("<=")) {
                op = CmpOp::kLe;
            } else if (is_op(">")) {
                op = CmpOp::kGt;
            } else if (is_op(">=")) {
                op = CmpOp::kGe;
            } else if (is_name("in")) {
                op = CmpOp::kIn;
            } else if (is_name("not") && peek().type == TokenType::kName && peek().text == "in") {
                op = CmpOp::kNotIn;
                advance();
            } else {
                break;
            }
            advance();
            if (!cmp) {
                cmp = make(ExprKind::kCompare, line);
                cmp->children.push_back(std::move(first));
            }
            cmp->cmp_ops.push_back(op);
            cmp->children.push_back(parse_math1());
        }
        return cmp ? std::move(cmp) : std::move(first);
    }

    ExprPtr binary(BinOp op, ExprPtr left, ExprPtr right, int line) {
        auto e = make(ExprKind::kBinary, line);
        e->bin_op = op;
        e->children.push_back(std::move(left));
        e->children.push_back(std::move(right));
        return e;
    }

    ExprPtr parse_math1() {
        ExprPtr left = parse_concat();
        while (is_op("+") || is_op("-")) {
            BinOp op = is_op("+") ? BinOp::kAdd : BinOp::kSub;
            int line = cur().line;
            advance();
            left = binary(op, std::move(left), parse_concat(), line);
        }
        return left;
    }

    ExprPtr parse_concat() {
        ExprPtr left = parse_math2();
        while (is_op("~")) {
            int line = cur().line;
            advance();
            left = binary(BinOp::kConcat, std::move(left), parse_math2(), line);
        }
        return left;
    }

    ExprPtr parse_math2() {
        ExprPtr left = parse_pow();
        while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
            BinOp op = is_op("*")    ? BinOp::kMul
                       : is_op("/")  ? BinOp::kDiv
                       : is_op("//") ? BinOp::kFloorDiv
                                     : BinOp::kMod;
            int line = cur().line;
            advance();
            left = binary(op, std::move(left), parse_pow(), line);
        }
        return left;
    }

    ExprPtr parse_pow() {
        ExprPtr left = parse_unary(true);
        while (is_op("**")) {
            int line = cur().line;
            advance();
            left = binary(BinOp::kPow, std::move(left), parse_unary(true), line);
        }
        return left;
    }

    ExprPtr parse_unary(bool with_filter) {
        DepthGuard guard(*this);
        ExprPtr node;
        if (is_op("-") || is_op("+")) {
            node = make(is_op("-") ? ExprKind::kNeg : ExprKind::kPos, cur().line);
            advance();
            node->children.push_back(parse_unary(false));
        } else {
            node = parse_primary();
        }
        node = parse_postfix(std::move(node));
        if (with_filter) {
            node = parse_filter_expr(std::move(node));
        }
        return node;
    }

    ExprPtr literal(Value v, int line) {
        auto e = make(ExprKind::kLiteral, line);
        e->literal = std::move(v);
        return e;
    }

    ExprPtr parse_primary() {
        const Token& t = cur();
        int line = t.line;
        switch (t.type) {
            case TokenType::kName: {
                std::string n = t.text;
                advance();
                if (n == "true" || n == "True") {
                    return literal(Value(true), line);
                }
                if (n == "false" || n == "False") {
                    return literal(Value(false), line);
                }
                if (n == "none" || n == "None") {
                    return literal(Value::none(), line);
                }
                auto e = make(ExprKind::kName, line);
                e->name = std::move(n);
                return e;
            }
            case TokenType::kString: {
                std::string s = t.text;
                advance();
                while (cur().type == TokenType::kString) {
                    s += cur().text;
                    advance();
                }
                return literal(Value(std::move(s)), line);
            }
            case TokenType::kInt: {
                int64_t v = t.int_value;
                advance();
                return literal(Value(v), line);
            }
            case TokenType::kFloat: {
                double v = t.float_value;
                advance();
                return literal(Value(v), line);
            }
            case TokenType::kOp:
                if (t.text == "(") {
                    advance();
                    if (skip_op(")")) {
                        return make(ExprKind::kTuple, line);
                    }
                    ExprPtr first = parse_expression(true);
                    if (skip_op(")")) {
                        return first;
                    }
                    auto tup = make(ExprKind::kTuple, line);
                    tup->children.push_back(std::move(first));
                    while (skip_op(",")) {
                        if (is_op(")")) {
                            break;
                        }
                        tup->children.push_back(parse_expression(true));
                    }
                    expect_op(")");
                    return tup;
                }
                if (t.text == "[") {
                    advance();
                    auto list = make(ExprKind::kList, line);
                    while (!is_op("]")) {
                        if (!list->children.empty()) {
                            expect_op(",");
                            if (is_op("]")) {
                                break;
                            }
                        }
                        list->children.push_back(parse_expression(true));
                    }
                    expect_op("]");
                    return list;
                }
                if (t.text == "{") {
                    advance();
                    auto dict = make(ExprKind::kDict, line);
                    while (!is_op("}")) {
                        if (!dict->children.empty()) {
                            expect_op(",");
                            if (is_op("}")) {
                                break;
                            }
                        }
                        dict->children.push_back(parse_expression(true));
                        expect_op(":");
                        dict->children.push_back(parse_expression(true));
                    }
                    expect_op("}");
                    return dict;
                }
                break;
            default:
                break;
        }
        fail("unexpected " + describe(t));
    }

    ExprPtr parse_postfix(ExprPtr node) {
        while (true) {
            int line = cur().line;
            if (is_op(".")) {
                advance();
                if (cur().type == TokenType::kInt) {
                    auto e = make(ExprKind::kGetItem, line);
                    e->children.push_back(std::move(node));
                    e->children.push_back(literal(Value(cur().int_value), line));
                    advance();
                    node = std::move(e);
                } else {
                    auto e = make(ExprKind::kGetAttr, line);
                    e->name = expect_name();
                    e->children.push_back(std::move(node));
                    node = std::move(e);
                }
            } else if (is_op("[")) {
                advance();
                node = parse_subscript(std::move(node), line);
            } else if (is_op("(")) {
                node = parse_call(std::move(node));
            } else {
                return node;
            }
        }
    }

    ExprPtr parse_subscript(ExprPtr obj, int line) {
        ExprPtr parts[3];
        bool is_slice = false;
        if (!is_op(":")) {
            parts[0] = parse_expression(true);
        }
        if (skip_op(":")) {
            is_slice = true;
            if (!is_op("]") && !is_op(":")) {
                parts[1] = parse_expression(true);
            }
            if (skip_op(":")) {
                if (!is_op("]")) {
                    parts[2] = parse_expression(true);
                }
            }
        }
        expect_op("]");
        if (!is_slice) {
            auto e = make(ExprKind::kGetItem, line);
            e->children.push_back(std::move(obj));
            e->children.push_back(std::move(parts[0]));
            return e;
        }
        auto e = make(ExprKind::kSlice, line);
        e->children.push_back(std::move(obj));
        for (auto& p : parts) {
            e->children.push_back(std::move(p));
        }
        return e;
    }

    void parse_call_args(Expr& call) {
        expect_op("(");
        bool first = true;
        while (!is_op(")")) {
            if (!first) {
                expect_op(",");
                if (is_op(")")) {
                    break;
                }
            }
            first = false;
            if (is_op("*") || is_op("**")) {
                fail("*args and **kwargs in calls are not supported");
            }
            if (cur().type == TokenType::kName && peek().type == TokenType::kOp &&
                peek().text == "=") {
                std::string key = cur().text;
                advance();
                advance();
                call.kwargs.emplace_back(std::move(key), parse_expression(true));
            } else {
                if (!call.kwargs.empty()) {
                    fail("positional argument follows keyword argument");
                }
                call.children.push_back(parse_expression(true));
            }
        }
        expect_op(")");
    }

    ExprPtr parse_call(ExprPtr callee) {
        DepthGuard guard(*this);
        auto e = make(ExprKind::kCall, cur().line);
        e->children.push_back(std::move(callee));
        parse_call_args(*e);
        return e;
    }

    std::string parse_dotted_name() {
        std::string n = expect_name();
        while (is_op(".") && peek().type == TokenType::kName) {
            advance();
            n += '.';
        n += expect_name();
        }
        return n;
    }

    // `| f(args) | g` applied to `input` (null in filter blocks and block sets).
    ExprPtr parse_filter_chain(ExprPtr input, bool leading_pipe = true) {
        bool first = true;
        while (first ? (!leading_pipe || skip_op("|")) : skip_op("|")) {
            first = false;
            auto f = make(ExprKind::kFilter, cur().line);
            f->name = parse_dotted_name();
            f->children.push_back(std::move(input));
            if (is_op("(")) {
                parse_call_args(*f);
            }
            input = std::move(f);
        }
        return input;
    }

    ExprPtr parse_filter_expr(ExprPtr node) {
        while (true) {
            if (is_op("|")) {
                DepthGuard guard(*this);
                advance();
                auto f = make(ExprKind::kFilter, cur().line);
                f->name = parse_dotted_name();
                f->children.push_back(std::move(node));
                if (is_op("(")) {
                    parse_call_args(*f);
                }
                node = std::move(f);
            } else if (is_name("is")) {
                DepthGuard guard(*this);
                auto t = make(ExprKind::kTest, cur().line);
                advance();
                t->negated = skip_name("not");
                t->name = parse_dotted_name();
                t->children.push_back(std::move(node));
                if (is_op("(")) {
                    parse_call_args(*t);
                } else if ((cur().type == TokenType::kName || cur().type == TokenType::kString ||
                            cur().type == TokenType::kInt || cur().type == TokenType::kFloat ||
                            is_op("[") || is_op("{")) &&
                           !is_name("else") && !is_name("or") && !is_name("and") &&
                           !is_name("if") && !is_name("is") && !is_name("in") &&
                           !is_name("not")) {
                    t->children.push_back(parse_postfix(parse_primary()));
                }
                node = std::move(t);
            } else if (is_op("(")) {
                node = parse_call(std::move(node));
            } else {
                return node;
            }
        }
    }

    std::vector<Token> toks_;
    size_t pos_ = 0;
    int depth_ = 0;
};

}  // namespace

std::unique_ptr<Program> parse(std::string_view source) {
    return Parser(lex(source)).run();
}

}  // namespace helexa::text::jinja::detail
