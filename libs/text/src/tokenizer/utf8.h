// UTF-8 helpers shared by the tokenizer parts (internal).
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace helexa::text::detail {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is invalid or truncated.
inline size_t utf8_valid_len(std::string_view s, size_t i) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    const size_t n = s.size() - i;
    if (b0 < 0x80) {
        return 1;
    }
    auto cont = [&](size_t k) { return (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80; };
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        return (n >= 2 && cont(1)) ? 2 : 0;
    }
    if (b0 >= 0xE0 && b0 <= 0xEF) {
        if (n < 3 || !cont(1) || !cont(2)) {
            return 0;
        }
        const auto b1 = static_cast<unsigned char>(s[i + 1]);
        if ((b0 == 0xE0 && b1 < 0xA0) || (b0 == 0xED && b1 > 0x9F)) {
            return 0;
        }
        return 3;
    }
    if (b0 >= 0xF0 && b0 <= 0xF4) {
        if (n < 4 || !cont(1) || !cont(2) || !cont(3)) {
            return 0;
        }
        const auto b1 = static_cast<unsigned char>(s[i + 1]);
        if ((b0 == 0xF0 && b1 < 0x90) || (b0 == 0xF4 && b1 > 0x8F)) {
            return 0;
        }
        return 4;
    }
    return 0;
}

// Length of the maximal prefix of s[i..] that could still become a valid sequence if more bytes
// arrived (0 when s[i] starts no valid sequence). Used by the streaming decoder and the lossy
// conversion, which replaces each maximal invalid subpart with one U+FFFD (as Rust and Python
// do).
inline size_t utf8_partial_len(std::string_view s, size_t i) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    size_t need = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 3;
        lo = b0 == 0xE0 ? 0xA0 : 0x80;
        hi = b0 == 0xED ? 0x9F : 0xBF;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 4;
        lo = b0 == 0xF0 ? 0x90 : 0x80;
        hi = b0 == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    size_t k = 1;
    for (; k < need && i + k < s.size(); ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        const unsigned char l = k == 1 ? lo : 0x80;
        const unsigned char h = k == 1 ? hi : 0xBF;
        if (b < l || b > h) {
            break;
        }
    }
    return k;  // == need only when complete
}

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

inline bool utf8_is_valid(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        if (b < 0x80) {
            ++i;
            continue;
        }
        const size_t n = utf8_valid_len(s, i);
        if (n == 0) {
            return false;
        }
        i += n;
    }
    return true;
}

// Lossy conversion: each maximal invalid subpart becomes U+FFFD.
inline void utf8_append_lossy(std::string_view s, std::string& out) {
    for (size_t i = 0; i < s.size();) {
        const size_t n = utf8_valid_len(s, i);
        if (n > 0) {
            out.append(s.substr(i, n));
            i += n;
            continue;
        }
        out.append(kReplacementChar);
        const size_t p = utf8_partial_len(s, i);
        i += p == 0 ? 1 : p;
    }
}

// Decodes the (valid) code point at s[i] and advances i.
inline char32_t utf8_next(std::string_view s, size_t& i) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
        ++i;
        return b0;
    }
    const size_t n = utf8_valid_len(s, i);
    if (n == 0) {
        ++i;
        return 0xFFFD;
    }
    char32_t cp = n == 2 ? (b0 & 0x1F) : n == 3 ? (b0 & 0x0F) : (b0 & 0x07);
    for (size_t k = 1; k < n; ++k) {
        cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    }
    i += n;
    return cp;
}

inline void utf8_append(char32_t cp, std::string& out) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

// Unicode White_Space, as Rust's char::is_whitespace.
inline bool is_unicode_space(char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

// Byte length of the UTF-8 character whose lead byte is `b` (1 for invalid leads).
inline size_t utf8_char_len(unsigned char b) {
    if (b < 0xC0) {
        return 1;
    }
    if (b < 0xE0) {
        return 2;
    }
    if (b < 0xF0) {
        return 3;
    }
    return 4;
}

}  // namespace helexa::text::detail
