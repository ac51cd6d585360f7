// ChatTemplate loading precedence, named templates, render context and argument
// normalisation, on temporary model directories.
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "helexa/text/chat_template.h"

namespace helexa::text {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

class TempDir {
public:
    TempDir() {
        std::random_device rd;
        path_ = fs::temp_directory_path() / ("helexa_chat_tpl_" + std::to_string(rd()));
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return path_; }
    void write(const std::string& name, const std::string& content) const {
        std::ofstream(path_ / name, std::ios::binary) << content;
    }

private:
    fs::path path_;
};

ChatRenderContext user_says(const std::string& text) {
    ChatRenderContext ctx;
    ctx.messages = Json::array({{{"role", "user"}, {"content", text}}});
    return ctx;
}

TEST(ChatTemplateLoad, PrecedenceJinjaThenJsonThenTokenizerConfig) {
    TempDir dir;
    dir.write("tokenizer_config.json",
              R"({"chat_template": "config", "bos_token": "<s>",
                  "eos_token": {"__type": "AddedToken", "content": "</s>"}})");
    auto from_config = ChatTemplate::load(dir.path());
    ASSERT_TRUE(from_config) << from_config.error().full_message();
    EXPECT_EQ(*from_config->render(user_says("x")), "config");
    EXPECT_EQ(from_config->bos_token(), "<s>");
    EXPECT_EQ(from_config->eos_token(), "</s>");

    dir.write("chat_template.json", R"({"chat_template": "json {{ bos_token }}"})");
    EXPECT_EQ(*ChatTemplate::load(dir.path())->render(user_says("x")), "json <s>");

    dir.write("chat_template.jinja", "jinja {{ eos_token }}\n");
    EXPECT_EQ(*ChatTemplate::load(dir.path())->render(user_says("x")), "jinja </s>");
}

TEST(ChatTemplateLoad, NamedTemplatesPickToolUseWhenToolsPresent) {
    TempDir dir;
    dir.write("tokenizer_config.json", R"({"chat_template": [
        {"name": "default", "template": "plain{{ tools is none }}"},
        {"name": "tool_use", "template": "tools={{ tools|length }}"}]})");
    auto t = ChatTemplate::load(dir.path());
    ASSERT_TRUE(t);
    ChatRenderContext ctx = user_says("x");
    EXPECT_EQ(*t->render(ctx), "plainTrue");
    ctx.tools = Json::array({{{"type", "function"}}});
    EXPECT_EQ(*t->render(ctx), "tools=1");
}

TEST(ChatTemplateLoad, ErrorsNameTheProblem) {
    TempDir dir;
    auto none = ChatTemplate::load(dir.path());
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().code(), ErrorCode::kConfig);
    EXPECT_NE(none.error().message().find("no chat template"), std::string::npos);

    dir.write("chat_template.jinja", "{% if %}");
    auto bad = ChatTemplate::load(dir.path());
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code(), ErrorCode::kTemplateRenderFailed);
    EXPECT_NE(bad.error().full_message().find("chat_template.jinja"), std::string::npos);

    TempDir json_dir;
    json_dir.write("tokenizer_config.json", "{not json");
    auto bad_json = ChatTemplate::load(json_dir.path());
    ASSERT_FALSE(bad_json);
    EXPECT_NE(bad_json.error().message().find("invalid JSON"), std::string::npos);
}

TEST(ChatTemplateRender, ContextHasKwargsAndGenerationPrompt) {
    auto t = ChatTemplate::from_sources(
        {{"default",
          "{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}"
          "{% if add_generation_prompt %}<gen>{% endif %}"
          "{% if enable_thinking is defined and enable_thinking is false %}<nothink>{% endif %}"
          "{{ bos_token is defined }}"}},
        std::nullopt, "</s>");
    ASSERT_TRUE(t);
    ChatRenderContext ctx = user_says("hi");
    EXPECT_EQ(*t->render(ctx), "[user:hi]False");
    ctx.add_generation_prompt = true;
    ctx.chat_template_kwargs = {{"enable_thinking", false}};
    EXPECT_EQ(*t->render(ctx), "[user:hi]<gen><nothink>False");
}

TEST(ChatTemplateRender, StringArgumentsAreParsedUnlessInvalid) {
    Json messages = Json::parse(R"([{"role": "assistant", "tool_calls": [
        {"function": {"name": "f", "arguments": "{\"b\": 1, \"a\": [2]}"}},
        {"function": {"name": "g", "arguments": "not json"}},
        {"function": {"name": "h", "arguments": {"x": true}}}]}])");
    Json out = normalize_tool_call_arguments(messages);
    EXPECT_EQ(out[0]["tool_calls"][0]["function"]["arguments"].dump(), R"({"b":1,"a":[2]})");
    EXPECT_EQ(out[0]["tool_calls"][1]["function"]["arguments"], "not json");
    EXPECT_EQ(out[0]["tool_calls"][2]["function"]["arguments"].dump(), R"({"x":true})");

    auto t = ChatTemplate::from_sources(
        {{"default",
          "{% for c in messages[0].tool_calls %}{{ c.function.arguments is mapping }}"
          "{% if c.function.arguments is mapping %}{% for k, v in c.function.arguments|items %}"
          "{{ k }}={{ v|tojson }};{% endfor %}{% endif %}{% endfor %}"}},
        std::nullopt, std::nullopt);
    ASSERT_TRUE(t);
    ChatRenderContext ctx;
    ctx.messages = messages;
    EXPECT_EQ(*t->render(ctx), "Trueb=1;a=[2];FalseTruex=true;");
}

TEST(ChatTemplateRender, RaiseExceptionIsTemplateRenderFailed) {
    auto t = ChatTemplate::from_sources(
        {{"default", "{{ raise_exception('roles must alternate') }}"}}, std::nullopt,
        std::nullopt);
    ASSERT_TRUE(t);
    auto r = t->render(user_says("x"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kTemplateRenderFailed);
    EXPECT_EQ(r.error().message(), "template render error at line 1: roles must alternate");
}

}  // namespace
}  // namespace helexa::text
