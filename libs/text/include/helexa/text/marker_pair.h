// MarkerPair: a pair of literal markers that bracket a span of generated text, e.g.
// {"<think>", "</think>"} or {"<tool_call>", "</tool_call>"}. The vocabulary probe fills the
// token ids when each marker is a single token; the stream parsers only need the strings.
// Both strings empty means "not configured".
// Thread-safety: plain value.
#pragma once

#include <cstdint>
#include <string>

namespace helexa::text {

struct MarkerPair {
    std::string open;
    std::string close;
    int32_t open_id = -1;   // -1 when unknown (not probed, or not a single token)
    int32_t close_id = -1;
    bool empty() const { return open.empty() || close.empty(); }
};

}  // namespace helexa::text
