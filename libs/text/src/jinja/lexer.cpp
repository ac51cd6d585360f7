#include "jinja/lexer.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "jinja/value.h"

namespace helexa::text::jinja::detail {
namespace {

[[noreturn]] void lex_error(const std::string& msg, int line) {
    throw TemplateError{msg, line};
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// jinja2 splits the source with str.splitlines() and joins with "\n": every line break
// Python knows becomes "\n", and one trailing line break disappears (keep_trailing_newline off).
std::string normalize_newlines(std::string_view src) {
    std::string out;
    out.reserve(src.size());
    for (size_t i = 0; i < src.size(); ++i) {
        auto c = static_cast<unsigned char>(src[i]);
        if (c == '\r') {
            if (i + 1 < src.size() && src[i + 1] == '\n') {
                ++i;
            }
            out += '\n';
        } else if (c == '\n' || c == '\v' || c == '\f' || c == 0x1C || c == 0x1D || c == 0x1E) {
            out += '\n';
        } else if (c == 0xC2 && i + 1 < src.size() && static_cast<unsigned char>(src[i + 1]) == 0x85) {
            out += '\n';
            ++i;
        } else if (c == 0xE2 && i + 2 < src.size() && static_cast<unsigned char>(src[i + 1]) == 0x80 &&
                   (static_cast<unsigned char>(src[i + 2]) == 0xA8 ||
                    static_cast<unsigned char>(src[i + 2]) == 0xA9)) {
            out += '\n';
            i += 2;
        } else {
            out += static_cast<char>(c);
        }
    }
    if (!out.empty() && out.back() == '\n') {
        out.pop_back();
    }
    return out;
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// Python's "unicode-escape" decoding of a literal body, as jinja2 applies to string tokens.
std::string unescape(std::string_view body, int line) {
    std::string out;
    out.reserve(body.size());
    for (size_t i = 0; i < body.size(); ++i) {
        char c = body[i];
        if (c != '\\' || i + 1 >= body.size()) {
            out += c;
            continue;
        }
        char e = body[++i];
        switch (e) {
            case '\n':
                break;
            case '\\':
                out += '\\';
                break;
            case '\'':
                out += '\'';
                break;
            case '"':
                out += '"';
                break;
            case 'a':
                out += '\a';
                break;
            case 'b':
                out += '\b';
                break;
            case 'f':
                out += '\f';
                break;
            case 'n':
                out += '\n';
                break;
            case 'r':
                out += '\r';
                break;
            case 't':
                out += '\t';
                break;
            case 'v':
                out += '\v';
                break;
            case 'x':
            case 'u':
            case 'U': {
                size_t n = e == 'x' ? 2 : (e == 'u' ? 4 : 8);
                if (i + n >= body.size()) {
                    lex_error("truncated \\" + std::string(1, e) + " escape in string literal", line);
                }
                uint32_t cp = 0;
                for (size_t k = 1; k <= n; ++k) {
                    int h = hex_value(body[i + k]);
                    if (h < 0) {
                        lex_error("invalid \\" + std::string(1, e) + " escape in string literal",
                                  line);
                    }
                    cp = cp * 16 + static_cast<uint32_t>(h);
                }
                if (cp > 0x10FFFF) {
                    lex_error("escape out of unicode range in string literal", line);
                }
                append_utf8(out, cp);
                i += n;
                break;
            }
            default:
                if (e >= '0' && e <= '7') {
                    uint32_t cp = static_cast<uint32_t>(e - '0');
                    for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' &&
                                    body[i + 1] <= '7';
                         ++k) {
                        cp = cp * 8 + static_cast<uint32_t>(body[++i] - '0');
                    }
                    append_utf8(out, cp);
                } else {
                    out += '\\';
                    out += e;
                }
        }
    }
    return out;
}

class Lexer {
public:
    explicit Lexer(std::string src) : src_(std::move(src)) {}

    std::vector<Token> run() {
        bool line_starting = true;
        while (pos_ < src_.size()) {
            size_t tag = find_tag(pos_);
            std::string text = src_.substr(pos_, tag - pos_);
            if (tag == src_.size()) {
                emit_text(std::move(text));
                count_lines(pos_, tag);
                pos_ = tag;
                break;
            }
            char kind = src_[tag + 1];  // '{', '%' or '#'
            char sign = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
            if (sign == '-') {
                size_t end = text.size();
                while (end > 0 && is_space(text[end - 1])) {
                    --end;
                }
                text.resize(end);
            } else if (sign != '+' && kind != '{') {
                size_t l_pos = text.rfind('\n');
                l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
                if (l_pos > 0 || line_starting) {
                    bool all_ws = l_pos < text.size();
                    for (size_t i = l_pos; i < text.size(); ++i) {
                        if (!is_space(text[i])) {
                            all_ws = false;
                            break;
                        }
                    }
                    if (all_ws) {
                        text.resize(l_pos);
                    }
                }
            }
            count_lines(pos_, tag);
            emit_text(std::move(text));
            pos_ = tag + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
            bool strip_after = false;
            bool keep_newline = false;
            if (kind == '#') {
                lex_comment(strip_after);
            } else if (kind == '%' && try_raw(tag, strip_after)) {
                // raw block handled entirely
            } else {
                lex_tag(kind, strip_after, keep_newline);
            }
            size_t before = pos_;
            if (strip_after) {
                while (pos_ < src_.size() && is_space(src_[pos_])) {
                    ++pos_;
                }
            } else if (kind != '{' && !keep_newline && pos_ < src_.size() && src_[pos_] == '\n') {
                ++pos_;  // trim_blocks
            }
            count_lines(before, pos_);
            line_starting = pos_ > 0 && src_[pos_ - 1] == '\n';
        }
        Token eof;
        eof.type = TokenType::kEof;
        eof.line = line_;
        tokens_.push_back(eof);
        return std::move(tokens_);
    }

private:
    size_t find_tag(size_t from) const {
        for (size_t i = from; i + 1 < src_.size(); ++i) {
            if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) {
                return i;
            }
        }
        return src_.size();
    }

    void count_lines(size_t from, size_t to) {
        for (size_t i = from; i < to && i < src_.size(); ++i) {
            if (src_[i] == '\n') {
                ++line_;
            }
        }
    }

    void emit_text(std::string text) {
        if (text.empty()) {
            return;
        }
        Token t;
        t.type = TokenType::kText;
        t.text = std::move(text);
        t.line = line_;
        tokens_.push_back(std::move(t));
    }

    void push(TokenType type, std::string text, int line) {
        Token t;
        t.type = type;
        t.text = std::move(text);
        t.line = line;
        tokens_.push_back(std::move(t));
    }

    void lex_comment(bool& strip_after) {
        size_t end = src_.find("#}", pos_);
        if (end == std::string::npos) {
            lex_error("missing end of comment tag", line_);
        }
        strip_after = end > pos_ && src_[end - 1] == '-';
        count_lines(pos_, end + 2);
        pos_ = end + 2;
    }

    // Matches `{%[-+]? raw [-]?%}` at `tag`; on success consumes through the matching endraw.
    bool try_raw(size_t tag, bool& strip_after) {
        size_t p = pos_;
        while (p < src_.size() && is_space(src_[p])) {
            ++p;
        }
        if (src_.compare(p, 3, "raw") != 0) {
            return false;
        }
        p += 3;
        while (p < src_.size() && is_space(src_[p])) {
            ++p;
        }
        bool strip_content_start = false;
        if (p < src_.size() && src_[p] == '-') {
            strip_content_start = true;
            ++p;
        }
        if (src_.compare(p, 2, "%}") != 0) {
            return false;
        }
        (void)tag;
        int start_line = line_;
        count_lines(pos_, p + 2);
        pos_ = p + 2;
        if (strip_content_start) {
            size_t b = pos_;
            while (pos_ < src_.size() && is_space(src_[pos_])) {
                ++pos_;
            }
            count_lines(b, pos_);
        }
        // Find {% endraw %} with optional whitespace control.
        for (size_t i = src_.find("{%", pos_); i != std::string::npos; i = src_.find("{%", i + 2)) {
            size_t q = i + 2;
            char sign = q < src_.size() ? src_[q] : '\0';
            if (sign == '-' || sign == '+') {
                ++q;
            }
            while (q < src_.size() && is_space(src_[q])) {
                ++q;
            }
            if (src_.compare(q, 6, "endraw") != 0) {
                continue;
            }
            q += 6;
            while (q < src_.size() && is_space(src_[q])) {
                ++q;
            }
            bool strip_end = false;
            if (q < src_.size() && src_[q] == '-') {
                strip_end = true;
                ++q;
            }
            if (src_.compare(q, 2, "%}") != 0) {
                continue;
            }
            std::string content = src_.substr(pos_, i - pos_);
            if (sign == '-') {
                while (!content.empty() && is_space(content.back())) {
                    content.pop_back();
                }
            } else if (sign != '+') {
                size_t l_pos = content.rfind('\n');
                if (l_pos != std::string::npos) {
                    bool all_ws = l_pos + 1 < content.size();
                    for (size_t k = l_pos + 1; k < content.size(); ++k) {
                        all_ws = all_ws && is_space(content[k]);
                    }
                    if (all_ws) {
                        content.resize(l_pos + 1);
                    }
                }
            }
            emit_text(std::move(content));
            count_lines(pos_, q + 2);
            pos_ = q + 2;
            strip_after = strip_end;
            return true;
        }
        lex_error("missing endraw for raw block", start_line);
    }

    void lex_tag(char kind, bool& strip_after, bool& keep_newline) {
        push(kind == '{' ? TokenType::kVarBegin : TokenType::kBlockBegin, "", line_);
        const char close = kind == '{' ? '}' : '%';
        int depth = 0;
        while (true) {
            while (pos_ < src_.size() && is_space(src_[pos_])) {
                if (src_[pos_] == '\n') {
                    ++line_;
                }
                ++pos_;
            }
            if (pos_ >= src_.size()) {
                lex_error(kind == '{' ? "unexpected end of template, expected '}}'"
                                      : "unexpected end of template, expected '%}'",
                          line_);
            }
            char c = src_[pos_];
            if (depth == 0) {
                size_t p = pos_;
                bool minus = false;
                bool plus = false;
                if (c == '-' || c == '+') {
                    minus = c == '-';
                    plus = c == '+';
                    ++p;
                }
                if (p + 1 < src_.size() && src_[p] == close && src_[p + 1] == '}') {
                    push(kind == '{' ? TokenType::kVarEnd : TokenType::kBlockEnd, "", line_);
                    pos_ = p + 2;
                    strip_after = minus;
                    keep_newline = plus;
                    return;
                }
            }
            if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
                size_t b = pos_;
                while (pos_ < src_.size() &&
                       (std::isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) {
                    ++pos_;
                }
                push(TokenType::kName, src_.substr(b, pos_ - b), line_);
            } else if (std::isdigit(static_cast<unsigned char>(c))) {
                lex_number();
            } else if (c == '\'' || c == '"') {
                lex_string(c);
            } else {
                lex_operator(depth);
            }
        }
    }

    void lex_number() {
        size_t b = pos_;
        auto digits = [&] {
            while (pos_ < src_.size() &&
                   (std::isdigit(static_cast<unsigned char>(src_[pos_])) ||
                    (src_[pos_] == '_' && pos_ + 1 < src_.size() &&
                     std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))))) {
                ++pos_;
            }
        };
        digits();
        bool is_float = false;
        if (pos_ + 1 < src_.size() && src_[pos_] == '.' &&
            std::isdigit(static_cast<unsigned char>(src_[pos_ + 1])) &&
            !(tokens_.size() > 0 && tokens_.back().type == TokenType::kOp &&
              tokens_.back().text == ".")) {
            is_float = true;
            ++pos_;
            digits();
        }
        if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
            size_t save = pos_;
            ++pos_;
            if (pos_ < src_.size() && (src_[pos_] == '+' || src_[pos_] == '-')) {
                ++pos_;
            }
            if (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) {
                is_float = true;
                digits();
            } else {
                pos_ = save;
            }
        }
        std::string spelled;
        for (size_t i = b; i < pos_; ++i) {
            if (src_[i] != '_') {
                spelled += src_[i];
            }
        }
        Token t;
        t.line = line_;
        t.text = spelled;
        if (is_float) {
            t.type = TokenType::kFloat;
            t.float_value = std::strtod(spelled.c_str(), nullptr);
        } else {
            t.type = TokenType::kInt;
            errno = 0;
            unsigned long long v = std::strtoull(spelled.c_str(), nullptr, 10);
            if (errno != 0 || v > static_cast<unsigned long long>(INT64_MAX)) {
                lex_error("integer literal too large: " + spelled, line_);
            }
            t.int_value = static_cast<int64_t>(v);
        }
        tokens_.push_back(std::move(t));
    }

    void lex_string(char quote) {
        int start_line = line_;
        size_t b = ++pos_;
        while (pos_ < src_.size() && src_[pos_] != quote) {
            if (src_[pos_] == '\\' && pos_ + 1 < src_.size()) {
                ++pos_;
            }
            if (src_[pos_] == '\n') {
                ++line_;
            }
            ++pos_;
        }
        if (pos_ >= src_.size()) {
            lex_error("unterminated string literal", start_line);
        }
        std::string body = src_.substr(b, pos_ - b);
        ++pos_;
        push(TokenType::kString, unescape(body, start_line), start_line);
    }

    void lex_operator(int& depth) {
        static const char* const kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
        for (const char* op : kTwo) {
            if (src_.compare(pos_, 2, op) == 0) {
                push(TokenType::kOp, op, line_);
                pos_ += 2;
                return;
            }
        }
        char c = src_[pos_];
        static const std::string_view kOne = "+-*/%~()[]{},.:|=<>;";
        if (kOne.find(c) == std::string_view::npos) {
            lex_error(std::string("unexpected character '") + c + "' in tag", line_);
        }
        if (c == '(' || c == '[' || c == '{') {
            ++depth;
        } else if (c == ')' || c == ']' || c == '}') {
            if (depth == 0) {
                lex_error(std::string("unexpected '") + c + "'", line_);
            }
            --depth;
        }
        push(TokenType::kOp, std::string(1, c), line_);
        ++pos_;
    }

    std::string src_;
    size_t pos_ = 0;
    int line_ = 1;
    std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> lex(std::string_view source) {
    return Lexer(normalize_newlines(source)).run();
}

}  // namespace helexa::text::jinja::detail
