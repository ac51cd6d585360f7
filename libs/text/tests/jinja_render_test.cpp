// Unit tests per construct: each expected string is what python jinja2 3.1 prints for the same
// template with trim_blocks and lstrip_blocks on (transformers' settings).
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "helexa/text/jinja.h"

namespace helexa::text::jinja {
namespace {

using Json = nlohmann::ordered_json;

std::string render(const std::string& src, const Json& ctx = Json::object(),
                   const RenderOptions& opts = {}) {
    auto t = Template::compile(src);
    if (!t) {
        return "COMPILE ERROR: " + t.error().message();
    }
    auto r = t->render(ctx, opts);
    if (!r) {
        return "ERROR: " + r.error().message();
    }
    return *r;
}

std::string error_of(const std::string& src, const Json& ctx = Json::object(),
                     const RenderOptions& opts = {}) {
    auto t = Template::compile(src);
    if (!t) {
        EXPECT_EQ(t.error().code(), ErrorCode::kTemplateRenderFailed);
        return t.error().message();
    }
    auto r = t->render(ctx, opts);
    if (r) {
        return "NO ERROR, rendered: " + *r;
    }
    EXPECT_EQ(r.error().code(), ErrorCode::kTemplateRenderFailed);
    return r.error().message();
}

TEST(JinjaPrint, LiteralsPrintLikePython) {
    EXPECT_EQ(render("{{ none }}|{{ None }}|{{ true }}|{{ False }}"), "None|None|True|False");
    EXPECT_EQ(render("{{ 1.0 }}|{{ 0.1 + 0.2 }}|{{ 1e-5 }}|{{ 1e16 }}|{{ 2.5e3 }}"),
              "1.0|0.30000000000000004|1e-05|1e+16|2500.0");
    EXPECT_EQ(render("{{ [1, 'a', none, true, 1.5] }}"), "[1, 'a', None, True, 1.5]");
    EXPECT_EQ(render("{{ {'a': 1, 'b': [2]} }}"), "{'a': 1, 'b': [2]}");
    EXPECT_EQ(render("{{ (1,) }}|{{ (1, 2) }}|{{ () }}"), "(1,)|(1, 2)|()");
    EXPECT_EQ(render("{{ [\"it's\", 'say \"hi\"'] }}"), "[\"it's\", 'say \"hi\"']");
    EXPECT_EQ(render("{{ undefined_thing }}"), "");
    EXPECT_EQ(render("{{ 'a' 'b' }}"), "ab");
}

TEST(JinjaPrint, StringEscapes) {
    EXPECT_EQ(render(R"({{ 'a\nb\t\'\"\\' }})"), "a\nb\t'\"\\");
    EXPECT_EQ(render(R"({{ '\u00e9\x41\U0001F600' }})"), "\xC3\xA9" "A" "\xF0\x9F\x98\x80");
    EXPECT_EQ(render(R"({{ '\q' }})"), "\\q");
}

TEST(JinjaWhitespace, TrimAndLstripBlocks) {
    EXPECT_EQ(render("{% if true %}\n  yes\n{% endif %}\nafter"), "  yes\nafter");
    EXPECT_EQ(render("    {% if true %}x{% endif %}"), "x");
    EXPECT_EQ(render("a  {% if true %}x{% endif %}"), "a  x");
    EXPECT_EQ(render("  {{ 'v' }}"), "  v");  // lstrip_blocks leaves {{ alone
    EXPECT_EQ(render("  {#- c -#}  x"), "x");
    EXPECT_EQ(render("  {# comment #}\nx"), "x");
    EXPECT_EQ(render("a\n{%+ if true %}b{% endif %}"), "a\nb");
    EXPECT_EQ(render("a\n    {%+ if true %}b{% endif %}"), "a\n    b");
}

TEST(JinjaWhitespace, DashControl) {
    EXPECT_EQ(render("a   {{- 'b' -}}   c"), "abc");
    EXPECT_EQ(render("a \n {%- if true -%} \n b {%- endif %}"), "ab");
    EXPECT_EQ(render("x\n"), "x");        // one trailing newline dropped
    EXPECT_EQ(render("x\n\n"), "x\n");    // only one
    EXPECT_EQ(render("a\r\nb"), "a\nb");  // newlines normalised
    EXPECT_EQ(render("{% raw %}{{ x }}{% endraw %}"), "{{ x }}");
}

TEST(JinjaControl, IfElifElse) {
    const char* t = "{% if x == 1 %}one{% elif x == 2 %}two{% else %}many{% endif %}";
    EXPECT_EQ(render(t, {{"x", 1}}), "one");
    EXPECT_EQ(render(t, {{"x", 2}}), "two");
    EXPECT_EQ(render(t, {{"x", 3}}), "many");
}

TEST(JinjaControl, ForLoopVariables) {
    EXPECT_EQ(render("{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
                     "{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};"
                     "{% endfor %}"),
              "1032TrueFalse3;2121FalseFalse3;3210FalseTrue3;");
    EXPECT_EQ(render("{% for x in [1,2,3] %}{{ loop.previtem }}-{{ loop.nextitem }},{% endfor %}"),
              "-2,1-3,2-,");
    EXPECT_EQ(render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
    EXPECT_EQ(render("{% for x in range(10) if x is odd %}{{ x }}{{ loop.length }} {% endfor %}"),
              "15 35 55 75 95 ");
    EXPECT_EQ(render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"),
              "a=1;b=2;");
    EXPECT_EQ(render("{% for k in {'z': 1, 'a': 2} %}{{ k }}{% endfor %}"), "za");
    EXPECT_EQ(render("{% for x in [1,2,3] %}{{ loop.cycle('a', 'b') }}{% endfor %}"), "aba");
    EXPECT_EQ(render("{% for x in range(5) %}{% if x == 3 %}{% break %}{% endif %}"
                     "{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %}"),
              "02");
    EXPECT_EQ(render("{% for x in undefined_list %}x{% endfor %}done"), "done");
}

TEST(JinjaControl, RecursiveLoop) {
    Json ctx = {{"tree", Json::parse(R"([{"n":"a","c":[{"n":"b","c":[]}]},{"n":"c","c":[]}])")}};
    EXPECT_EQ(render("{% for i in tree recursive %}{{ i.n }}{{ loop.depth }}"
                     "[{{ loop(i.c) }}]{% endfor %}",
                     ctx),
              "a1[b2[]]c1[]");
}

TEST(JinjaControl, SetScopingAndNamespace) {
    EXPECT_EQ(render("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}"), "1");
    EXPECT_EQ(render("{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}"), "2");
    EXPECT_EQ(render("{% set ns = namespace(n=0) %}{% for i in [1,2,3] %}"
                     "{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"),
              "6");
    EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}"), "12");
    EXPECT_EQ(render("{% set body %}  hi {{ 1 + 1 }}{% endset %}[{{ body }}]"), "[  hi 2]");
    EXPECT_EQ(render("{% set body | upper %}hi{% endset %}{{ body }}"), "HI");
    EXPECT_EQ(render("{% with a = 5 %}{{ a }}{% endwith %}{{ a }}"), "5");
    EXPECT_EQ(error_of("{% set x = 1 %}{% set x.y = 2 %}"),
              "template render error at line 1: cannot assign attribute on non-namespace "
              "object 'x'");
}

TEST(JinjaControl, MacrosAndCall) {
    EXPECT_EQ(render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
                     "{{ greet('Bob') }} {{ greet('Al', punct='?') }} {{ greet(name='Cy') }}"),
              "Hi Bob! Hi Al? Hi Cy!");
    EXPECT_EQ(render("{% macro box() %}[{{ caller() }}]{% endmacro %}"
                     "{% call box() %}inside{% endcall %}"),
              "[inside]");
    EXPECT_EQ(render("{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}"
                     "{% endmacro %}{% call(v) each([1,2]) %}<{{ v }}>{% endcall %}"),
              "<1><2>");
    EXPECT_EQ(render("{% set g = 'global' %}{% macro m() %}{{ g }}{% endmacro %}{{ m() }}"),
              "global");
    EXPECT_EQ(render("{% filter upper %}abc{% endfilter %}"), "ABC");
    EXPECT_EQ(render("{% generation %}kept{% endgeneration %}"), "kept");
}

TEST(JinjaOperators, Arithmetic) {
    EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }}"),
              "3 -4 1 2 3.5 1024");
    EXPECT_EQ(render("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }} {{ 2 ** -1 }}"),
              "7 9 4 0.5");
    EXPECT_EQ(render("{{ 'ab' * 3 }} {{ [1] * 2 }} {{ 'a' + 'b' }} {{ [1] + [2] }}"),
              "ababab [1, 1] ab [1, 2]");
    EXPECT_EQ(render("{{ 1 ~ 'x' ~ none ~ true }}"), "1xNoneTrue");
    EXPECT_EQ(render("{{ 10 - 3 - 2 }} {{ 1.5 + 1 }} {{ true + 1 }}"), "5 2.5 2");
    EXPECT_EQ(render("{{ -3 | abs }} {{ messages | length - 1 }}", {{"messages", {1, 2}}}),
              "3 1");
}

