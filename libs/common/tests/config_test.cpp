#include "helexa/common/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace helexa {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Runs `fn`, expecting a ConfigError; returns its message.
template <typename Fn>
std::string config_error_of(Fn&& fn) {
    try {
        fn();
    } catch (const ConfigError& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected ConfigError";
    return {};
}

ConfigReader cortex(std::string_view text, Environment env = {}) {
    return ConfigReader::from_string(text, "cortex.toml", "CORTEX_", std::move(env));
}

TEST(Config, TypedGettersReadFileValues) {
    auto cfg = cortex(R"(
port = 31313
ratio = 0.5
whole = 3
name = "fleet"
enabled = true
tags = ["a", "b"]
sizes = [1, 2, 3]
[gateway]
listen = "0.0.0.0:31313"
)");
    EXPECT_EQ(cfg.require<int>("port"), 31313);
    EXPECT_EQ(cfg.get<uint16_t>("port", 1), 31313);
    EXPECT_DOUBLE_EQ(cfg.require<double>("ratio"), 0.5);
    EXPECT_DOUBLE_EQ(cfg.require<double>("whole"), 3.0);  // integers read as floats
    EXPECT_EQ(cfg.require<std::string>("name"), "fleet");
    EXPECT_TRUE(cfg.require<bool>("enabled"));
    EXPECT_THAT(cfg.require<std::vector<std::string>>("tags"), ElementsAre("a", "b"));
    EXPECT_THAT(cfg.require<std::vector<int64_t>>("sizes"), ElementsAre(1, 2, 3));
    EXPECT_EQ(cfg.require<std::string>("gateway.listen"), "0.0.0.0:31313");
    EXPECT_EQ(cfg.require<ListenAddress>("gateway.listen"), (ListenAddress{"0.0.0.0", 31313}));
}

TEST(Config, DefaultsAndOptionalsForAbsentKeys) {
    auto cfg = cortex("[gateway]\n");
    EXPECT_EQ(cfg.get<int64_t>("gateway.poll_interval_secs", 5), 5);
    EXPECT_EQ(cfg.get("gateway.name", "default"), "default");
    EXPECT_FALSE(cfg.get_optional<bool>("missing").has_value());
    EXPECT_FALSE(cfg.contains("gateway.listen"));
    EXPECT_TRUE(cfg.contains("gateway"));
}

TEST(Config, EnvironmentOverridesFile) {
    auto cfg = cortex("port = 1\n[gateway]\nlisten = \"127.0.0.1:1\"\npoll_interval_secs = 5\n",
                      {{"CORTEX_PORT", "2"},
                       {"CORTEX_GATEWAY__LISTEN", "0.0.0.0:9"},
                       {"CORTEX_GATEWAY__NEW_KEY", "x"}});
    EXPECT_EQ(cfg.require<int>("port"), 2);
    EXPECT_EQ(cfg.require<std::string>("gateway.listen"), "0.0.0.0:9");
    EXPECT_EQ(cfg.require<int>("gateway.poll_interval_secs"), 5);  // no override: file value
    EXPECT_EQ(cfg.require<std::string>("gateway.new_key"), "x");   // only in the environment
    // Through a child reader the variable name is the same.
    EXPECT_EQ(cfg.table("gateway").require<std::string>("listen"), "0.0.0.0:9");
    EXPECT_EQ(cfg.env_var_name("gateway.listen"), "CORTEX_GATEWAY__LISTEN");
}

TEST(Config, TopLevelKeyMapsToPrefixPlusName) {
    auto cfg = ConfigReader::from_string("", "neuron.toml", "NEURON_",
                                         {{"NEURON_PORT", "13131"}, {"NEURON_MROPE", "0"}});
    EXPECT_EQ(cfg.env_var_name("port"), "NEURON_PORT");
    EXPECT_EQ(cfg.require<int>("port"), 13131);
    EXPECT_THAT(cfg.unknown_keys(), IsEmpty());  // unrelated NEURON_* are not unknown keys
}

TEST(Config, EmptyEnvironmentValueCountsAsUnset) {
    auto cfg = cortex("port = 7\n", {{"CORTEX_PORT", ""}});
    EXPECT_EQ(cfg.require<int>("port"), 7);
}

TEST(Config, EnvironmentStringsConvertToRequestedType) {
    auto cfg = cortex("", {{"CORTEX_A", "yes"},
                           {"CORTEX_B", "0"},
                           {"CORTEX_C", "FALSE"},
                           {"CORTEX_D", "-42"},
                           {"CORTEX_E", "2.5"},
                           {"CORTEX_F", "a, b ,c"},
                           {"CORTEX_G", R"(["x,y", "z"])"},
                           {"CORTEX_H", "1,2"},
                           {"CORTEX_I", "[1.5, 2]"}});
    EXPECT_TRUE(cfg.require<bool>("a"));
    EXPECT_FALSE(cfg.require<bool>("b"));
    EXPECT_FALSE(cfg.require<bool>("c"));
    EXPECT_EQ(cfg.require<int32_t>("d"), -42);
    EXPECT_DOUBLE_EQ(cfg.require<double>("e"), 2.5);
    EXPECT_THAT(cfg.require<std::vector<std::string>>("f"), ElementsAre("a", "b", "c"));
    EXPECT_THAT(cfg.require<std::vector<std::string>>("g"), ElementsAre("x,y", "z"));
    EXPECT_THAT(cfg.require<std::vector<int64_t>>("h"), ElementsAre(1, 2));
    EXPECT_THAT(cfg.require<std::vector<double>>("i"), ElementsAre(1.5, 2.0));
}

TEST(Config, BadEnvironmentValueNamesVariable) {
    auto cfg = cortex("", {{"CORTEX_GATEWAY__PORT", "abc"}, {"CORTEX_FLAG", "maybe"}});
    EXPECT_EQ(config_error_of([&] { (void)cfg.get<int>("gateway.port", 0); }),
              "cortex.toml: key 'gateway.port' (environment CORTEX_GATEWAY__PORT): expected "
              "integer, got \"abc\"");
    EXPECT_THAT(config_error_of([&] { (void)cfg.get<bool>("flag", false); }),
                HasSubstr("CORTEX_FLAG): expected boolean"));
}

TEST(Config, TypeErrorNamesFileKeyExpectedAndActual) {
    auto cfg = cortex("[gateway]\npoll_interval_secs = \"five\"\nlisten = 5\nport = 70000\n");
    EXPECT_EQ(config_error_of([&] { (void)cfg.get<int64_t>("gateway.poll_interval_secs", 5); }),
              "cortex.toml: key 'gateway.poll_interval_secs': expected integer, got string "
              "\"five\"");
    EXPECT_EQ(config_error_of([&] { (void)cfg.get<std::string>("gateway.listen", "x"); }),
              "cortex.toml: key 'gateway.listen': expected string, got integer 5");
    EXPECT_EQ(config_error_of([&] { (void)cfg.get<uint16_t>("gateway.port", 1); }),
              "cortex.toml: key 'gateway.port': expected integer in [0, 65535], got integer "
              "70000");
    EXPECT_THAT(config_error_of([&] { (void)cfg.table("gateway.listen"); }),
                HasSubstr("key 'gateway.listen': expected table, got integer 5"));
    EXPECT_THAT(config_error_of([&] { (void)cfg.get<int>("gateway.listen.x", 1); }),
                HasSubstr("key 'gateway.listen': expected table"));
}

TEST(Config, ArrayElementTypeErrorNamesIndex) {
    auto cfg = cortex("tags = [\"a\", 2]\n");
    EXPECT_EQ(config_error_of([&] { (void)cfg.get<std::vector<std::string>>("tags", {}); }),
              "cortex.toml: key 'tags[1]': expected string, got integer 2");
}

TEST(Config, MissingRequiredKeyNamesEnvironmentVariable) {
    auto cfg = cortex("");
    EXPECT_EQ(config_error_of([&] { (void)cfg.require<std::string>("gateway.listen"); }),
              "cortex.toml: missing required key 'gateway.listen' (or set "
              "CORTEX_GATEWAY__LISTEN)");
}

TEST(Config, MalformedTomlNamesFileLineAndColumn) {
    std::string msg = config_error_of([] { (void)cortex("a = 1\nb = = 2\n"); });
    EXPECT_THAT(msg, HasSubstr("cortex.toml: malformed TOML at line 2, column"));
    msg = config_error_of([] { (void)cortex("[x]\n[x]\n"); });
    EXPECT_THAT(msg, HasSubstr("cortex.toml: malformed TOML at line 2"));
}

TEST(Config, UnknownKeysAreThoseNeverRead) {
    auto cfg = cortex(R"(
port = 1
typo_key = 2
[gateway]
listen = "a:1"
lisen = "b:2"
[empty_section]
[models]
list = ["a"]
)");
    (void)cfg.get<int>("port", 0);
    (void)cfg.get<std::string>("gateway.listen", "");
    (void)cfg.get<std::vector<std::string>>("models.list", {});
    EXPECT_THAT(cfg.unknown_keys(), ElementsAre("empty_section", "gateway.lisen", "typo_key"));
    // A child reader reports its own part.
    EXPECT_THAT(cfg.table("gateway").unknown_keys(), ElementsAre("gateway.lisen"));
    (void)cfg.table("empty_section");
    EXPECT_THAT(cfg.unknown_keys(), ElementsAre("gateway.lisen", "typo_key"));
}

TEST(Config, ArraysOfTablesKeepFullKeysInErrors) {
    auto cfg = cortex(R"(
[[neurons]]
name = "a"
endpoint = "http://a:13131"
[[neurons]]
name = "b"
endpoint = 7
extra = true
)",
                      {{"CORTEX_NEURONS__0__NAME", "renamed"}});
    auto neurons = cfg.table_array("neurons");
    ASSERT_EQ(neurons.size(), 2u);
    EXPECT_EQ(neurons[0].require<std::string>("name"), "renamed");
    EXPECT_EQ(neurons[0].require<std::string>("endpoint"), "http://a:13131");
    EXPECT_EQ(neurons[1].require<std::string>("name"), "b");
    EXPECT_EQ(neurons[1].full_key("endpoint"), "neurons[1].endpoint");
    EXPECT_EQ(config_error_of([&] { (void)neurons[1].require<std::string>("endpoint"); }),
              "cortex.toml: key 'neurons[1].endpoint': expected string, got integer 7");
    EXPECT_THAT(cfg.unknown_keys(), ElementsAre("neurons[1].extra"));
    EXPECT_THAT(cfg.table_array("absent"), IsEmpty());
    EXPECT_THAT(config_error_of([&] { (void)cfg.table_array("neurons[0].name"); }),
                HasSubstr("key 'neurons[0].name': expected array of tables"));
    // Index paths work from the root too.
    EXPECT_EQ(cfg.require<std::string>("neurons[1].name"), "b");
}

