// Message-head formatting for the server and the client (internal/http_format.h).
#include "internal/http_format.h"

#include <charconv>

namespace helexa::net::detail {

void append_field(std::string& out, std::string_view name, std::string_view value) {
    if (name.empty() || name.find_first_of("\r\n:") != std::string_view::npos) {
        return;
    }
    out.append(name);
    out.append(": ");
    size_t start = out.size();
    out.append(value);
    if (value.find_first_of("\r\n") != std::string_view::npos) {
        for (size_t i = start; i < out.size(); ++i) {
            if (out[i] == '\r' || out[i] == '\n') {
                out[i] = ' ';
            }
        }
    }
    out.append(kCrlf);
}

void append_status_line(std::string& out, int status) {
    char digits[16];
    auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), status);
    out.append("HTTP/1.1 ");
    out.append(digits, end);
    out.push_back(' ');
    std::string_view reason = reason_phrase(status);
    out.append(reason.empty() ? std::string_view("Unknown") : reason);
    out.append(kCrlf);
}

void append_chunk_size(std::string& out, size_t size) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), size, 16);
    out.append(digits, end);
    out.append(kCrlf);
}

}  // namespace helexa::net::detail
