// Command-line numbers for the engine benchmarks: a malformed or out-of-range value ends the
// program with exit code 2 and a message naming the flag (as config errors do), never a silent 0.
#pragma once

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <system_error>

namespace helexa::bench {

// The value of flag `name`, a whole number >= `min`.
inline int64_t flag_number(const char* name, const char* text, int64_t min) {
    int64_t value = 0;
    const std::string_view t(text);
    const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
    if (t.empty() || ec != std::errc() || ptr != t.data() + t.size() || value < min) {
        std::fprintf(stderr, "%s: expected a whole number >= %lld, got '%s'\n", name,
                     static_cast<long long>(min), text);
        std::exit(2);
    }
    return value;
}

}  // namespace helexa::bench
