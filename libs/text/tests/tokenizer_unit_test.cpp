// Unit tests of the tokenizer pipeline on small synthetic tokenizer.json documents (merge order,
// byte fallback, added-token rules, split behaviours, NFC, errors), plus special-token
// handling and vocabulary probes on the real Qwen3 tokenizer.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "helexa/text/tokenizer.h"
#include "helexa/text/tokenizer_probes.h"
#include "tokenizer_test_util.h"

namespace helexa::text {
namespace {

using nlohmann::json;

// A char-level BPE over a small vocabulary; `extra` is merged into the document.
json base_doc(json vocab, json merges) {
    return json{{"version", "1.0"},
                {"added_tokens", json::array()},
                {"normalizer", nullptr},
                {"pre_tokenizer", nullptr},
                {"post_processor", nullptr},
                {"decoder", nullptr},
                {"model",
                 {{"type", "BPE"},
                  {"unk_token", "<unk>"},
                  {"fuse_unk", true},
                  {"byte_fallback", true},
                  {"vocab", std::move(vocab)},
                  {"merges", std::move(merges)}}}};
}

Tokenizer load(const json& doc, const json& config = nullptr, const json& gen = nullptr) {
    auto t = Tokenizer::from_json(doc.dump(), config.is_null() ? "" : config.dump(),
                                  gen.is_null() ? "" : gen.dump());
    EXPECT_TRUE(t.has_value()) << (t ? "" : t.error().full_message());
    return std::move(*t);
}

using Ids = std::vector<int32_t>;

TEST(TokenizerBpe, MergesLowestRankFirst) {
    const json vocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}, {"abc", 5},
                        {"<unk>", 6}};
    EXPECT_EQ(load(base_doc(vocab, {"b c", "a b", "ab c"})).encode("abc", false), (Ids{0, 4}));
    EXPECT_EQ(load(base_doc(vocab, {"a b", "b c", "ab c"})).encode("abc", false), (Ids{5}));
    // Array-form merges are accepted too.
    EXPECT_EQ(load(base_doc(vocab, json::array({json::array({"a", "b"}),
                                                json::array({"ab", "c"})})))
                  .encode("abcab", false),
              (Ids{5, 3}));
}

TEST(TokenizerBpe, ByteFallbackThenFusedUnk) {
    const json vocab = {{"<unk>", 0}, {"a", 1}, {"<0xC3>", 2}, {"<0xA9>", 3}};
    json doc = base_doc(vocab, json::array());
    doc["decoder"] = {{"type", "Sequence"},
                      {"decoders", json::array({{{"type", "ByteFallback"}}, {{"type", "Fuse"}}})}};
    const Tokenizer tok = load(doc);
    // é = C3 A9 falls back to bytes; 'x' and 'y' have no bytes in the vocab -> one fused <unk>.
    EXPECT_EQ(tok.encode("a\xC3\xA9xya", false), (Ids{1, 2, 3, 0, 1}));
    EXPECT_EQ(tok.decode(Ids{1, 2, 3}, false), "a\xC3\xA9");
    // An incomplete byte group decodes to one U+FFFD per byte, as `tokenizers` does.
    EXPECT_EQ(tok.decode(Ids{2, 1}, false), "\xEF\xBF\xBD" "a");

    StreamingDecoder stream = tok.streaming_decoder(false);
    EXPECT_EQ(stream.push(1), "a");
    EXPECT_EQ(stream.push(2), "");  // half a character is held back
    EXPECT_EQ(stream.pending_bytes(), 1U);
    EXPECT_EQ(stream.push(3), "\xC3\xA9");
    EXPECT_EQ(stream.push(2), "");
    EXPECT_EQ(stream.finish(), "\xEF\xBF\xBD");  // unfinished at the end
}

json ws_vocab() {
    return {{"<unk>", 0}, {"a", 1}, {"b", 2}, {" ", 3}, {"-", 4}, {"a-", 5}, {"-b", 6}};
}

TEST(TokenizerAddedTokens, StripAndSingleWord) {
    json doc = base_doc(ws_vocab(), json::array());
    doc["added_tokens"] = json::array(
        {{{"id", 10}, {"content", "<x>"}, {"single_word", false}, {"lstrip", true},
          {"rstrip", true}, {"normalized", false}, {"special", true}},
         {{"id", 11}, {"content", "ab"}, {"single_word", true}, {"lstrip", false},
          {"rstrip", false}, {"normalized", false}, {"special", false}}});
    const Tokenizer tok = load(doc);
    EXPECT_EQ(tok.encode("a  <x>  b", false), (Ids{1, 10, 2}));  // spaces absorbed
    EXPECT_EQ(tok.encode("ab a", false), (Ids{11, 3, 1}));     // whole word: matched
    EXPECT_EQ(tok.encode("bab", false), (Ids{2, 1, 2}));       // inside a word: not
    EXPECT_TRUE(tok.is_special(10));
    EXPECT_FALSE(tok.is_special(11));
    EXPECT_EQ(tok.decode(Ids{1, 10, 2}, true), "a b");  // no decoder: joined by spaces
    EXPECT_EQ(tok.token_to_id("<x>"), 10);
    EXPECT_EQ(tok.id_to_token(11), "ab");
    EXPECT_EQ(tok.vocab_size(), 12);
}

