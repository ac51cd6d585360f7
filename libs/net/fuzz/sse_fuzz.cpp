// Fuzzes the incremental SSE parser: the input is split at a point derived from its first byte and
// fed in two pieces, then byte by byte; both must yield the same events as a single feed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "helexa/net/sse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);

    helexa::net::SseParser whole;
    auto expected = whole.feed(input);
    whole.finish(expected);

    size_t split = size == 0 ? 0 : static_cast<size_t>(data[0]) % (size + 1);
    helexa::net::SseParser halves;
    auto got = halves.feed(input.substr(0, split));
    halves.feed(input.substr(split), got);
    halves.finish(got);

    helexa::net::SseParser bytes;
    std::vector<helexa::net::SseEvent> got_bytes;
    for (size_t i = 0; i < size; ++i) {
        bytes.feed(input.substr(i, 1), got_bytes);
    }
    bytes.finish(got_bytes);

    if (got != expected || got_bytes != expected) {
        std::abort();
    }
    // Formatting an event's data and re-parsing it must give the data back.
    for (const auto& ev : expected) {
        helexa::net::SseParser again;
        auto round = again.feed(helexa::net::format_sse_event(ev.data, ""));
        if (round.size() != 1) {
            std::abort();
        }
    }
    return 0;
}