TEST(Config, InlineTablesReadLikeTables) {
    auto cfg = cortex(R"(
[[budgets]]
account = "team"
window = { kind = "rolling", seconds = 60 }
)",
                      {{"CORTEX_BUDGETS__0__WINDOW__SECONDS", "120"}});
    auto budgets = cfg.table_array("budgets");
    ASSERT_EQ(budgets.size(), 1u);
    auto window = budgets[0].table("window");
    EXPECT_EQ(window.require<std::string>("kind"), "rolling");
    EXPECT_EQ(window.require<int>("seconds"), 120);
    EXPECT_EQ(budgets[0].require<std::string>("window.kind"), "rolling");
    EXPECT_THAT(cfg.unknown_keys(), ElementsAre("budgets[0].account"));
}

TEST(Config, KeysAndLiteralChildTables) {
    auto cfg = cortex(R"(
[sources.huggingface]
endpoint = "https://huggingface.co"
[sources."my.mirror"]
endpoint = "https://mirror"
)");
    auto sources = cfg.table("sources");
    EXPECT_THAT(sources.keys(), ElementsAre("huggingface", "my.mirror"));
    EXPECT_EQ(sources.child_table("my.mirror").require<std::string>("endpoint"),
              "https://mirror");
    EXPECT_EQ(sources.child_table("huggingface").require<std::string>("endpoint"),
              "https://huggingface.co");
    EXPECT_THAT(cfg.unknown_keys(), IsEmpty());
}