TEST(TokenizerPreTokenizer, SplitBehaviours) {
    const json merges = {"a -", "- b"};
    auto with_split = [&](const char* behavior) {
        json doc = base_doc(ws_vocab(), merges);
        doc["pre_tokenizer"] = {{"type", "Split"},
                                {"pattern", {{"String", "-"}}},
                                {"behavior", behavior},
                                {"invert", false}};
        return load(doc).encode("a-b", false);
    };
    EXPECT_EQ(with_split("Isolated"), (Ids{1, 4, 2}));
    EXPECT_EQ(with_split("Removed"), (Ids{1, 2}));
    EXPECT_EQ(with_split("MergedWithPrevious"), (Ids{5, 2}));
    EXPECT_EQ(with_split("MergedWithNext"), (Ids{1, 6}));
}

TEST(TokenizerPreTokenizer, WhitespaceClassMatchesOniguruma) {
    // `tokenizers` runs Oniguruma, whose \s includes U+0085 (NEL); PCRE2's does not unless
    // rewritten. \S must exclude it accordingly.
    const json vocab = {{"<unk>", 0}, {"a", 1}, {"b", 2}, {"\xC2\x85", 3}};
    json doc = base_doc(vocab, json::array());
    doc["pre_tokenizer"] = {{"type", "Split"},
                            {"pattern", {{"Regex", "\\s"}}},
                            {"behavior", "Removed"},
                            {"invert", false}};
    EXPECT_EQ(load(doc).encode("a\xC2\x85" "b", false), (Ids{1, 2}));
    doc["pre_tokenizer"]["pattern"] = {{"Regex", "\\S+"}};
    EXPECT_EQ(load(doc).encode("a\xC2\x85" "b", false), (Ids{3}));
    doc["pre_tokenizer"]["pattern"] = {{"Regex", "[^\\s]+"}};
    EXPECT_EQ(load(doc).encode("a\xC2\x85" "b", false), (Ids{3}));
}

TEST(TokenizerPreTokenizer, MetaspaceFirstAndDigits) {
    const std::string m = "\xE2\x96\x81";  // U+2581
    const json vocab = {{"<unk>", 0}, {m + "a", 1}, {m + "b", 2}, {"a", 3}, {"b", 4}, {m, 5},
                        {"1", 6}, {"2", 7}, {"12", 8}};
    json doc = base_doc(vocab, {m + " a", m + " b", "1 2"});
    doc["added_tokens"] = json::array({{{"id", 9}, {"content", "<x>"}, {"single_word", false},
                                        {"lstrip", false}, {"rstrip", false},
                                        {"normalized", false}, {"special", true}}});
    doc["pre_tokenizer"] = {
        {"type", "Sequence"},
        {"pretokenizers",
         json::array({{{"type", "Digits"}, {"individual_digits", true}},
                      {{"type", "Metaspace"}, {"replacement", m}, {"prepend_scheme", "first"},
                       {"split", true}}})}};
    doc["decoder"] = {{"type", "Metaspace"}, {"replacement", m}, {"prepend_scheme", "first"},
                      {"split", true}};
    const Tokenizer tok = load(doc);
    EXPECT_EQ(tok.encode("a b", false), (Ids{1, 2}));
    EXPECT_EQ(tok.encode("<x>a b", false), (Ids{9, 3, 2}));  // "first": only at the very start
    EXPECT_EQ(tok.encode("12", false), (Ids{5, 6, 7}));        // digits isolated, never merged
    EXPECT_EQ(tok.decode(Ids{1, 2}, false), "a b");
    StreamingDecoder s = tok.streaming_decoder(false);
    std::string out = s.push(1);
    out += s.push(2);
    EXPECT_EQ(out, "a b");
}

