// Tokenizer: an exact reimplementation of HuggingFace `tokenizers` for the models we serve, loaded
// from a snapshot's tokenizer.json (+ tokenizer_config.json, generation_config.json).
//
// Supports BPE models with byte-level pre-tokenisation/decoding (Qwen2/2.5/3, Llama 3, DeepSeek V3,
// gpt-oss) and SentencePiece-style BPE with byte fallback (Llama 2, Gemma); the normalizers
// (NFC, NFD, Sequence, Prepend, Replace, Strip), pre-tokenizers (Split, ByteLevel, Metaspace,
// Digits, Whitespace, WhitespaceSplit, Sequence), added/special tokens (lstrip, rstrip,
// normalized, single_word), post-processors (TemplateProcessing, ByteLevel, Bert, Roberta,
// Sequence) and decoders (ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence)
// those models use. Anything else fails at load with a kConfig error naming the component.
//
// When to use: load once per model (from_dir), share the `Tokenizer` (a cheap handle to immutable
// state) across threads, create one `StreamingDecoder` per request for incremental detokenisation.
//
// Thread-safety: every const member function of Tokenizer may be called concurrently. A
// StreamingDecoder is a per-request object: use it from one thread at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "helexa/common/result.h"

namespace helexa::text {

namespace detail {
struct TokenizerImpl;
}

// Special tokens resolved from tokenizer_config.json and generation_config.json. Ids are present
// only when the token string exists in the vocabulary.
struct SpecialTokens {
    std::optional<std::string> bos_token;
    std::optional<int32_t> bos_id;
    std::optional<std::string> eos_token;
    std::optional<int32_t> eos_id;
    std::optional<std::string> pad_token;
    std::optional<int32_t> pad_id;
    std::optional<std::string> unk_token;
    std::optional<int32_t> unk_id;
    bool add_bos_token = false;  // tokenizer_config.json `add_bos_token` (transformers' view)
    bool add_eos_token = false;
    // Every id that ends generation: generation_config.json `eos_token_id` (int or list) first,
    // then the tokenizer config's eos token, deduplicated, in that order.
    std::vector<int32_t> eos_ids;
};

// Paths of the files a tokenizer is built from. Only tokenizer_json is required.
struct TokenizerFiles {
    std::filesystem::path tokenizer_json;
    std::optional<std::filesystem::path> tokenizer_config_json;
    std::optional<std::filesystem::path> generation_config_json;
};

class StreamingDecoder;

class Tokenizer {
public:
    // Loads tokenizer.json, and tokenizer_config.json / generation_config.json when present in
    // `dir`. Errors: kIo (missing/unreadable file), kConfig (bad JSON or unsupported component).
    [[nodiscard]] static Result<Tokenizer> from_dir(const std::filesystem::path& dir);
    [[nodiscard]] static Result<Tokenizer> from_files(const TokenizerFiles& files);
    // From file contents; empty config strings mean "absent".
    [[nodiscard]] static Result<Tokenizer> from_json(std::string_view tokenizer_json,
                                                     std::string_view tokenizer_config_json = {},
                                                     std::string_view generation_config_json = {});

    // Token ids for `text`, as `tokenizers`' Tokenizer.encode(text, add_special_tokens).ids.
    // Invalid UTF-8 in `text` is first replaced by U+FFFD (one per maximal invalid subpart).
    [[nodiscard]] std::vector<int32_t> encode(std::string_view text,
                                              bool add_special_tokens) const;
    // Appends to `out` (reuse one vector across calls to avoid allocation).
    void encode_into(std::string_view text, bool add_special_tokens,
                     std::vector<int32_t>& out) const;

    // Text for `ids`, as `tokenizers`' Tokenizer.decode. Unknown ids are skipped.
    [[nodiscard]] std::string decode(std::span<const int32_t> ids,
                                     bool skip_special_tokens) const;

    [[nodiscard]] std::optional<int32_t> token_to_id(std::string_view token) const;
    // The token's string as stored in the vocabulary (byte-level tokens in their mapped form).
    [[nodiscard]] std::optional<std::string> id_to_token(int32_t id) const;
    // Size including added tokens: one past the highest id.
    [[nodiscard]] int32_t vocab_size() const;
    // Whether `id` is an added token marked special (skipped by skip_special_tokens).
    [[nodiscard]] bool is_special(int32_t id) const;
    // Contents of every added token (special or not), in id order.
    [[nodiscard]] std::vector<std::pair<int32_t, std::string>> added_tokens() const;

    [[nodiscard]] const SpecialTokens& special_tokens() const;

    // A fresh per-request streaming decoder bound to this tokenizer.
    [[nodiscard]] StreamingDecoder streaming_decoder(bool skip_special_tokens) const;

private:
    friend class StreamingDecoder;
    explicit Tokenizer(std::shared_ptr<const detail::TokenizerImpl> impl);
    std::shared_ptr<const detail::TokenizerImpl> impl_;
};

// Incremental detokeniser for one generation stream. push() returns only text that ends at a
// complete UTF-8 code point; bytes of an unfinished character (byte-level or byte-fallback
// tokens) are held until the character completes. Bytes that can never form a valid character
// are emitted as U+FFFD, one per maximal invalid subpart (as decode() does for byte-level
// models). For valid output the concatenation of push() results and finish() equals
// Tokenizer::decode of all ids.
class StreamingDecoder {
public:
    // Text made complete by `id` (possibly empty).
    [[nodiscard]] std::string push(int32_t id);
    // Flushes held bytes (an unfinished character becomes U+FFFD). The decoder is then reset.
    [[nodiscard]] std::string finish();
    // Bytes currently held back waiting for the rest of a character.
    [[nodiscard]] size_t pending_bytes() const { return pending_.size(); }

private:
    friend class Tokenizer;
    StreamingDecoder(std::shared_ptr<const detail::TokenizerImpl> impl, bool skip_special);
    void emit_bytes(std::string_view bytes, std::string& out);

    std::shared_ptr<const detail::TokenizerImpl> impl_;
    bool skip_special_;
    std::string pending_;      // incomplete UTF-8 tail
    int64_t n_tokens_ = 0;     // tokens passed to the decoder chain (after skipping)
    int64_t n_stripped_ = 0;   // leading chars removed by a Strip decoder so far
    bool emitted_text_ = false;
};

}  // namespace helexa::text
