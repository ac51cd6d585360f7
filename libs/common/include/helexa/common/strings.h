// Small string helpers shared by the config reader, the log filter and the text parsers.
#pragma once

#include <cctype>
#include <string_view>

namespace helexa {

// `s` without leading and trailing whitespace (C-locale isspace: space, \t, \n, \v, \f, \r).
inline std::string_view trim_space(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) {
        s.remove_prefix(1);
    }
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) {
        s.remove_suffix(1);
    }
    return s;
}

}  // namespace helexa
