// Filters, Python methods and error cases, checked against python jinja2's output for the same
// template and context (tests/fixtures/text/templates/jinja_unit_cases.json, written by
// scripts/fixtures/make_template_refs.py). One CTest case per template.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "helexa/text/jinja.h"

namespace helexa::text::jinja {
namespace {

using Json = nlohmann::ordered_json;

const Json& unit_cases() {
    static const Json kCases = [] {
        std::ifstream in(std::filesystem::path(HELEXA_SOURCE_DIR) /
                         "tests/fixtures/text/templates/jinja_unit_cases.json");
        std::stringstream ss;
        ss << in.rdbuf();
        return Json::parse(ss.str());
    }();
    return kCases;
}

class JinjaUnitCase : public ::testing::TestWithParam<size_t> {};

TEST_P(JinjaUnitCase, MatchesJinja2) {
    const Json& c = unit_cases()["cases"][GetParam()];
    const std::string src = c["template"].get<std::string>();
    auto t = Template::compile(src);
    ASSERT_TRUE(t) << src << "\n" << t.error().message();
    auto r = t->render(unit_cases()["context"]);
    if (c.contains("error")) {
        EXPECT_FALSE(r) << src << "\njinja2 failed (" << c["error"].get<std::string>()
                        << ") but we rendered: " << *r;
        return;
    }
    ASSERT_TRUE(r) << src << "\n" << r.error().message();
    EXPECT_EQ(*r, c["output"].get<std::string>()) << src;
}

INSTANTIATE_TEST_SUITE_P(Jinja2Reference, JinjaUnitCase,
                         ::testing::Range<size_t>(0, unit_cases()["cases"].size()));

TEST(JinjaMethods, ListAppendMutatesSharedList) {
    // transformers' sandbox forbids append; templates written for other engines use it, and it
    // must mutate the list every alias sees.
    auto t = Template::compile(
        "{% set xs = [] %}{% set ys = xs %}{% for i in range(3) %}{% set _ = xs.append(i) %}"
        "{% endfor %}{{ ys }} {{ xs.pop() }} {{ xs }}");
    ASSERT_TRUE(t);
    EXPECT_EQ(*t->render(Json::object()), "[0, 1, 2] 2 [0, 1]");
}

TEST(JinjaMethods, DictMethodsWinOverKeysOnAttributeAccess) {
    auto t = Template::compile("{{ d.items()|list }} {{ d['items'] }} {{ d.other }}");
    ASSERT_TRUE(t);
    EXPECT_EQ(*t->render({{"d", {{"items", 5}, {"other", 6}}}}), "[('items', 5), ('other', 6)] 5 6");
}

}  // namespace
}  // namespace helexa::text::jinja
