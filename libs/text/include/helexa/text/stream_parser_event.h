// Events produced by the streaming reasoning / tool-call parsers (reasoning_router.h,
// tool_call_extractor.h, stream_parser.h): one decoded text stream of one request becomes an
// ordered list of text deltas, reasoning deltas and complete tool calls.
// Use: consumers switch over StreamEventKind; the engine maps these onto its own EngineEvent.
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "helexa/text/marker_pair.h"

namespace helexa::text {

// A complete, parsed tool call. `arguments_json` is always the text of a JSON object.
struct ToolCallValue {
    std::string id;              // "call_<hex>_<index>"
    std::string name;
    std::string arguments_json;  // e.g. {"city":"Brno"}
    int64_t index = 0;           // 0-based slot within the turn
};

enum class StreamEventKind { kText, kReasoning, kToolCall };

struct StreamEvent {
    StreamEventKind kind = StreamEventKind::kText;
    std::string text;    // kText / kReasoning
    ToolCallValue call;  // kToolCall
};

// Appends `text` as an event of `kind`, merging into the previous event when it has the same
// kind (fewer, larger events; the concatenated stream is unchanged). Empty text is dropped.
void append_stream_text(std::vector<StreamEvent>& out, StreamEventKind kind, std::string_view text);

}  // namespace helexa::text
