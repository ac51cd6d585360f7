#include "helexa/engine/runtime_text.h"

namespace helexa::engine {

void PassThroughTextStream::push(std::string_view text, std::vector<EngineEvent>& out) {
    if (text.empty()) {
        return;
    }
    EngineEvent ev;
    ev.kind = EngineEvent::Kind::kTextDelta;
    ev.text.assign(text);
    out.push_back(std::move(ev));
}

void PassThroughTextStream::finish(FinishReason& reason, Usage& usage,
                                   std::vector<EngineEvent>& out) {
    (void)reason;
    (void)usage;
    (void)out;
}

TextStreamFactory pass_through_text_stream_factory() {
    return [](const GenerateRequest&) { return std::make_unique<PassThroughTextStream>(); };
}

}  // namespace helexa::engine
