// Adapter from the model's tokenizer (libs/text) to the scheduler's per-request
// TokenTextDecoder: each request gets its own text::StreamingDecoder, which never splits a UTF-8
// character across deltas.
// When to use: pass tokenizer_text_decoder_factory(tokenizer) as RuntimeModelParts::text_decoder.
// Thread-safety: the factory may be called from any thread (the Tokenizer is immutable and
// shared); each decoder belongs to one request on the scheduler thread.
#pragma once

#include "helexa/engine/runtime_text.h"
#include "helexa/text/tokenizer.h"

namespace helexa::engine {

class TokenizerTextDecoder final : public TokenTextDecoder {
public:
    explicit TokenizerTextDecoder(text::StreamingDecoder decoder) : decoder_(std::move(decoder)) {}
    std::string push(int32_t id) override { return decoder_.push(id); }
    std::string flush() override { return decoder_.finish(); }

private:
    text::StreamingDecoder decoder_;
};

// Completion text skips special tokens by default, as the original did (skip_special_tokens).
TokenTextDecoderFactory tokenizer_text_decoder_factory(text::Tokenizer tokenizer,
                                                       bool skip_special_tokens = true);

}  // namespace helexa::engine
