// NFC/NFD tables and algorithm (internal to the tokenizer) against vectors produced by python's
// unicodedata.normalize: composition, exclusions, singletons, reordering, Hangul, and texts
// where only some spans need normalizing.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "../src/tokenizer/unicode_nfc.h"

namespace helexa::text::detail {
namespace {

TEST(TokenizerNfc, MatchesPythonUnicodedata) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"e\xCC\x81", "\xC3\xA9"},
        {"abc e\xCC\x81\xCC\xA3 xyz", "abc \xE1\xBA\xB9\xCC\x81 xyz"},
        {"\xE0\xA4\x95\xE0\xA4\xBC", "\xE0\xA4\x95\xE0\xA4\xBC"},
        {"a\xCC\xA8\xCC\x81", "\xC4\x85\xCC\x81"},
        {"\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8\xE1\x84\x80", "\xEA\xB0\x81\xE1\x84\x80"},
        {"\xE2\x84\xAB \xE2\x84\xA6 \xEF\xA4\x80", "\xC3\x85 \xCE\xA9 \xE8\xB1\x88"},
        {"x\xCC\xA3\xCC\x87y", "\xE1\xBA\x8B\xCC\xA3y"},
        {"\xE0\xA5\x98 \xCD\x84", "\xE0\xA4\x95\xE0\xA4\xBC \xCC\x88\xCC\x81"},
        {"q\xCC\x87\xCC\xA3", "q\xCC\xA3\xCC\x87"},
        {"\xC3\x85ngstr\xC3\xB6m e\xCC\x81" "e\xCC\x81", "\xC3\x85ngstr\xC3\xB6m \xC3\xA9\xC3\xA9"},
        {"\xE0\xB8\x81\xE0\xB8\xB1\xE0\xB9\x89 \xE0\xA4\xA8\xE0\xA4\xBF\xE0\xA4\x82",
         "\xE0\xB8\x81\xE0\xB8\xB1\xE0\xB9\x89 \xE0\xA4\xA8\xE0\xA4\xBF\xE0\xA4\x82"},
        {"\xC3\xA9t\xC3\xA9 na\xC3\xAFve", "\xC3\xA9t\xC3\xA9 na\xC3\xAFve"},
    };
    for (const auto& [in, want] : cases) {
        EXPECT_EQ(to_nfc(in), want) << "input: " << in;
        EXPECT_EQ(to_nfc(want), want) << "NFC must be idempotent: " << want;
    }
    EXPECT_TRUE(nfc_quick_check("plain ascii \xC3\xA9"));
    EXPECT_FALSE(nfc_quick_check("e\xCC\x81"));
    EXPECT_EQ(to_nfd("\xC3\xA9"), "e\xCC\x81");
    EXPECT_EQ(to_nfd("\xEA\xB0\x81"), "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8");
}

}  // namespace
}  // namespace helexa::text::detail
