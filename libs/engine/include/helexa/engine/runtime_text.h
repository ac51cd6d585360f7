// The two per-request text stages between sampled token ids and engine events.
//   TokenTextDecoder: ids -> UTF-8 text deltas (streaming; never splits a character). The real
//     one wraps the model's tokenizer (libs/text); tests use a table.
//   TextStream: raw completion text (already cut at stop strings) -> events. The pass-through
//     stage emits kTextDelta; the reasoning / tool-call parser replaces it (it may also turn
//     the finish reason into kToolCalls and fill usage.reasoning_tokens).
// Both are created per request by factories, owned by the scheduler thread, never shared.
// Thread-safety: instances are single-threaded; factories may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "helexa/engine/serving.h"

namespace helexa::engine {

class TokenTextDecoder {
public:
    virtual ~TokenTextDecoder() = default;
    // Text completed by this token (may be empty while a multi-byte character is pending).
    // Special tokens decode to "" when the decoder skips them.
    virtual std::string push(int32_t id) = 0;
    // Whatever is still pending at the end of generation.
    virtual std::string flush() = 0;
};

using TokenTextDecoderFactory =
    std::function<std::unique_ptr<TokenTextDecoder>(const GenerateRequest&)>;

class TextStream {
public:
    virtual ~TextStream() = default;
    // Called once per sampled token, before the text that token produced is pushed (lets a
    // parser count reasoning tokens or react to marker ids).
    virtual void on_token(int32_t id) { (void)id; }
    // Consumes the next piece of raw completion text; appends events to `out`.
    virtual void push(std::string_view text, std::vector<EngineEvent>& out) = 0;
    // End of generation (not called on cancel or error): flushes held text, and may adjust
    // the finish reason and usage before the scheduler emits kFinish.
    virtual void finish(FinishReason& reason, Usage& usage, std::vector<EngineEvent>& out) = 0;
};

using TextStreamFactory = std::function<std::unique_ptr<TextStream>(const GenerateRequest&)>;

// Emits every non-empty piece as one kTextDelta; changes nothing at finish.
class PassThroughTextStream final : public TextStream {
public:
    void push(std::string_view text, std::vector<EngineEvent>& out) override;
    void finish(FinishReason& reason, Usage& usage, std::vector<EngineEvent>& out) override;
};

TextStreamFactory pass_through_text_stream_factory();

}  // namespace helexa::engine
