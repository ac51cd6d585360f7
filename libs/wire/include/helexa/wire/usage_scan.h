// Finds token usage in the tail of a response body without parsing (or buffering) the body.
//
// Use in cortex's metering/metrics path (features §3.11): pass every body chunk through a
// UsageTailScanner (it keeps at most the last 64 KiB), and at end of stream or on client
// disconnect read result(). Works on OpenAI JSON and SSE bodies (chat, completions), Responses
// (`input_tokens`/`output_tokens`) and Anthropic bodies.
//
// How: the LAST `"usage"` key whose value is a complete JSON object wins; its counts are read
// with quoted needles ("\"completion_tokens\"" never matches `"completion_tokens_details"`).
// A field missing from that object (Anthropic's message_delta usage often lacks input_tokens)
// is taken from the nearest earlier usage object that has it. A `"usage"` preceded by a
// backslash is inside a string (model text) and ignored; an object cut off by the tail's start
// or end is skipped, so a tail that begins mid-event is safe.
//
// Thread-safety: scan_usage is pure; a UsageTailScanner is one stream's, one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace helexa::wire {

inline constexpr size_t kUsageTailBytes = 64 * 1024;

struct UsageCounts {
    int64_t prompt_tokens = 0;      // prompt_tokens or input_tokens
    int64_t completion_tokens = 0;  // completion_tokens or output_tokens
    bool operator==(const UsageCounts&) const = default;
};

// The usage in `tail`, or nullopt when no complete usage object with either count is present.
std::optional<UsageCounts> scan_usage(std::string_view tail);

class UsageTailScanner {
public:
    explicit UsageTailScanner(size_t capacity = kUsageTailBytes) : capacity_(capacity) {}

    // Appends a body chunk; only the last `capacity` bytes are retained (amortised O(chunk)).
    void feed(std::string_view chunk);

    // The usage seen so far (scans the retained tail).
    std::optional<UsageCounts> result() const;

    // The retained tail (at most `capacity` bytes).
    std::string_view tail() const;

    // Total bytes fed.
    uint64_t bytes_seen() const { return bytes_seen_; }

private:
    size_t capacity_;
    std::string buffer_;  // holds up to 2 * capacity before compacting
    uint64_t bytes_seen_ = 0;
};

}  // namespace helexa::wire
