// Server-Sent Events: an incremental parser (fed arbitrary byte chunks, as they come off a socket)
// and the formatting of events for sending. Follows the WHATWG EventSource parsing rules: \n, \r\n
// and \r line endings, comment lines (":"), a leading UTF-8 BOM, multi-line data joined by '\n',
// `id` (ignored when it contains NUL) and `retry` (digits only). An event is dispatched at a blank
// line; a final event without the blank line is only produced by finish().
//
// Pure C++ (no Asio) so wire/engine code and the fuzzer use it without Boost.
// Thread-safety: a parser is a plain value owned by one reader.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace helexa::net {

struct SseEvent {
    std::string event;  // "" when no `event:` field (EventSource would call it "message")
    std::string data;   // data lines joined by '\n', without the trailing '\n'
    std::optional<std::string> id;       // last `id:` seen in this event
    std::optional<int64_t> retry;        // `retry:` milliseconds
    bool operator==(const SseEvent&) const = default;
};

class SseParser {
public:
    // Parses `bytes` and appends every event completed by them to `out`.
    void feed(std::string_view bytes, std::vector<SseEvent>& out);
    std::vector<SseEvent> feed(std::string_view bytes);
    // End of stream: dispatches a pending event that lacked its blank line (only if it has data).
    void finish(std::vector<SseEvent>& out);
    std::vector<SseEvent> finish();
    // Bytes buffered for an incomplete line (a caller may cap memory with this).
    size_t buffered_bytes() const { return line_.size(); }
    // Comment lines seen so far (keep-alives).
    uint64_t comments_seen() const { return comments_; }

private:
    void process_line(std::string_view line, std::vector<SseEvent>& out);
    void dispatch(std::vector<SseEvent>& out);

    void feed_byte(char c, std::vector<SseEvent>& out);

    std::string line_;
    std::string bom_pending_;  // leading bytes that may still be a split UTF-8 BOM
    bool bom_checked_ = false;
    bool last_was_cr_ = false;  // a '\r' ended the previous line: skip a following '\n'
    std::string event_;
    std::string data_;
    bool has_data_ = false;
    std::optional<std::string> id_;
    std::optional<int64_t> retry_;
    uint64_t comments_ = 0;
};

// "event: <name>\n" (when name is non-empty), one "data: <line>\n" per line of data (splitting on
// \n, \r\n and \r), then "\n".
std::string format_sse_event(std::string_view data, std::string_view name = {});
// ": <text>\n\n" (keep-alive).
std::string format_sse_comment(std::string_view text);

}  // namespace helexa::net
