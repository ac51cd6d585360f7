#include "marker_scan.h"

#include <algorithm>

#include "helexa/text/stream_parser_event.h"

namespace helexa::text {

void append_stream_text(std::vector<StreamEvent>& out, StreamEventKind kind,
                        std::string_view text) {
    if (text.empty()) {
        return;
    }
    if (!out.empty() && out.back().kind == kind && kind != StreamEventKind::kToolCall) {
        out.back().text.append(text);
        return;
    }
    StreamEvent event;
    event.kind = kind;
    event.text.assign(text);
    out.push_back(std::move(event));
}

}  // namespace helexa::text

namespace helexa::text::detail {

std::size_t utf8_complete_prefix(std::string_view s) {
    const std::size_t n = s.size();
    std::size_t i = n;
    int continuation = 0;
    while (i > 0 && continuation < 4 &&
           (static_cast<unsigned char>(s[i - 1]) & 0xC0U) == 0x80U) {
        --i;
        ++continuation;
    }
    if (i == 0 || continuation >= 4) {
        return n;
    }
    const auto lead = static_cast<unsigned char>(s[i - 1]);
    std::size_t need = 1;
    if ((lead & 0xE0U) == 0xC0U) {
        need = 2;
    } else if ((lead & 0xF0U) == 0xE0U) {
        need = 3;
    } else if ((lead & 0xF8U) == 0xF0U) {
        need = 4;
    }
    const std::size_t have = n - (i - 1);
    if (need > 1 && have < need) {
        return i - 1;
    }
    return n;
}

MarkerHit scan_markers(std::string_view buf, const std::vector<std::string_view>& markers) {
    MarkerHit best;
    best.pos = std::string_view::npos;
    std::size_t max_len = 0;
    for (std::size_t m = 0; m < markers.size(); ++m) {
        const std::string_view marker = markers[m];
        if (marker.empty()) {
            continue;
        }
        max_len = std::max(max_len, marker.size());
        const std::size_t at = buf.find(marker);
        if (at == std::string_view::npos) {
            continue;
        }
        const bool longer_tie =
            at == best.pos &&
            marker.size() > markers[static_cast<std::size_t>(best.marker)].size();
        if (at < best.pos || longer_tie) {
            best.pos = at;
            best.marker = static_cast<int>(m);
        }
    }
    if (best.marker >= 0) {
        return best;
    }
    // No full match: hold back the longest suffix that could still grow into a marker.
    std::size_t hold = 0;
    const std::size_t limit = std::min(buf.size(), max_len > 0 ? max_len - 1 : 0);
    for (std::size_t k = limit; k > 0 && hold == 0; --k) {
        const std::string_view tail = buf.substr(buf.size() - k);
        for (const std::string_view marker : markers) {
            if (marker.size() > k && marker.substr(0, k) == tail) {
                hold = k;
                break;
            }
        }
    }
    best.marker = -1;
    best.pos = utf8_complete_prefix(buf.substr(0, buf.size() - hold));
    return best;
}

}  // namespace helexa::text::detail
