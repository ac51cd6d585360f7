// ReasoningRouter: splits one request's decoded text stream into text and reasoning, driven by
// a marker pair found in the model's vocabulary (e.g. <think>/</think>, [THINK]/[/THINK]);
// nothing here knows a model by name.
// Rules:
//   - text between open and close markers is reasoning; the markers themselves are dropped;
//   - starts_in_reasoning (the rendered prompt left a block open, e.g. a template injecting
//     "<think>\n") starts in reasoning mode, so everything up to the first close is reasoning;
//   - a close marker seen in text mode (no open before it, not starting in reasoning) is
//     dropped and the text before it stays text: it has already been streamed, and only a
//     prompt that opened a block makes leading text reasoning;
//   - an open marker seen inside reasoning is dropped (no nesting);
//   - a marker split across deltas at any byte is recognised: only the longest suffix that
//     could begin a marker (plus an incomplete trailing UTF-8 sequence) is held back, so
//     emitted text never ends mid code point.
// Thread-safety: one instance per request, single-threaded.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "helexa/text/stream_parser_event.h"

namespace helexa::text {

class ReasoningRouter {
public:
    // An empty marker pair disables routing: everything is text.
    ReasoningRouter(MarkerPair markers, bool starts_in_reasoning);

    // Consumes the next delta; appends kText / kReasoning events to `out`.
    void push(std::string_view delta, std::vector<StreamEvent>& out);
    // End of stream: flushes held-back bytes in the current mode (an open block stays
    // reasoning; a partial marker is emitted as plain text/reasoning).
    void finish(std::vector<StreamEvent>& out);

    bool in_reasoning() const { return in_reasoning_; }
    bool enabled() const { return !markers_.empty(); }
    const MarkerPair& markers() const { return markers_; }

private:
    MarkerPair markers_;
    bool in_reasoning_ = false;
    std::string pending_;
};

}  // namespace helexa::text