TEST(Config, AbsentTableStillTakesEnvironment) {
    auto cfg = cortex("", {{"CORTEX_METRICS__LISTEN", "0.0.0.0:31314"}});
    auto metrics = cfg.table("metrics");
    EXPECT_FALSE(cfg.optional_table("metrics").has_value());
    EXPECT_EQ(metrics.require<ListenAddress>("listen"), (ListenAddress{"0.0.0.0", 31314}));
}

class ConfigFileTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/helexa_config_testXXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::filesystem::path dir_;
};

TEST_F(ConfigFileTest, ReadsFileAndUsesPathInMessages) {
    auto path = dir_ / "cortex.toml";
    std::ofstream(path) << "port = \"x\"\n";
    auto cfg = ConfigReader::from_file(path, "CORTEX_", {});
    EXPECT_EQ(cfg.source(), path.string());
    EXPECT_EQ(config_error_of([&] { (void)cfg.get<int>("port", 0); }),
              path.string() + ": key 'port': expected integer, got string \"x\"");
}

TEST_F(ConfigFileTest, MissingFileIsErrorUnlessOptional) {
    auto path = dir_ / "absent.toml";
    EXPECT_EQ(config_error_of([&] { (void)ConfigReader::from_file(path, "CORTEX_", {}); }),
              "cannot read config file '" + path.string() + "': No such file or directory");
    auto cfg = ConfigReader::from_optional_file(path, "CORTEX_", {{"CORTEX_PORT", "5"}});
    EXPECT_EQ(cfg.get<int>("port", 1), 5);
    EXPECT_EQ(cfg.get<int>("other", 1), 1);
}

