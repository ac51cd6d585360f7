// ParsedTextStream: the TextStream (runtime_text.h) a real model uses — the model's completion
// text through libs/text's StreamParser, so tokens between reasoning markers become
// kReasoningDelta, tool calls between tool-call markers become kToolCall (arguments coerced to
// the request's tool schemas), and the markers themselves never reach the client.
// At finish, a turn that parsed a tool call ends with kToolCalls, and usage.reasoning_tokens
// counts the tokens generated inside reasoning blocks (close marker included).
// When to use: LocalEngine builds the factory once per model from its vocabulary probes.
// Thread-safety: the factory may be called from any thread; each stream is single-threaded.
#pragma once

#include <optional>

#include "helexa/engine/runtime_text.h"
#include "helexa/text/marker_pair.h"

namespace helexa::engine {

struct ParsedTextStreamMarkers {
    std::optional<text::MarkerPair> reasoning;  // from the vocabulary probe; none = no routing
    std::optional<text::MarkerPair> tool_call;  // none = no tool-call extraction
};

TextStreamFactory parsed_text_stream_factory(ParsedTextStreamMarkers markers);

}  // namespace helexa::engine