TEST(JinjaOperators, ComparisonsAndLogic) {
    EXPECT_EQ(render("{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 'a' < 'b' }} {{ [1,2] < [1,3] }}"),
              "True False True True");
    EXPECT_EQ(render("{{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ none == none }} {{ 1 == '1' }}"),
              "True True True False");
    EXPECT_EQ(render("{{ 'b' in 'abc' }} {{ 2 in [1,2] }} {{ 'k' in {'k': 1} }} "
                     "{{ 3 not in [1] }} {{ 'x' in undefined_var }}"),
              "True True True True False");
    EXPECT_EQ(render("{{ 0 or 'x' }} {{ 1 and 'y' }} {{ not 0 }} {{ none or [] }}"),
              "x y True []");
    EXPECT_EQ(render("{{ 'yes' if 1 else 'no' }} {{ 'yes' if 0 else 'no' }} [{{ 'y' if 0 }}]"),
              "yes no []");
    EXPECT_EQ(render("{{ not x is defined }}"), "True");
}

TEST(JinjaOperators, SubscriptsAndSlices) {
    Json ctx = {{"l", {0, 1, 2, 3, 4, 5}}, {"s", "h\xC3\xA9llo"}};
    EXPECT_EQ(render("{{ l[1] }} {{ l[-1] }} {{ l[1:3] }} {{ l[::-1] }} {{ l[::2] }} {{ l[-2:] }}",
                     ctx),
              "1 5 [1, 2] [5, 4, 3, 2, 1, 0] [0, 2, 4] [4, 5]");
    EXPECT_EQ(render("{{ l[5:1:-2] }} {{ l[:-4] }} {{ l[10:] }} [{{ l[10] }}]", ctx),
              "[5, 3] [0, 1] [] []");
    EXPECT_EQ(render("{{ s[1] }} {{ s[::-1] }} {{ s[1:3] }} {{ s|length }}", ctx),
              "\xC3\xA9 oll\xC3\xA9h \xC3\xA9l 5");
    EXPECT_EQ(render("{{ d.a }} {{ d['a'] }} {{ d.b.c }} [{{ d.missing }}] {{ l.0 }}",
                     {{"d", {{"a", 1}, {"b", {{"c", 2}}}}}, {"l", {7}}}),
              "1 1 2 [] 7");
}