TEST(TokenizerNormalizer, NfcComposesBeforeLookup) {
    const json vocab = {{"<unk>", 0}, {"\xC3\xA9", 1}, {"e", 2}, {"\xEA\xB0\x81", 3}};
    json doc = base_doc(vocab, json::array());
    doc["normalizer"] = {{"type", "NFC"}};
    const Tokenizer tok = load(doc);
    EXPECT_EQ(tok.encode("e\xCC\x81", false), (Ids{1}));  // e + U+0301 -> é
    // Hangul jamo L V T compose algorithmically to U+AC01.
    EXPECT_EQ(tok.encode("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", false), (Ids{3}));
}

TEST(TokenizerNormalizer, PrependReplaceAndMetaspaceDecode) {
    const json vocab = {{"<unk>", 0}, {"\xE2\x96\x81", 1}, {"a", 2}, {"\xE2\x96\x81" "a", 3}};
    json doc = base_doc(vocab, {"\xE2\x96\x81 a"});
    doc["normalizer"] = {
        {"type", "Sequence"},
        {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                                     {{"type", "Replace"},
                                      {"pattern", {{"String", " "}}},
                                      {"content", "\xE2\x96\x81"}}})}};
    doc["decoder"] = {
        {"type", "Sequence"},
        {"decoders", json::array({{{"type", "Replace"},
                                   {"pattern", {{"String", "\xE2\x96\x81"}}},
                                   {"content", " "}},
                                  {{"type", "Fuse"}},
                                  {{"type", "Strip"}, {"content", " "}, {"start", 1},
                                   {"stop", 0}}})}};
    const Tokenizer tok = load(doc);
    EXPECT_EQ(tok.encode("a a", false), (Ids{3, 3}));
    EXPECT_EQ(tok.decode(Ids{3, 3}, false), "a a");
    StreamingDecoder s = tok.streaming_decoder(false);
    std::string out = s.push(3);
    out += s.push(3);
    EXPECT_EQ(out, "a a");
}

// Llama-2-style models (no pre-tokenizer: a document is one BPE word) are merged piece by piece,
// cut before each "▁", but only when no merge could join across such a cut. A merge "a ▁" can:
// then the word must be merged whole, or "a b" would come out as ▁a ▁b instead of ▁ a▁ b.
TEST(TokenizerBpe, WordIsCutAtMetaspaceOnlyWhenNoMergeCrossesTheCut) {
    const std::string m = "\xE2\x96\x81";
    const json vocab = {{"<unk>", 0}, {m, 1},          {"a", 2},     {"b", 3},
                        {"a" + m, 4}, {m + "b", 5}, {m + "a", 6}};
    auto llama_like = [&](json merges) {
        json doc = base_doc(vocab, std::move(merges));
        doc["normalizer"] = {
            {"type", "Sequence"},
            {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", m}},
                                         {{"type", "Replace"},
                                          {"pattern", {{"String", " "}}},
                                          {"content", m}}})}};
        return load(doc);
    };
    // "a ▁" ranks first and crosses the cut before the second ▁: whole-word merging.
    EXPECT_EQ(llama_like({"a " + m, m + " a", m + " b"}).encode("a b", false), (Ids{1, 4, 3}));
    // No merge crosses a cut: the pieces ▁a and ▁b merge alone, as the whole word would.
    EXPECT_EQ(llama_like({m + " a", m + " b"}).encode("a b", false), (Ids{6, 5}));
    EXPECT_EQ(llama_like({m + " a", m + " b"}).encode("a  b", false), (Ids{6, 1, 5}));
}

TEST(TokenizerPostProcessor, TemplateAddsBos) {
    json doc = base_doc(ws_vocab(), json::array());
    doc["added_tokens"] = json::array({{{"id", 9}, {"content", "<s>"}, {"single_word", false},
                                        {"lstrip", false}, {"rstrip", false},
                                        {"normalized", false}, {"special", true}}});
    doc["post_processor"] = {
        {"type", "TemplateProcessing"},
        {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"pair", json::array()},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {9}}, {"tokens", {"<s>"}}}}}}};
    const json config = {{"bos_token", "<s>"}, {"eos_token", {{"content", "b"}}},
                         {"add_bos_token", true}};
    const json gen = {{"eos_token_id", json::array({4, 2})}, {"bos_token_id", 9}};
    const Tokenizer tok = load(doc, config, gen);
    EXPECT_EQ(tok.encode("a", true), (Ids{9, 1}));
    EXPECT_EQ(tok.encode("a", false), (Ids{1}));
    const SpecialTokens& sp = tok.special_tokens();
    EXPECT_EQ(sp.bos_id, 9);
    EXPECT_EQ(sp.eos_id, 2);
    EXPECT_TRUE(sp.add_bos_token);
    EXPECT_EQ(sp.eos_ids, (Ids{4, 2}));  // generation config first, deduplicated
}

