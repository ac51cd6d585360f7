// ToolCallExtractor: finds tool calls between tool-call markers in the (non-reasoning) text of
// one request's stream, incrementally.
// - Text outside calls streams through as kText; only the longest suffix that could begin an
//   open marker (and an incomplete UTF-8 tail) is held back.
// - Inside a call nothing is emitted until the close marker; for a JSON body the close marker
//   is only recognised outside JSON strings (a string may contain "</tool_call>" or '}').
// - A parsed body becomes one kToolCall event, id "call_<hex>_<index>"; an unparseable body is
//   re-emitted as text together with its markers so nothing is lost; an empty body is a no-op.
// - finish(): held text is flushed; a call left open becomes a best-effort call if its body is
//   complete (JSON parses, or XML has </function>), otherwise it is emitted as text with its
//   open marker.
// Several marker pairs may be configured (the pair whose open marker matched must close).
// Thread-safety: one instance per request, single-threaded.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "helexa/text/stream_parser_event.h"
#include "helexa/text/tool_call.h"

namespace helexa::text {

class ToolCallExtractor {
public:
    // `id_hex` is the per-request hex part of call ids. No marker pairs: plain pass-through.
    ToolCallExtractor(std::vector<MarkerPair> markers, ToolSchemas schemas, std::string id_hex);

    void push(std::string_view text, std::vector<StreamEvent>& out);
    void finish(std::vector<StreamEvent>& out);

    int64_t n_calls() const { return n_calls_; }
    bool in_call() const { return active_ >= 0; }

private:
    enum class BodyMode { kUnknown, kJson, kPlain };

    void process(std::vector<StreamEvent>& out);
    void process_text(std::vector<StreamEvent>& out);
    // Returns true when the close marker was found (state is back to text).
    bool process_call(std::vector<StreamEvent>& out);
    void close_call(std::string_view body, bool at_end, std::vector<StreamEvent>& out);

    std::vector<MarkerPair> markers_;
    std::vector<std::string_view> opens_;
    ToolSchemas schemas_;
    std::string id_hex_;
    int64_t n_calls_ = 0;

    std::string pending_;  // text mode: held-back bytes; call mode: the body so far
    int active_ = -1;      // index of the open pair, -1 in text mode
    std::size_t scan_pos_ = 0;
    BodyMode mode_ = BodyMode::kUnknown;
    int64_t depth_ = 0;
    bool in_string_ = false;
    bool escape_ = false;
    bool json_done_ = false;
};

}  // namespace helexa::text
