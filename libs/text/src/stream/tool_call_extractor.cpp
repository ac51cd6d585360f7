#include "helexa/text/tool_call_extractor.h"

#include <cctype>
#include <utility>

#include "marker_scan.h"

namespace helexa::text {

ToolCallExtractor::ToolCallExtractor(std::vector<MarkerPair> markers, ToolSchemas schemas,
                                     std::string id_hex)
    : schemas_(std::move(schemas)), id_hex_(std::move(id_hex)) {
    for (MarkerPair& pair : markers) {
        if (!pair.empty()) {
            markers_.push_back(std::move(pair));
        }
    }
    // Views into markers_, which is never resized after this point.
    for (const MarkerPair& pair : markers_) {
        opens_.emplace_back(pair.open);
    }
}

void ToolCallExtractor::push(std::string_view text, std::vector<StreamEvent>& out) {
    if (markers_.empty()) {
        append_stream_text(out, StreamEventKind::kText, text);
        return;
    }
    pending_.append(text);
    process(out);
}

void ToolCallExtractor::process(std::vector<StreamEvent>& out) {
    for (;;) {
        if (active_ < 0) {
            process_text(out);
            if (active_ < 0) {
                return;
            }
        }
        if (!process_call(out)) {
            return;
        }
    }
}

void ToolCallExtractor::process_text(std::vector<StreamEvent>& out) {
    const detail::MarkerHit hit = detail::scan_markers(pending_, opens_);
    append_stream_text(out, StreamEventKind::kText, std::string_view(pending_).substr(0, hit.pos));
    if (hit.marker < 0) {
        pending_.erase(0, hit.pos);
        return;
    }
    pending_.erase(0, hit.pos + opens_[static_cast<std::size_t>(hit.marker)].size());
    active_ = hit.marker;
    scan_pos_ = 0;
    mode_ = BodyMode::kUnknown;
    depth_ = 0;
    in_string_ = false;
    escape_ = false;
    json_done_ = false;
}

bool ToolCallExtractor::process_call(std::vector<StreamEvent>& out) {
    const std::string_view close = markers_[static_cast<std::size_t>(active_)].close;
    const std::string_view body = pending_;
    std::size_t i = scan_pos_;
    for (; i < body.size(); ++i) {
        const bool in_json_string = mode_ == BodyMode::kJson && !json_done_ && in_string_;
        if (!in_json_string) {
            const std::string_view tail = body.substr(i);
            if (tail.size() >= close.size()) {
                if (tail.substr(0, close.size()) == close) {
                    close_call(body.substr(0, i), false, out);
                    pending_.erase(0, i + close.size());
                    active_ = -1;
                    return true;
                }
            } else if (close.substr(0, tail.size()) == tail) {
                break;  // a close marker may be arriving: wait, without consuming byte i
            }
        }
        const char c = body[i];
        if (mode_ == BodyMode::kUnknown) {
            if (std::isspace(static_cast<unsigned char>(c)) != 0) {
                continue;
            }
            mode_ = c == '{' ? BodyMode::kJson : BodyMode::kPlain;
        }
        if (mode_ != BodyMode::kJson || json_done_) {
            continue;
        }
        // Track JSON strings and depth so a close marker inside a string is not a close.
        if (in_string_) {
            if (escape_) {
                escape_ = false;
            } else if (c == '\\') {
                escape_ = true;
            } else if (c == '"') {
                in_string_ = false;
            }
        } else if (c == '"') {
            in_string_ = true;
        } else if (c == '{' || c == '[') {
            ++depth_;
        } else if (c == '}' || c == ']') {
            if (--depth_ <= 0) {
                json_done_ = true;
            }
        }
    }
    scan_pos_ = i;
    return false;
}

void ToolCallExtractor::close_call(std::string_view body, bool at_end,
                                   std::vector<StreamEvent>& out) {
    const MarkerPair& pair = markers_[static_cast<std::size_t>(active_)];
    bool blank = true;
    for (const char c : body) {
        if (std::isspace(static_cast<unsigned char>(c)) == 0) {
            blank = false;
            break;
        }
    }
    if (blank && !at_end) {
        return;  // <tool_call></tool_call>: nothing to call, nothing worth showing
    }
    if (std::optional<ParsedToolCall> parsed = parse_tool_call_body(body, schemas_, at_end)) {
        StreamEvent event;
        event.kind = StreamEventKind::kToolCall;
        event.call.index = n_calls_;
        event.call.id = "call_" + id_hex_ + "_" + std::to_string(n_calls_);
        event.call.name = std::move(parsed->name);
        event.call.arguments_json = std::move(parsed->arguments_json);
        out.push_back(std::move(event));
        ++n_calls_;
        return;
    }
    // Unparseable: give the raw block back as text so nothing is lost.
    append_stream_text(out, StreamEventKind::kText, pair.open);
    append_stream_text(out, StreamEventKind::kText, body);
    if (!at_end) {
        append_stream_text(out, StreamEventKind::kText, pair.close);
    }
}

void ToolCallExtractor::finish(std::vector<StreamEvent>& out) {
    if (active_ >= 0) {
        close_call(pending_, true, out);
        active_ = -1;
    } else {
        append_stream_text(out, StreamEventKind::kText, pending_);
    }
    pending_.clear();
}

}  // namespace helexa::text
