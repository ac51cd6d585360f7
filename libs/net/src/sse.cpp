// SSE parsing per the WHATWG EventSource rules, byte at a time so any split point of the input
// gives the same events.
#include "helexa/net/sse.h"

namespace helexa::net {

namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

bool all_digits(std::string_view s) {
    if (s.empty() || s.size() > 18) {  // 18 digits always fit int64_t
        return false;
    }
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
    }
    return true;
}

}  // namespace

void SseParser::feed(std::string_view bytes, std::vector<SseEvent>& out) {
    for (char c : bytes) {
        if (!bom_checked_) {
            bom_pending_.push_back(c);
            if (kBom.substr(0, bom_pending_.size()) == bom_pending_) {
                if (bom_pending_.size() == kBom.size()) {
                    bom_checked_ = true;  // a whole BOM: drop it
                    bom_pending_.clear();
                }
                continue;
            }
            // Not a BOM after all: replay the held bytes as ordinary input.
            bom_checked_ = true;
            std::string held = std::move(bom_pending_);
            bom_pending_.clear();
            for (char h : held) {
                feed_byte(h, out);
            }
            continue;
        }
        feed_byte(c, out);
    }
}

void SseParser::feed_byte(char c, std::vector<SseEvent>& out) {
    if (c == '\n') {
        if (last_was_cr_) {
            last_was_cr_ = false;  // second half of \r\n: the line already ended at \r
            return;
        }
        process_line(line_, out);
        line_.clear();
        return;
    }
    last_was_cr_ = false;
    if (c == '\r') {
        last_was_cr_ = true;
        process_line(line_, out);
        line_.clear();
        return;
    }
    line_.push_back(c);
}

std::vector<SseEvent> SseParser::feed(std::string_view bytes) {
    std::vector<SseEvent> out;
    feed(bytes, out);
    return out;
}

void SseParser::finish(std::vector<SseEvent>& out) {
    if (!bom_checked_) {
        bom_checked_ = true;
        std::string held = std::move(bom_pending_);
        bom_pending_.clear();
        // A strict prefix of the BOM at end of input is ordinary text, not a BOM.
        for (char h : held) {
            feed_byte(h, out);
        }
    }
    if (!line_.empty()) {
        process_line(line_, out);
        line_.clear();
    }
    last_was_cr_ = false;
    dispatch(out);
}

std::vector<SseEvent> SseParser::finish() {
    std::vector<SseEvent> out;
    finish(out);
    return out;
}

void SseParser::process_line(std::string_view line, std::vector<SseEvent>& out) {
    if (line.empty()) {
        dispatch(out);
        return;
    }
    if (line.front() == ':') {
        ++comments_;
        return;
    }
    std::string_view field = line;
    std::string_view value;
    if (auto colon = line.find(':'); colon != std::string_view::npos) {
        field = line.substr(0, colon);
        value = line.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') {
            value.remove_prefix(1);
        }
    }
    if (field == "data") {
        data_.append(value);
        data_.push_back('\n');
        has_data_ = true;
    } else if (field == "event") {
        event_.assign(value);
    } else if (field == "id") {
        if (value.find('\0') == std::string_view::npos) {
            id_ = std::string(value);
        }
    } else if (field == "retry") {
        if (all_digits(value)) {
            retry_ = std::stoll(std::string(value));
        }
    }
    // Unknown fields are ignored, as EventSource does.
}

void SseParser::dispatch(std::vector<SseEvent>& out) {
    if (has_data_) {
        SseEvent ev;
        ev.event = std::move(event_);
        data_.pop_back();  // the '\n' appended after the last data line
        ev.data = std::move(data_);
        ev.id = std::move(id_);
        ev.retry = retry_;
        out.push_back(std::move(ev));
    }
    event_.clear();
    data_.clear();
    has_data_ = false;
    id_.reset();
    retry_.reset();
}

std::string format_sse_event(std::string_view data, std::string_view name) {
    std::string out;
    out.reserve(data.size() + name.size() + 16);
    if (!name.empty()) {
        out.append("event: ").append(name).push_back('\n');
    }
    size_t start = 0;
    for (;;) {
        size_t end = data.find_first_of("\r\n", start);
        std::string_view line =
            data.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
        out.append("data: ").append(line).push_back('\n');
        if (end == std::string_view::npos) {
            break;
        }
        start = end + 1;
        if (data[end] == '\r' && start < data.size() && data[start] == '\n') {
            ++start;
        }
    }
    out.push_back('\n');
    return out;
}

std::string format_sse_comment(std::string_view text) {
    std::string out = ": ";
    for (char c : text) {
        out.push_back(c == '\r' || c == '\n' ? ' ' : c);
    }
    out.append("\n\n");
    return out;
}

}  // namespace helexa::net
