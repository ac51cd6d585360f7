// StreamParser: the per-request text stage between the token decoder and the client-facing
// events. Composition: ReasoningRouter (text vs reasoning) -> ToolCallExtractor (applied to
// the text side only; reasoning never produces tool calls).
// Use: create one per request from the model's vocabulary probes and the request's tools;
// push() every decoded text delta in order, call finish() once at the end of generation.
// Concatenating the events of any chunking of the same stream gives the same result (events
// of the same kind may be split or merged differently).
// include_thinking (`x-include-thinking: true`): reasoning is re-wrapped in its literal
// markers and emitted as kText (the original's on-the-wire shape that helexa-acp parses);
// such text bypasses tool-call extraction. The wrap opens before the first reasoning byte of
// a block and closes before the next text / tool call or at finish().
// Counters: reasoning_bytes() (bytes routed to reasoning, re-wrapped or not, markers
// excluded) and n_tool_calls() (the caller sets finish_reason "tool_calls" when > 0).
// Thread-safety: one instance per request, single-threaded.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "helexa/text/reasoning_router.h"
#include "helexa/text/stream_parser_event.h"
#include "helexa/text/tool_call.h"
#include "helexa/text/tool_call_extractor.h"

namespace helexa::text {

struct StreamParserOptions {
    MarkerPair reasoning_markers;              // empty: no reasoning routing
    bool starts_in_reasoning = false;          // the rendered prompt left a block open
    std::vector<MarkerPair> tool_call_markers; // empty: no tool-call extraction
    ToolSchemas tool_schemas;                  // from build_tool_schemas(request.tools)
    bool include_thinking = false;             // re-wrap reasoning into text
    std::string call_id_hex;                   // hex part of call ids; "" = random per parser
};

// The Hermes / Qwen pair, for callers whose vocabulary probe found "<tool_call>".
MarkerPair hermes_tool_call_markers();

class StreamParser {
public:
    explicit StreamParser(StreamParserOptions options);

    void push(std::string_view delta, std::vector<StreamEvent>& out);
    std::vector<StreamEvent> push(std::string_view delta);
    void finish(std::vector<StreamEvent>& out);
    std::vector<StreamEvent> finish();

    bool in_reasoning() const { return router_.in_reasoning(); }
    int64_t reasoning_bytes() const { return reasoning_bytes_; }
    int64_t n_tool_calls() const { return extractor_.n_calls(); }

private:
    void route(std::vector<StreamEvent>& routed, std::vector<StreamEvent>& out);
    void close_wrap(std::vector<StreamEvent>& out);

    ReasoningRouter router_;
    ToolCallExtractor extractor_;
    bool include_thinking_ = false;
    bool wrap_open_ = false;
    int64_t reasoning_bytes_ = 0;
    std::vector<StreamEvent> scratch_;  // reused between pushes
};

}  // namespace helexa::text