TEST(JinjaTests, TypeTests) {
    Json ctx = {{"s", "x"}, {"n", nullptr}, {"i", 3}, {"f", 1.5}, {"b", true},
                {"l", {1}},  {"d", Json::object()}};
    EXPECT_EQ(render("{{ s is string }}{{ i is string }}{{ n is none }}{{ s is none }}", ctx),
              "TrueFalseTrueFalse");
    EXPECT_EQ(render("{{ i is number }}{{ f is number }}{{ b is number }}{{ s is number }}", ctx),
              "TrueTrueTrueFalse");
    EXPECT_EQ(render("{{ i is integer }}{{ b is integer }}{{ f is float }}{{ b is boolean }}",
                     ctx),
              "TrueFalseTrueTrue");
    EXPECT_EQ(render("{{ d is mapping }}{{ l is mapping }}{{ l is iterable }}{{ s is iterable }}"
                     "{{ i is iterable }}{{ l is sequence }}",
                     ctx),
              "TrueFalseTrueTrueFalseTrue");
    EXPECT_EQ(render("{{ b is true }}{{ b is false }}{{ 1 is true }}{{ zz is defined }}"
                     "{{ zz is undefined }}{{ s is not none }}",
                     ctx),
              "TrueFalseFalseFalseTrueTrue");
    EXPECT_EQ(render("{{ 2 is in [1,2] }}{{ 1 is equalto 1 }}{{ 1 is eq 2 }}{{ 3 is odd }}"
                     "{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 2 is gt 1 }}{{ 'ab' is lower }}"),
              "TrueTrueFalseTrueTrueTrueTrueTrue");
}

