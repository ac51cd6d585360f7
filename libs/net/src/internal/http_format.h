// HTTP/1.1 message heads written straight into a string (server responses, client requests),
// so that a head and its body leave in one gather write without Beast's serializer.
// Field names with CR, LF or ':' are dropped and CR/LF in values become spaces, so no field
// can inject another header line. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "helexa/net/http.h"

namespace helexa::net::detail {

// "Name: value\r\n" (sanitised as above).
void append_field(std::string& out, std::string_view name, std::string_view value);

// "HTTP/1.1 <status> <reason>\r\n".
void append_status_line(std::string& out, int status);

// "<chunk size in hex>\r\n".
void append_chunk_size(std::string& out, size_t size);

inline constexpr std::string_view kCrlf = "\r\n";
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

}  // namespace helexa::net::detail
