#include "helexa/text/reasoning_router.h"

#include <utility>

#include "marker_scan.h"

namespace helexa::text {

ReasoningRouter::ReasoningRouter(MarkerPair markers, bool starts_in_reasoning)
    : markers_(std::move(markers)) {
    // Without markers there is no block to be inside of.
    in_reasoning_ = starts_in_reasoning && !markers_.empty();
}

void ReasoningRouter::push(std::string_view delta, std::vector<StreamEvent>& out) {
    if (!enabled()) {
        append_stream_text(out, StreamEventKind::kText, delta);
        return;
    }
    pending_.append(delta);
    const std::vector<std::string_view> markers = {markers_.open, markers_.close};
    std::string_view rest = pending_;
    for (;;) {
        const StreamEventKind kind =
            in_reasoning_ ? StreamEventKind::kReasoning : StreamEventKind::kText;
        const detail::MarkerHit hit = detail::scan_markers(rest, markers);
        append_stream_text(out, kind, rest.substr(0, hit.pos));
        if (hit.marker < 0) {
            rest.remove_prefix(hit.pos);
            break;
        }
        // Open marker enters reasoning (an open inside reasoning is dropped); close leaves it
        // (a stray close in text mode is dropped).
        in_reasoning_ = hit.marker == 0;
        rest.remove_prefix(hit.pos + markers[static_cast<std::size_t>(hit.marker)].size());
    }
    pending_.erase(0, pending_.size() - rest.size());
}

void ReasoningRouter::finish(std::vector<StreamEvent>& out) {
    const StreamEventKind kind =
        in_reasoning_ ? StreamEventKind::kReasoning : StreamEventKind::kText;
    append_stream_text(out, kind, pending_);
    pending_.clear();
}

}  // namespace helexa::text
