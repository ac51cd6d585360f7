// Internal pieces of the tokenizer: the pipeline stages of HuggingFace `tokenizers`
// (added vocabulary -> normalizer -> pre-tokenizer -> BPE model -> post-processor; decoder).
// Everything here is immutable after load except the BPE word cache, which is internally
// synchronised. Thread-safety: const members may be called concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "helexa/common/result.h"
#include "helexa/text/tokenizer.h"

namespace helexa::text::detail {

struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// A compiled PCRE2 pattern (UTF + UCP, JIT when available). Immutable and shareable.
class Regex {
public:
    static Result<std::shared_ptr<const Regex>> compile(std::string_view pattern);
    static std::string escape(std::string_view literal);
    ~Regex();
    Regex(const Regex&) = delete;
    Regex& operator=(const Regex&) = delete;

    // Finds the first non-empty match at or after `offset` (a char boundary) in valid UTF-8
    // `text`. Returns false when there is none (or the engine fails, e.g. a resource limit).
    bool next_match(std::string_view text, size_t offset, size_t& start, size_t& end) const;
    // Calls on_match(start, end) for every non-empty, non-overlapping match, left to right.
    template <typename F>
    void for_each_match(std::string_view text, F&& on_match) const {
        size_t offset = 0;
        size_t start = 0;
        size_t end = 0;
        while (offset < text.size() && next_match(text, offset, start, end)) {
            on_match(start, end);
            offset = end;
        }
    }
    // Whether the pattern matches anywhere in `text`.
    bool search(std::string_view text) const;

private:
    Regex() = default;
    void* code_ = nullptr;  // pcre2_code_8*
    bool jit_ = false;
};

// GPT-2 byte <-> printable-char mapping used by byte-level BPE.
struct ByteLevelMap {
    static constexpr char32_t kMaxChar = 0x144;  // the highest mapped char is U+0143
    std::array<char32_t, 256> byte_to_char{};
    std::array<int16_t, kMaxChar> char_to_byte{};  // -1 when the char is not mapped
    static const ByteLevelMap& get();
};
// Raw bytes of a byte-level token string, or nullopt if a char is outside the mapping.
std::optional<std::string> byte_level_decode_token(std::string_view token);

// ---- Normalizers ---------------------------------------------------------------------------
class Normalizer {
public:
    virtual ~Normalizer() = default;
    virtual void normalize(std::string& s) const = 0;
};
Result<std::unique_ptr<Normalizer>> make_normalizer(const nlohmann::json& j);

// ---- Pre-tokenizers ------------------------------------------------------------------------
// Owned storage for pieces a pre-tokenizer had to rewrite (prefix spaces, replacements).
using PieceArena = std::deque<std::string>;

class PreTokenizer {
public:
    virtual ~PreTokenizer() = default;
    // Splits `piece` and appends the resulting non-empty pieces to `out`. `at_start` is true for
    // the piece that begins the input text (Metaspace prepend_scheme "first").
    virtual void split(std::string_view piece, bool at_start, std::vector<std::string_view>& out,
                       PieceArena& arena) const = 0;
};
struct PreTokenizerChain {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    bool byte_level = false;  // a ByteLevel step (must be last) maps bytes for the model
};
Result<PreTokenizerChain> make_pre_tokenizer(const nlohmann::json& j);

// ---- BPE model -----------------------------------------------------------------------------
class MergeTable {
public:
    void reserve(size_t n);
    void insert(int32_t a, int32_t b, int32_t rank, int32_t new_id);
    // Returns false when (a, b) is not a merge.
    bool find(int32_t a, int32_t b, int32_t& rank, int32_t& new_id) const {
        if (slots_.empty()) {
            return false;
        }
        const uint64_t key = pack(a, b);
        size_t i = hash(key);
        while (true) {
            const Slot& s = slots_[i];
            if (s.key == key) {
                rank = s.rank;
                new_id = s.new_id;
                return true;
            }
            if (s.key == kEmpty) {
                return false;
            }
            i = (i + 1) & mask_;
        }
    }

private:
    static constexpr uint64_t kEmpty = ~0ULL;
    struct Slot {
        uint64_t key = kEmpty;
        int32_t rank = 0;
        int32_t new_id = 0;
    };
    static uint64_t pack(int32_t a, int32_t b) {
        return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
    }
    size_t hash(uint64_t key) const { return (key * 0x9E3779B97F4A7C15ULL) >> shift_; }
    std::vector<Slot> slots_;
    size_t mask_ = 0;
    int shift_ = 64;
};

class BpeModel {
public:
    static Result<std::unique_ptr<BpeModel>> from_json(const nlohmann::json& model,
                                                       bool byte_level);
    // Appends the ids of one pre-tokenized word. For byte-level models `word` is raw bytes.
    void tokenize(std::string_view word, std::vector<int32_t>& out) const;