TEST_F(ConfigFileTest, UnreadablePathNamesErrnoText) {
    // A directory opens but cannot be read: EISDIR, even for an optional file.
    EXPECT_EQ(config_error_of([&] { (void)ConfigReader::from_optional_file(dir_, "X_", {}); }),
              "cannot read config file '" + dir_.string() + "': Is a directory");
}

TEST(ListenAddress, ParsesHostPortForms) {
    EXPECT_EQ(*parse_listen_address("0.0.0.0:31313"), (ListenAddress{"0.0.0.0", 31313}));
    EXPECT_EQ(*parse_listen_address("localhost:0"), (ListenAddress{"localhost", 0}));
    EXPECT_EQ(*parse_listen_address("[::1]:8080"), (ListenAddress{"::1", 8080}));
    EXPECT_EQ(parse_listen_address("[::1]:8080")->to_string(), "[::1]:8080");
    EXPECT_EQ(parse_listen_address(" 127.0.0.1:65535 ")->to_string(), "127.0.0.1:65535");
}

TEST(ListenAddress, RejectsBadFormsWithReason) {
    struct Case {
        const char* text;
        const char* reason;
    };
    for (const Case& c : {Case{"31313", "missing ':port'"}, Case{":31313", "missing host"},
                          Case{"host:", "missing port"}, Case{"host:70000", "0 to 65535"},
                          Case{"host:12ab", "0 to 65535"}, Case{"::1:80", "need brackets"},
                          Case{"[::1]80", "missing ':port' after ']'"}, Case{"[::1:80", "']'"},
                          Case{"a b:80", "invalid character"}, Case{"", "missing ':port'"}}) {
        auto r = parse_listen_address(c.text);
        ASSERT_FALSE(r.has_value()) << c.text;
        EXPECT_EQ(r.error().code(), ErrorCode::kConfig);
        EXPECT_THAT(r.error().message(), HasSubstr(c.reason)) << c.text;
    }
}

TEST(ListenAddress, ConfigKeyErrorNamesKey) {
    auto cfg = cortex("[gateway]\nlisten = \"nonsense\"\n");
    EXPECT_THAT(config_error_of([&] { (void)cfg.require<ListenAddress>("gateway.listen"); }),
                HasSubstr("cortex.toml: key 'gateway.listen': invalid listen address "
                          "\"nonsense\": missing ':port'"));
}

TEST(Config, ExitCodeIsTwo) {
    EXPECT_EQ(config_exit_code(), 2);
}

}  // namespace
}  // namespace helexa