TEST(JinjaErrors, CarryLineAndCause) {
    EXPECT_EQ(error_of("line1\n{{ raise_exception('bad role') }}"),
              "template render error at line 2: bad role");
    EXPECT_EQ(error_of("a\nb\n{{ x.y.z }}"), "template render error at line 3: 'x' is undefined");
    EXPECT_EQ(error_of("\n{% if %}"),
              "template syntax error at line 2: unexpected end of statement block");
    EXPECT_EQ(error_of("{% for x in y %}"),
              "template syntax error at line 1: unexpected end of template, expected 'else' or "
              "'endfor'");
    EXPECT_EQ(error_of("{{ 'abc' + 1 }}"),
              "template render error at line 1: unsupported operand type(s) for +: 'str' and 'int'");
    EXPECT_EQ(error_of("{{ 1 // 0 }}"),
              "template render error at line 1: integer division or modulo by zero");
    EXPECT_EQ(error_of("{{ x | nosuchfilter }}"),
              "template render error at line 1: no filter named 'nosuchfilter'");
    EXPECT_EQ(error_of("{% include 'x' %}"),
              "template syntax error at line 1: unknown or unsupported tag 'include'");
    EXPECT_EQ(error_of("{{ 'unterminated }}"),
              "template syntax error at line 1: unterminated string literal");
    EXPECT_EQ(error_of("{# open comment"), "template syntax error at line 1: missing end of comment tag");
}

TEST(JinjaLimits, OutputLoopsRecursionNesting) {
    RenderOptions small;
    small.max_output_bytes = 1000;
    EXPECT_EQ(error_of("{% for i in range(100) %}0123456789abcdef{% endfor %}", {}, small),
              "template render error at line 1: output size limit exceeded (1000 bytes)");
    EXPECT_EQ(error_of("{{ 'x' * 100000 }}", {}, small),
              "template render error at line 1: output size limit exceeded (1000 bytes)");
    EXPECT_EQ(error_of("{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
                       "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                       {}, small),
              "template render error at line 1: output size limit exceeded (1000 bytes)");
    RenderOptions few;
    few.max_loop_iterations = 50;
    EXPECT_EQ(error_of("{% for i in range(10) %}{% for j in range(10) %}{% endfor %}{% endfor %}",
                       {}, few),
              "template render error at line 1: loop iteration limit exceeded (50 iterations)");
    EXPECT_EQ(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
              "template render error at line 1: maximum macro call depth exceeded (100)");
    std::string deep = std::string(5000, '(') + "1" + std::string(5000, ')');
    EXPECT_NE(error_of("{{ " + deep + " }}").find("nested too deeply"), std::string::npos);
    std::string ifs;
    for (int i = 0; i < 500; ++i) {
        ifs += "{% if true %}";
    }
    EXPECT_NE(error_of(ifs).find("nested too deeply"), std::string::npos);
    EXPECT_NE(error_of("{{ " + std::string(3000, '-') + "1 }}").find("nested too deeply"),
              std::string::npos);
}

TEST(JinjaGlobals, StrftimeNowAndRange) {
    RenderOptions opts;
    opts.now = [] {
        std::tm tm{};
        tm.tm_year = 124;
        tm.tm_mon = 6;
        tm.tm_mday = 26;
        return tm;
    };
    EXPECT_EQ(render("{{ strftime_now('%Y-%m-%d') }} {{ strftime_now('%d %b %Y') }}", {}, opts),
              "2024-07-26 26 Jul 2024");
    EXPECT_EQ(render("{{ range(3) }} {{ range(1, 7, 2) }} {{ range(3, 0, -1) }}"),
              "[0, 1, 2] [1, 3, 5] [3, 2, 1]");
    EXPECT_EQ(render("{{ dict(a=1) }} {{ namespace(a=1).a }}"), "{'a': 1} 1");
}

TEST(JinjaContext, JsonValuesKeepOrderAndTypes) {
    Json ctx = Json::parse(R"({"d": {"z": 1, "a": [true, null, 2.5, "s"]}})");
    EXPECT_EQ(render("{{ d }}", ctx), "{'z': 1, 'a': [True, None, 2.5, 's']}");
    EXPECT_EQ(render("{{ d | tojson }}", ctx), R"({"z": 1, "a": [true, null, 2.5, "s"]})");
}

TEST(JinjaTemplate, CompiledTemplateIsReusable) {
    auto t = Template::compile("{{ x }}");
    ASSERT_TRUE(t);
    const Template& shared = *t;
    EXPECT_EQ(*shared.render({{"x", 1}}), "1");
    EXPECT_EQ(*shared.render({{"x", "two"}}), "two");
    EXPECT_FALSE(shared.render(Json::array()));
}

}  // namespace
}  // namespace helexa::text::jinja
