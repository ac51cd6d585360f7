#include "helexa/text/stream_parser.h"

#include <cstdio>
#include <random>
#include <utility>

namespace helexa::text {

namespace {

std::string random_hex() {
    std::random_device device;
    const uint64_t value = (static_cast<uint64_t>(device()) << 32U) ^ device();
    char buf[17];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(value));
    return std::string(buf, 16);
}

}  // namespace

MarkerPair hermes_tool_call_markers() {
    return MarkerPair{"<tool_call>", "</tool_call>"};
}

StreamParser::StreamParser(StreamParserOptions options)
    : router_(options.reasoning_markers, options.starts_in_reasoning),
      extractor_(std::move(options.tool_call_markers), std::move(options.tool_schemas),
                 options.call_id_hex.empty() ? random_hex() : options.call_id_hex),
      include_thinking_(options.include_thinking && !options.reasoning_markers.empty()) {}

void StreamParser::close_wrap(std::vector<StreamEvent>& out) {
    if (wrap_open_) {
        append_stream_text(out, StreamEventKind::kText, router_.markers().close);
        wrap_open_ = false;
    }
}

void StreamParser::route(std::vector<StreamEvent>& routed, std::vector<StreamEvent>& out) {
    for (StreamEvent& piece : routed) {
        if (piece.kind == StreamEventKind::kReasoning) {
            reasoning_bytes_ += static_cast<int64_t>(piece.text.size());
            if (!include_thinking_) {
                append_stream_text(out, StreamEventKind::kReasoning, piece.text);
                continue;
            }
            if (!wrap_open_) {
                append_stream_text(out, StreamEventKind::kText, router_.markers().open);
                wrap_open_ = true;
            }
            append_stream_text(out, StreamEventKind::kText, piece.text);
            continue;
        }
        // Text: close a pending wrap only once the extractor actually emits something, so the
        // close marker lands exactly before the next visible output.
        if (!wrap_open_) {
            extractor_.push(piece.text, out);
            continue;
        }
        std::vector<StreamEvent> tmp;
        extractor_.push(piece.text, tmp);
        if (!tmp.empty()) {
            close_wrap(out);
            for (StreamEvent& e : tmp) {
                if (e.kind == StreamEventKind::kToolCall) {
                    out.push_back(std::move(e));
                } else {
                    append_stream_text(out, e.kind, e.text);
                }
            }
        }
    }
    routed.clear();
}

void StreamParser::push(std::string_view delta, std::vector<StreamEvent>& out) {
    scratch_.clear();
    router_.push(delta, scratch_);
    route(scratch_, out);
}

std::vector<StreamEvent> StreamParser::push(std::string_view delta) {
    std::vector<StreamEvent> out;
    push(delta, out);
    return out;
}

void StreamParser::finish(std::vector<StreamEvent>& out) {
    scratch_.clear();
    router_.finish(scratch_);
    route(scratch_, out);
    std::vector<StreamEvent> tail;
    extractor_.finish(tail);
    if (!tail.empty()) {
        close_wrap(out);
    }
    for (StreamEvent& e : tail) {
        if (e.kind == StreamEventKind::kToolCall) {
            out.push_back(std::move(e));
        } else {
            append_stream_text(out, e.kind, e.text);
        }
    }
    close_wrap(out);
}

std::vector<StreamEvent> StreamParser::finish() {
    std::vector<StreamEvent> out;
    finish(out);
    return out;
}

}  // namespace helexa::text
