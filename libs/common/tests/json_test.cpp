#include "helexa/common/json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace helexa {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

TEST(Json, ParsesValidBody) {
    auto r = parse_json(R"({"model":"qwen","n":2})");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ((*r)["model"], "qwen");
}

TEST(Json, InvalidJsonNamesLineAndColumn) {
    auto r = parse_json("{\n  \"model\": \"qwen\",\n  \"n\": }");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidJson);
    EXPECT_THAT(r.error().message(), HasSubstr("invalid JSON at line 3, column 8: "));
    EXPECT_THAT(r.error().message(), HasSubstr("unexpected '}'"));
    EXPECT_THAT(r.error().message(), ::testing::Not(HasSubstr("json.exception")));

    r = parse_json("");
    ASSERT_FALSE(r.has_value());
    EXPECT_THAT(r.error().message(), HasSubstr("line 1, column 1"));
    r = parse_json("{\"a\": \"\xff\"}");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidJson);
    r = parse_json("[1] trailing");
    ASSERT_FALSE(r.has_value());
}

TEST(Json, RequiredGettersNameTheField) {
    json obj = {{"model", "qwen"}, {"n", 3}, {"t", 0.5}, {"s", true}, {"bad", 7},
                {"nul", nullptr}, {"whole", 4.0}, {"frac", 4.5}, {"o", {{"x", 1}}},
                {"a", {1, 2}}};
    EXPECT_EQ(*get_string(obj, "model"), "qwen");
    EXPECT_EQ(*get_int(obj, "n"), 3);
    EXPECT_EQ(*get_int(obj, "whole"), 4);
    EXPECT_DOUBLE_EQ(*get_number(obj, "t"), 0.5);
    EXPECT_DOUBLE_EQ(*get_number(obj, "n"), 3.0);
    EXPECT_TRUE(*get_bool(obj, "s"));
    EXPECT_EQ((**get_object(obj, "o"))["x"], 1);
    EXPECT_EQ((*get_array(obj, "a"))->size(), 2u);

    auto e = get_string(obj, "bad");
    ASSERT_FALSE(e.has_value());
    EXPECT_EQ(e.error().code(), ErrorCode::kInvalidRequest);
    EXPECT_EQ(e.error().message(), "field 'bad' must be a string, got number");
    EXPECT_EQ(e.error().param(), std::optional<std::string>("bad"));

    EXPECT_EQ(get_string(obj, "absent").error().message(), "missing required field 'absent'");
    EXPECT_EQ(get_string(obj, "nul").error().message(), "missing required field 'nul'");
    EXPECT_EQ(get_int(obj, "frac").error().message(), "field 'frac' must be an integer, got number");
    EXPECT_EQ(get_bool(obj, "model").error().message(),
              "field 'model' must be a boolean, got string");
    EXPECT_EQ(get_object(obj, "a").error().message(), "field 'a' must be an object, got array");
    EXPECT_EQ(get_array(obj, "o").error().message(), "field 'o' must be an array, got object");
    EXPECT_EQ(get_string(json::array(), "model").error().message(),
              "expected a JSON object, got array");
}

TEST(Json, OptionalGettersTreatNullAsAbsent) {
    json obj = {{"stop", nullptr}, {"max_tokens", 16}, {"stream", "yes"}};
    EXPECT_EQ(*get_optional_string(obj, "stop"), std::nullopt);
    EXPECT_EQ(*get_optional_string(obj, "user"), std::nullopt);
    EXPECT_EQ(*get_optional_int(obj, "max_tokens"), std::optional<int64_t>(16));
    EXPECT_EQ(*get_optional_number(obj, "temperature"), std::nullopt);
    auto e = get_optional_bool(obj, "stream");
    ASSERT_FALSE(e.has_value());
    EXPECT_EQ(e.error().message(), "field 'stream' must be a boolean, got string");
    // Unsigned values beyond int64 are not integers we can hold.
    json big = {{"n", 18446744073709551615ull}};
    EXPECT_FALSE(get_int(big, "n").has_value());
}

TEST(Json, TruncateUtf8NeverSplitsACharacter) {
    std::string s = "ab\xC3\xA9z\xE2\x82\xAC\xF0\x9F\x98\x80";  // a b é z € 😀
    EXPECT_EQ(truncate_utf8(s, 100), s);
    EXPECT_EQ(truncate_utf8(s, 2), "ab");
    EXPECT_EQ(truncate_utf8(s, 3), "ab");  // would split é
    EXPECT_EQ(truncate_utf8(s, 4), "ab\xC3\xA9");
    EXPECT_EQ(truncate_utf8(s, 6), "ab\xC3\xA9z");
    EXPECT_EQ(truncate_utf8(s, 7), "ab\xC3\xA9z");
    EXPECT_EQ(truncate_utf8(s, 8), "ab\xC3\xA9z\xE2\x82\xAC");
    EXPECT_EQ(truncate_utf8(s, 11), "ab\xC3\xA9z\xE2\x82\xAC");
    EXPECT_EQ(truncate_utf8(s, 0), "");
    // Every cut is a prefix and ends on a boundary.
    for (size_t n = 0; n <= s.size(); ++n) {
        auto cut = truncate_utf8(s, n);
        EXPECT_LE(cut.size(), n);
        EXPECT_EQ(s.substr(0, cut.size()), cut);
        EXPECT_TRUE(cut.size() == s.size() ||
                    (static_cast<unsigned char>(s[cut.size()]) & 0xC0) != 0x80);
    }
    // Stray continuation bytes count as single characters.
    EXPECT_EQ(truncate_utf8("a\x80\x80\x80\x80\x80", 3), "a\x80\x80");
    EXPECT_EQ(truncate_for_log("hello world", 5), "hello...(11 bytes)");
    EXPECT_EQ(truncate_for_log("hi", 5), "hi");
}

}  // namespace
}  // namespace helexa
