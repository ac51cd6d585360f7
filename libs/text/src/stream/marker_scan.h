// Internal: finding literal markers in a growing buffer and deciding how much of it is safe
// to emit now (helpers shared by the reasoning router and the tool-call extractor).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace helexa::text::detail {

struct MarkerHit {
    std::size_t pos = 0;  // start of the earliest full match, or the safe prefix length
    int marker = -1;      // index into the marker list; -1 when no full match
};

// Earliest full occurrence of any non-empty marker (ties: the longest marker). With no full
// match, `pos` is the length of the prefix that can be emitted now: the buffer minus the
// longest suffix that is a proper prefix of some marker, minus an incomplete trailing UTF-8
// sequence.
MarkerHit scan_markers(std::string_view buf, const std::vector<std::string_view>& markers);

// Length of the longest prefix of `s` that does not end inside an incomplete UTF-8 sequence.
// Invalid bytes are not held (they can never complete).
std::size_t utf8_complete_prefix(std::string_view s);

}  // namespace helexa::text::detail
