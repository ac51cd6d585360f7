#include "helexa/engine/stop_strings.h"

#include <algorithm>

namespace helexa::engine {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops) {
    for (auto& s : stops) {
        if (!s.empty()) {
            stops_.push_back(std::move(s));
        }
    }
}

StopStringMatcher::Output StopStringMatcher::push(std::string_view delta) {
    Output out;
    if (stopped_) {
        out.stopped = true;
        return out;
    }
    if (stops_.empty()) {
        out.text.assign(delta);
        return out;
    }
    std::string buf = std::move(pending_);
    pending_.clear();
    buf.append(delta);

    // Invariant: the held-back text contains no complete stop string. The stop that wins is the
    // one that completes first in the text (smallest end; on a tie the longer one), exactly as
    // if the text arrived one byte at a time, so the result never depends on token boundaries.
    size_t earliest = std::string::npos;
    size_t earliest_end = std::string::npos;
    for (const auto& stop : stops_) {
        const size_t pos = buf.find(stop);
        if (pos == std::string::npos) {
            continue;
        }
        const size_t end = pos + stop.size();
        if (end < earliest_end || (end == earliest_end && pos < earliest)) {
            earliest = pos;
            earliest_end = end;
        }
    }
    if (earliest != std::string::npos) {
        stopped_ = true;
        out.stopped = true;
        out.text = buf.substr(0, earliest);
        return out;
    }

    size_t hold = 0;
    for (const auto& stop : stops_) {
        const size_t max_k = std::min(stop.size() - 1, buf.size());
        for (size_t k = max_k; k > hold; --k) {
            if (std::string_view(buf).substr(buf.size() - k) ==
                std::string_view(stop).substr(0, k)) {
                hold = k;
                break;
            }
        }
    }
    pending_ = buf.substr(buf.size() - hold);
    buf.resize(buf.size() - hold);
    out.text = std::move(buf);
    return out;
}

std::string StopStringMatcher::flush() {
    if (stopped_) {
        return {};
    }
    std::string out = std::move(pending_);
    pending_.clear();
    return out;
}

}  // namespace helexa::engine