    std::optional<int32_t> token_to_id(std::string_view token) const;
    const std::string* id_to_token(int32_t id) const;
    int32_t size() const { return static_cast<int32_t>(id_to_token_.size()); }
    bool byte_level() const { return byte_level_; }
    std::optional<int32_t> unk_id() const { return unk_id_; }

private:
    void tokenize_piece(std::string_view word, std::vector<int32_t>& out) const;
    void merge_word(std::string_view word, std::vector<int32_t>& out) const;
    bool cache_lookup(std::string_view word, size_t hash, std::vector<int32_t>& out) const;
    void cache_store(std::string_view word, size_t hash, const int32_t* ids, size_t n) const;

    TokenMap vocab_;
    std::vector<std::string> id_to_token_;
    TokenMap raw_vocab_;  // byte-level: raw bytes -> id (for ignore_merges)
    std::array<int32_t, 256> byte_id_{};       // byte-level: id of each single byte
    std::array<int32_t, 256> fallback_id_{};   // byte_fallback: id of "<0xXX>"
    std::array<int32_t, 128> ascii_id_{};      // id of each one-char ASCII token, or -1
    MergeTable merges_;
    bool byte_level_ = false;
    bool byte_fallback_ = false;
    bool fuse_unk_ = false;
    bool ignore_merges_ = false;
    std::optional<int32_t> unk_id_;
    std::string continuing_prefix_;
    std::string end_suffix_;
    std::string split_marker_;  // non-empty: words are cut before it (see from_json)

    static constexpr size_t kCacheShards = 16;
    static constexpr size_t kCacheMaxPerShard = 8192;
    static constexpr size_t kCacheMaxWordLen = 256;
    struct CacheShard {
        std::mutex mu;
        std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
    };
    mutable std::array<CacheShard, kCacheShards> cache_;
};

// ---- Added vocabulary ----------------------------------------------------------------------
struct AddedToken {
    int32_t id = 0;
    std::string content;
    bool single_word = false;
    bool lstrip = false;
    bool rstrip = false;
    bool normalized = false;
    bool special = false;
};

// One piece of the input after splitting on added tokens: an added token id, or text.
struct Segment {
    std::string_view text;
    int32_t added_id = -1;  // >= 0: this segment is the added token
};

// Leftmost-longest matcher over a set of added tokens (a byte trie).
class AddedMatcher {
public:
    void build(const std::vector<AddedToken>& tokens, const std::vector<size_t>& which,
               const std::vector<std::string>& patterns);
    bool empty() const { return nodes_.size() <= 1; }
    // Splits `text`, appending segments to `out` (HF AddedVocabulary::find_matches semantics).
    void split(std::string_view text, const std::vector<AddedToken>& tokens,
               std::vector<Segment>& out) const;

private:
    struct Node {
        int32_t token = -1;  // index into tokens, or -1
        std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    };
    int32_t child(int32_t node, uint8_t b) const;
    std::vector<Node> nodes_{Node{}};
    std::array<bool, 256> first_byte_{};
};

// ---- Post-processor ------------------------------------------------------------------------
struct PostProcessor {
    // Ids around the sequence for a single input when add_special_tokens is true.
    std::vector<int32_t> prefix;
    std::vector<int32_t> suffix;
};

// ---- Decoder -------------------------------------------------------------------------------
enum class DecodeStep { kByteLevel, kMetaspace, kReplace, kByteFallback, kFuse, kStrip };
struct DecoderStep {
    DecodeStep kind = DecodeStep::kFuse;
    std::string pattern;  // Replace: literal pattern; Metaspace: replacement char
    std::string content;  // Replace: replacement; Strip: the char stripped
    int64_t start = 0;    // Strip
    int64_t stop = 0;     // Strip
    bool prepend = true;  // Metaspace: strip the first token's leading space
};
struct DecoderChain {
    std::vector<DecoderStep> steps;
    bool present = false;  // false: tokens joined with " " (HF behaviour without a decoder)
};
Result<DecoderChain> make_decoder(const nlohmann::json& j);
// HF decode_chain + join over token strings.
std::string run_decoder(const DecoderChain& chain, std::vector<std::string> tokens);

// ---- The whole tokenizer -------------------------------------------------------------------
struct TokenizerImpl {
    std::unique_ptr<BpeModel> model;
    std::vector<std::unique_ptr<Normalizer>> normalizers;  // applied in order
    PreTokenizerChain pre_tokenizer;
    PostProcessor post;
    bool has_post = false;
    DecoderChain decoder;

    std::vector<AddedToken> added;          // as listed in tokenizer.json
    TokenMap added_by_content;              // content -> id
    std::unordered_map<int32_t, size_t> added_by_id;  // id -> index into added
    AddedMatcher raw_matcher;               // tokens with normalized == false
    AddedMatcher normalized_matcher;        // tokens with normalized == true
    std::vector<uint8_t> special_flag;      // per id: 1 when a special added token
    int32_t vocab_size = 0;

    SpecialTokens specials;

    void encode(std::string_view text, bool add_special, std::vector<int32_t>& out) const;
    void encode_text(std::string_view text, bool at_start, std::vector<int32_t>& out) const;
    std::string normalize(std::string_view text) const;
    const std::string* token_string(int32_t id) const;
    bool is_special(int32_t id) const {
        return id >= 0 && static_cast<size_t>(id) < special_flag.size() && special_flag[id] != 0;
    }
};

}  // namespace helexa::text::detail
