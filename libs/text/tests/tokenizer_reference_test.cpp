// Encode/decode of the real tokenizers against the reference ids for every corpus line
// (tests/fixtures/text/tokenizer/<name>.ref.jsonl), round trips, and the streaming decoder.
#include <gtest/gtest.h>

#include <sstream>

#include "tokenizer_test_util.h"

namespace helexa::text {
namespace {

using testing::corpus;
using testing::fixture_dir;
using testing::read_jsonl;
using testing::real_tokenizer;

std::string show_divergence(const Tokenizer& tok, const std::vector<int32_t>& got,
                            const std::vector<int32_t>& want) {
    size_t i = 0;
    while (i < got.size() && i < want.size() && got[i] == want[i]) {
        ++i;
    }
    std::ostringstream os;
    os << "first divergence at index " << i << " (got " << got.size() << " ids, want "
       << want.size() << ")\n";
    auto show = [&](const char* label, const std::vector<int32_t>& ids) {
        os << "  " << label << ":";
        for (size_t k = i >= 3 ? i - 3 : 0; k < std::min(ids.size(), i + 4); ++k) {
            os << " " << ids[k] << "=" << nlohmann::json(tok.id_to_token(ids[k]).value_or("?"));
        }
        os << "\n";
    };
    show("got ", got);
    show("want", want);
    return os.str();
}

bool valid_utf8(const std::string& s) {
    // Round-trips through nlohmann's strict UTF-8 check.
    try {
        (void)nlohmann::json(s).dump();
        return true;
    } catch (const nlohmann::json::exception&) {
        return false;
    }
}

class TokenizerReference : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerReference, MatchesReferenceIdsDecodeAndStreaming) {
    const std::string name = GetParam();
    const Tokenizer* tok = real_tokenizer(name);
    if (tok == nullptr) {
        GTEST_SKIP() << "node_modules missing (run npm ci)";
    }
    const auto lines = corpus();
    const auto refs = read_jsonl(fixture_dir() / (name + ".ref.jsonl"));
    ASSERT_EQ(refs.size(), lines.size()) << "reference file out of date with corpus";
    int n_round_trips = 0;
    for (size_t li = 0; li < lines.size(); ++li) {
        const auto& [id, text] = lines[li];
        const auto& ref = refs[li];
        ASSERT_EQ(ref.at("id").get<std::string>(), id);
        SCOPED_TRACE(name + " / " + id);
        const auto want = ref.at("ids").get<std::vector<int32_t>>();
        const auto want_special = ref.at("ids_special").get<std::vector<int32_t>>();
        const auto got = tok->encode(text, false);
        EXPECT_EQ(got, want) << show_divergence(*tok, got, want);
        const auto got_special = tok->encode(text, true);
        EXPECT_EQ(got_special, want_special) << show_divergence(*tok, got_special, want_special);

        const std::string decoded = tok->decode(want_special, false);
        EXPECT_EQ(decoded, ref.at("decode").get<std::string>());
        const std::string decoded_skip = tok->decode(want_special, true);
        EXPECT_EQ(decoded_skip, ref.at("decode_skip").get<std::string>());

        // decode(encode(x)) == x wherever the reference round-trips too (NFC, Prepend and
        // specials legitimately change some lines).
        if (tok->decode(want, false) == text) {
            EXPECT_EQ(tok->decode(got, false), text);
            ++n_round_trips;
        }

        // Streaming: every chunk is whole UTF-8 and the chunks add up to decode().
        for (bool skip : {false, true}) {
            StreamingDecoder stream = tok->streaming_decoder(skip);
            std::string all;
            for (size_t k = 0; k < want_special.size(); ++k) {
                const std::string chunk = stream.push(want_special[k]);
                EXPECT_TRUE(valid_utf8(chunk)) << "chunk " << k << " splits a code point";
                all += chunk;
            }
            all += stream.finish();
            EXPECT_EQ(all, skip ? decoded_skip : decoded) << "skip=" << skip;
        }
    }
    EXPECT_GE(n_round_trips, static_cast<int>(lines.size()) / 2);
}

INSTANTIATE_TEST_SUITE_P(Real, TokenizerReference,
                         ::testing::ValuesIn(testing::tokenizer_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace helexa::text
