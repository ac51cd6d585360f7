#include "helexa/engine/parsed_text_stream.h"

#include "helexa/text/stream_parser.h"
#include "helexa/text/tool_call.h"

namespace helexa::engine {
namespace {

EngineEvent to_engine_event(text::StreamEvent ev) {
    EngineEvent out;
    switch (ev.kind) {
        case text::StreamEventKind::kText:
            out.kind = EngineEvent::Kind::kTextDelta;
            out.text = std::move(ev.text);
            break;
        case text::StreamEventKind::kReasoning:
            out.kind = EngineEvent::Kind::kReasoningDelta;
            out.text = std::move(ev.text);
            break;
        case text::StreamEventKind::kToolCall:
            out.kind = EngineEvent::Kind::kToolCall;
            out.tool_call = ToolCall{std::move(ev.call.id), std::move(ev.call.name),
                                     std::move(ev.call.arguments_json)};
            break;
    }
    return out;
}

class ParsedTextStream final : public TextStream {
public:
    ParsedTextStream(const ParsedTextStreamMarkers& markers, const GenerateRequest& request)
        : parser_(options(markers, request)),
          reasoning_(markers.reasoning),
          in_reasoning_(markers.reasoning && request.starts_in_reasoning) {}

    void on_token(int32_t id) override {
        if (!reasoning_) {
            return;
        }
        // By id when the markers are single tokens (exact); otherwise by the parser's state
        // before this token's text, which is exact up to a marker split across tokens.
        const bool by_id = reasoning_->open_id >= 0 && reasoning_->close_id >= 0;
        if (by_id) {
            if (id == reasoning_->open_id) {
                in_reasoning_ = true;
                return;
            }
            if (in_reasoning_) {
                ++reasoning_tokens_;
            }
            if (id == reasoning_->close_id) {
                in_reasoning_ = false;
            }
        } else if (parser_.in_reasoning()) {
            ++reasoning_tokens_;
        }
    }

    void push(std::string_view text, std::vector<EngineEvent>& out) override {
        scratch_.clear();
        parser_.push(text, scratch_);
        for (auto& ev : scratch_) {
            out.push_back(to_engine_event(std::move(ev)));
        }
    }

    void finish(FinishReason& reason, Usage& usage, std::vector<EngineEvent>& out) override {
        scratch_.clear();
        parser_.finish(scratch_);
        for (auto& ev : scratch_) {
            out.push_back(to_engine_event(std::move(ev)));
        }
        if (parser_.n_tool_calls() > 0 && reason == FinishReason::kStop) {
            reason = FinishReason::kToolCalls;
        }
        usage.reasoning_tokens = std::min(reasoning_tokens_, usage.completion_tokens);
    }

private:
    static text::StreamParserOptions options(const ParsedTextStreamMarkers& markers,
                                             const GenerateRequest& request) {
        text::StreamParserOptions opt;
        if (markers.reasoning) {
            opt.reasoning_markers = *markers.reasoning;
            opt.starts_in_reasoning = request.starts_in_reasoning;
        }
        if (markers.tool_call) {
            opt.tool_call_markers.push_back(*markers.tool_call);
            opt.tool_schemas = text::build_tool_schemas(request.tools);
        }
        return opt;
    }

    text::StreamParser parser_;
    std::optional<text::MarkerPair> reasoning_;
    bool in_reasoning_ = false;
    int64_t reasoning_tokens_ = 0;
    std::vector<text::StreamEvent> scratch_;
};

}  // namespace

TextStreamFactory parsed_text_stream_factory(ParsedTextStreamMarkers markers) {
    return [markers = std::move(markers)](const GenerateRequest& request) {
        return std::make_unique<ParsedTextStream>(markers, request);
    };
}

}  // namespace helexa::engine
