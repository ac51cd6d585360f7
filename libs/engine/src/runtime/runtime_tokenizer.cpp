#include "helexa/engine/runtime_tokenizer.h"

namespace helexa::engine {

TokenTextDecoderFactory tokenizer_text_decoder_factory(text::Tokenizer tokenizer,
                                                       bool skip_special_tokens) {
    return [tokenizer = std::move(tokenizer), skip_special_tokens](const GenerateRequest&) {
        return std::make_unique<TokenizerTextDecoder>(
            tokenizer.streaming_decoder(skip_special_tokens));
    };
}

}  // namespace helexa::engine
