// The parsed template: a tree of statements and expressions, immutable once built and shared
// by every render of the compiled template.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "jinja/value.h"

namespace helexa::text::jinja::detail {

enum class ExprKind {
    kLiteral,    // literal
    kName,       // name
    kList,       // children
    kTuple,      // children
    kDict,       // children: key0, value0, key1, value1, ...
    kGetAttr,    // children[0] . name
    kGetItem,    // children[0] [ children[1] ]
    kSlice,      // children[0] [ children[1] : children[2] : children[3] ] (null = omitted)
    kCall,       // children[0] ( children[1..] , kwargs )
    kFilter,     // children[0] | name ( children[1..] , kwargs ); children[0] null in filter blocks
    kTest,       // children[0] is [not] name ( children[1..] )
    kNot,        // not children[0]
    kNeg,        // - children[0]
    kPos,        // + children[0]
    kBinary,     // children[0] op children[1]
    kAnd,        // children[0] and children[1]
    kOr,         // children[0] or children[1]
    kCompare,    // children[0] ops[0] children[1] ops[1] children[2] ...
    kCondExpr,   // children[0] if children[1] else children[2] (children[2] may be null)
};

enum class BinOp { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow, kConcat };
enum class CmpOp { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
    ExprKind kind = ExprKind::kLiteral;
    int line = 0;
    std::string name;
    Value literal;
    BinOp bin_op = BinOp::kAdd;
    bool negated = false;  // `is not`
    std::vector<ExprPtr> children;
    std::vector<std::pair<std::string, ExprPtr>> kwargs;
    std::vector<CmpOp> cmp_ops;
};

enum class StmtKind {
    kText,
    kOutput,
    kIf,
    kFor,
    kSet,
    kSetBlock,
    kMacro,
    kCallBlock,
    kFilterBlock,
    kBreak,
    kContinue,
    kWith,
    kScope,  // a body rendered as-is (generation blocks)
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct MacroParam {
    std::string name;
    ExprPtr default_value;  // null = required
};

struct Stmt {
    StmtKind kind = StmtKind::kText;
    int line = 0;
    std::string text;  // kText

    // kOutput: expr; kFor: iterable; kSet: value; kCallBlock: the call; kFilterBlock: filter chain
    ExprPtr expr;
    // kIf: one condition per branch, bodies[i] matching; else_body for the final else.
    std::vector<ExprPtr> conditions;
    std::vector<Body> bodies;
    Body body;
    Body else_body;

    // kFor: loop targets (several = tuple unpacking) and optional `if` filter;
    // kSet/kSetBlock: target names (kSet may unpack); attr set when assigning `ns.attr`.
    std::vector<std::string> targets;
    std::string attr;
    ExprPtr filter;
    bool recursive = false;

    // kMacro: name in targets[0]; kMacro and kCallBlock: parameters.
    std::vector<MacroParam> params;
    // kWith: assignments.
    std::vector<std::pair<std::string, ExprPtr>> assignments;
};

struct Program {
    Body body;
};

}  // namespace helexa::text::jinja::detail