TEST(TokenizerErrors, BadInputsGiveClearErrors) {
    auto t = Tokenizer::from_json("{not json");
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().code(), ErrorCode::kConfig);

    json doc = base_doc(ws_vocab(), json::array());
    doc["model"]["type"] = "Unigram";
    t = Tokenizer::from_json(doc.dump());
    ASSERT_FALSE(t);
    EXPECT_NE(t.error().message().find("Unigram"), std::string::npos);

    doc = base_doc(ws_vocab(), json::array());
    doc["normalizer"] = {{"type", "NFKC"}};
    t = Tokenizer::from_json(doc.dump());
    ASSERT_FALSE(t);
    EXPECT_NE(t.error().message().find("NFKC"), std::string::npos);

    doc = base_doc(ws_vocab(), {"a zz"});
    t = Tokenizer::from_json(doc.dump());
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().code(), ErrorCode::kConfig);

    doc = base_doc(ws_vocab(), json::array());
    doc["model"]["vocab"] = json::array();
    EXPECT_FALSE(Tokenizer::from_json(doc.dump()));

    auto missing = Tokenizer::from_dir("/nonexistent/helexa/tokenizer");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code(), ErrorCode::kIo);
}

TEST(TokenizerQwen3, SpecialsProbesStreamingAndInvalidUtf8) {
    const Tokenizer* tok = testing::real_tokenizer("qwen3");
    if (tok == nullptr) {
        GTEST_SKIP() << "node_modules missing (run npm ci)";
    }
    const int32_t im_end = tok->token_to_id("<|im_end|>").value_or(-1);
    EXPECT_EQ(im_end, 151645);
    EXPECT_TRUE(tok->is_special(im_end));
    EXPECT_EQ(tok->encode("<|im_end|>", false), (Ids{im_end}));
    // Text that only looks like a special token is ordinary text.
    EXPECT_GT(tok->encode("<|im_end |>", false).size(), 1U);
    const auto ids = tok->encode("hi<|im_end|>", false);
    EXPECT_EQ(tok->decode(ids, false), "hi<|im_end|>");
    EXPECT_EQ(tok->decode(ids, true), "hi");

    const VocabProbes probes = VocabProbes::probe(*tok);
    ASSERT_TRUE(probes.reasoning.has_value());
    EXPECT_EQ(probes.reasoning->open, "<think>");
    EXPECT_EQ(probes.reasoning->close_id, tok->token_to_id("</think>").value_or(-2));
    ASSERT_TRUE(probes.tool_call.has_value());
    EXPECT_EQ(probes.tool_call->open, "<tool_call>");
    EXPECT_FALSE(tok->is_special(probes.tool_call->open_id));  // non-special: decoded as text
    EXPECT_EQ(probes.eos_ids, (Ids{im_end}));
    EXPECT_FALSE(tok->special_tokens().bos_id.has_value());  // bos_token is null for Qwen3

    // One test (one load of the 7 MB tokenizer.json) covers the remaining Qwen3 checks.
    {
        SCOPED_TRACE("streaming holds a split 4-byte character");
        const std::string text = "\xF0\x93\x80\x80";  // U+13000: several byte-level tokens
        const auto emoji_ids = tok->encode(text, false);
        ASSERT_GT(emoji_ids.size(), 1U);
        StreamingDecoder s = tok->streaming_decoder(true);
        for (size_t i = 0; i + 1 < emoji_ids.size(); ++i) {
            EXPECT_EQ(s.push(emoji_ids[i]), "");
            EXPECT_GT(s.pending_bytes(), 0U);
        }
        EXPECT_EQ(s.push(emoji_ids.back()), text);
        EXPECT_EQ(s.finish(), "");
    }
    {
        SCOPED_TRACE("invalid UTF-8 is replaced, not fatal");
        const std::string bad = std::string("ok\xFF\xC3") + "x\xED\xA0\x80";
        EXPECT_EQ(tok->encode(bad, false),
                  tok->encode("ok\xEF\xBF\xBD\xEF\xBF\xBDx\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD",
                              false));
    }
}

TEST(TokenizerProbes, AbsentMarkersAreNotInvented) {
    const Tokenizer* tok = testing::real_tokenizer("llama2");
    if (tok == nullptr) {
        GTEST_SKIP() << "node_modules missing (run npm ci)";
    }
    const VocabProbes probes = VocabProbes::probe(*tok);
    EXPECT_FALSE(probes.reasoning.has_value());
    EXPECT_FALSE(probes.tool_call.has_value());
    EXPECT_EQ(probes.eos_ids, (Ids{2}));
}

}  // namespace
}  // namespace helexa::text
