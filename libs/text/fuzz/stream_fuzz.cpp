// libFuzzer target for the streaming reasoning / tool-call parser: arbitrary bytes fed at
// arbitrary split points must never crash, and (the oracle) the concatenated events of the
// chunked run must equal those of the unsplit run.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "helexa/text/stream_parser.h"

namespace {

using helexa::text::StreamEvent;
using helexa::text::StreamEventKind;
using helexa::text::StreamParser;
using helexa::text::StreamParserOptions;

std::string flatten(const std::vector<StreamEvent>& events) {
    std::string s;
    StreamEventKind last = StreamEventKind::kToolCall;
    for (const StreamEvent& e : events) {
        if (e.kind == StreamEventKind::kToolCall) {
            s += "\x01C" + e.call.id + '\x02' + e.call.name + '\x02' + e.call.arguments_json;
        } else {
            if (e.kind != last) {
                s += e.kind == StreamEventKind::kText ? "\x01T" : "\x01R";
            }
            s += e.text;
        }
        last = e.kind;
    }
    return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) {
        return 0;
    }
    const uint8_t flags = data[0];
    const uint8_t seed = data[1];
    const std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);

    StreamParserOptions options;
    options.reasoning_markers = (flags & 1U) != 0
                                    ? helexa::text::MarkerPair{"[THINK]", "[/THINK]"}
                                    : helexa::text::MarkerPair{"<think>", "</think>"};
    options.starts_in_reasoning = (flags & 2U) != 0;
    options.include_thinking = (flags & 4U) != 0;
    options.tool_call_markers = {helexa::text::hermes_tool_call_markers()};
    if ((flags & 8U) != 0) {
        options.tool_call_markers.push_back({"<|tool▁call|>", "<|/tool▁call|>"});
    }
    options.tool_schemas = helexa::text::build_tool_schemas(nlohmann::json::parse(
        R"([{"type":"function","function":{"name":"f","parameters":{"properties":{
            "i":{"type":"integer"},"b":{"type":"boolean"},"o":{"type":"object"},
            "n":{"type":"number"},"a":{"type":"array"}}}}}])"));
    options.call_id_hex = "f0";

    std::vector<StreamEvent> whole;
    {
        StreamParser parser(options);
        parser.push(input, whole);
        parser.finish(whole);
    }
    std::vector<StreamEvent> chunked;
    {
        StreamParser parser(options);
        uint32_t state = seed * 2654435761U + 1U;
        std::size_t i = 0;
        while (i < input.size()) {
            state = state * 1664525U + 1013904223U;
            const std::size_t n = (state >> 24U) % 9U;
            const std::size_t take = n < input.size() - i ? n : input.size() - i;
            parser.push(input.substr(i, take), chunked);
            i += take;
        }
        parser.finish(chunked);
    }
    if (flatten(whole) != flatten(chunked)) {
        __builtin_trap();
    }
    return 0;
}
