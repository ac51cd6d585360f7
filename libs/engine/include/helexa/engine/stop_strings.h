// Streaming stop-string detection over generated text.
// When to use: one StopStringMatcher per request, fed each decoded text delta in order. It never
// emits any part of a stop string: text that could still become the start of a stop string (the
// longest suffix of the pending text that is a prefix of some stop string) is held back until
// the next delta settles it or flush() releases it at the end of generation. When stops overlap,
// the one that completes first in the text wins, so the output never depends on where token
// boundaries fall.
// Thread-safety: none; owned by one request on the scheduler thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace helexa::engine {

class StopStringMatcher {
public:
    StopStringMatcher() = default;
    // Empty strings are ignored.
    explicit StopStringMatcher(std::vector<std::string> stops);

    struct Output {
        std::string text;      // safe to emit now
        bool stopped = false;  // a stop string completed; `text` ends just before it
    };

    // Feeds the next delta. After a stop, further input is ignored.
    Output push(std::string_view delta);

    // End of generation without a stop: returns the held-back text.
    std::string flush();

    bool stopped() const { return stopped_; }
    bool empty() const { return stops_.empty(); }

private:
    std::vector<std::string> stops_;
    std::string pending_;  // held-back text (a possible stop-string prefix)
    bool stopped_ = false;
};

}  // namespace helexa::engine
