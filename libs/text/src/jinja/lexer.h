// Jinja lexer with HuggingFace's environment settings (trim_blocks, lstrip_blocks, newline
// normalisation, trailing newline dropped) producing one flat token stream: text runs, tag
// delimiters and expression tokens, each with its 1-based source line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace helexa::text::jinja::detail {

enum class TokenType {
    kText,
    kVarBegin,    // {{
    kVarEnd,      // }}
    kBlockBegin,  // {%
    kBlockEnd,    // %}
    kName,
    kString,
    kInt,
    kFloat,
    kOp,  // operators and punctuation; text holds the spelling
    kEof,
};

struct Token {
    TokenType type = TokenType::kEof;
    std::string text;  // text run, name, decoded string literal, or operator spelling
    int64_t int_value = 0;
    double float_value = 0.0;
    int line = 1;
};

// Tokenizes a whole template. Throws TemplateError (caught by Template::compile) on malformed
// input: unterminated tags, strings or comments, unexpected characters.
std::vector<Token> lex(std::string_view source);

}  // namespace helexa::text::jinja::detail
