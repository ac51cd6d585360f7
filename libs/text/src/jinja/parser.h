// Recursive-descent parser from the lexer's tokens to the AST, following jinja2's grammar and
// operator precedence. Nesting is bounded so hostile templates cannot overflow the stack.
#pragma once

#include <memory>
#include <string_view>

#include "jinja/ast.h"

namespace helexa::text::jinja::detail {

// Throws TemplateError (with the offending line) on syntax errors.
std::unique_ptr<Program> parse(std::string_view source);

}  // namespace helexa::text::jinja::detail
