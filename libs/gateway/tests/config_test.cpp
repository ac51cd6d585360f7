#include "helexa/gateway/config.h"

#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace helexa::gateway {
namespace {

TEST(CortexConfig, DefaultsWhenEmpty) {
    auto cfg = parse_cortex_config("", "cortex.toml");
    ASSERT_TRUE(cfg) << cfg.error().message();
    EXPECT_EQ(cfg->gateway.listen, "0.0.0.0:31313");
    EXPECT_EQ(cfg->gateway.metrics_listen, "0.0.0.0:31314");
    EXPECT_EQ(cfg->gateway.poll_interval_secs, 5);
    EXPECT_EQ(cfg->gateway.state_dir, "/var/lib/cortex");
    EXPECT_FALSE(cfg->gateway.default_model.has_value());
    EXPECT_EQ(cfg->eviction.strategy, EvictionStrategy::kLru);
    EXPECT_EQ(cfg->eviction.defrag_after_cycles, 50);
    EXPECT_EQ(cfg->models_config, "/etc/cortex/models.toml");
    EXPECT_FALSE(cfg->entitlements.require_auth);
    EXPECT_TRUE(cfg->entitlements.keys.empty());
    EXPECT_TRUE(cfg->neurons.empty());
}

TEST(CortexConfig, FullFile) {
    const char* text = R"(
models_config = "/srv/models.toml"
[gateway]
listen = "127.0.0.1:9000"
metrics_listen = "127.0.0.1:9001"
poll_interval_secs = 2
state_dir = "/tmp/cortex"
default_model = "helexa/large"

[eviction]
strategy = "priority"
defrag_after_cycles = 7

[[neurons]]
name = "beast"
endpoint = "http://beast.internal:13131/"

[[nodes]]
name = "benjy"
endpoint = "http://benjy.internal:13131"

[entitlements]
require_auth = true
[[entitlements.keys]]
key = "sk-a0"
account_id = "agent-zero"
key_id = "a0"
hard_cap = 1000
window = { kind = "rolling", seconds = 3600 }
[[entitlements.keys]]
key = "sk-infra"
account_id = "infra"
)";
    auto cfg = parse_cortex_config(text, "cortex.toml");
    ASSERT_TRUE(cfg) << cfg.error().message();
    EXPECT_EQ(cfg->models_config, "/srv/models.toml");
    EXPECT_EQ(cfg->gateway.listen, "127.0.0.1:9000");
    EXPECT_EQ(cfg->gateway.poll_interval_secs, 2);
    EXPECT_EQ(cfg->gateway.default_model, "helexa/large");
    EXPECT_EQ(cfg->eviction.strategy, EvictionStrategy::kPriority);
    EXPECT_EQ(cfg->eviction.defrag_after_cycles, 7);
    ASSERT_EQ(cfg->neurons.size(), 2u);
    EXPECT_EQ(cfg->neurons[0].endpoint, "http://beast.internal:13131");
    EXPECT_EQ(cfg->neurons[1].name, "benjy");
    ASSERT_EQ(cfg->entitlements.keys.size(), 2u);
    const auto& a0 = cfg->entitlements.keys[0];
    EXPECT_EQ(a0.key_id, "a0");
    EXPECT_EQ(a0.hard_cap, 1000);
    EXPECT_EQ(a0.window.kind, CapWindow::Kind::kRolling);
    EXPECT_EQ(a0.window.seconds, 3600);
    const auto& infra = cfg->entitlements.keys[1];
    EXPECT_FALSE(infra.hard_cap.has_value());
    EXPECT_EQ(infra.window.kind, CapWindow::Kind::kBalance);
    EXPECT_EQ(infra.key_id, derive_key_id("sk-infra"));
    EXPECT_EQ(infra.key_id.find("sk-infra"), std::string::npos);
    EXPECT_TRUE(cfg->warnings.empty());
}

TEST(CortexConfig, UnknownKeysAreWarningsNotErrors) {
    auto cfg = parse_cortex_config("[gateway]\nlisten_typo = \"x\"\n", "c.toml");
    ASSERT_TRUE(cfg);
    ASSERT_EQ(cfg->warnings.size(), 1u);
    EXPECT_NE(cfg->warnings[0].find("gateway.listen_typo"), std::string::npos);
}

struct BadCase {
    const char* toml;
    const char* expect_in_message;
};

class CortexConfigErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(CortexConfigErrors, NamesFileAndKey) {
    auto cfg = parse_cortex_config(GetParam().toml, "cortex.toml");
    ASSERT_FALSE(cfg);
    EXPECT_EQ(cfg.error().code(), ErrorCode::kConfig);
    EXPECT_NE(cfg.error().message().find("cortex.toml"), std::string::npos);
    EXPECT_NE(cfg.error().message().find(GetParam().expect_in_message), std::string::npos)
        << cfg.error().message();
}

INSTANTIATE_TEST_SUITE_P(
    All, CortexConfigErrors,
    ::testing::Values(
        BadCase{"[gateway\n", "invalid TOML"},
        BadCase{"[gateway]\npoll_interval_secs = \"5\"\n", "gateway.poll_interval_secs"},
        BadCase{"[gateway]\npoll_interval_secs = 0\n", "gateway.poll_interval_secs"},
        BadCase{"[eviction]\nstrategy = \"fifo\"\n", "eviction.strategy"},
        BadCase{"[[neurons]]\nendpoint = \"http://x:1\"\n", "neurons[0].name"},
        BadCase{"[[neurons]]\nname = \"a\"\nendpoint = \"x:1\"\n", "neurons[0].endpoint"},
        BadCase{"[[neurons]]\nname=\"a\"\nendpoint=\"http://a\"\n[[nodes]]\nname=\"a\"\n"
                "endpoint=\"http://b\"\n",
                "duplicate neuron name"},
        BadCase{"neurons = 3\n", "neurons"},
        BadCase{"[entitlements]\nrequire_auth = \"yes\"\n", "entitlements.require_auth"},
        BadCase{"[[entitlements.keys]]\naccount_id = \"a\"\n", "entitlements.keys[0].key"},
        BadCase{"[[entitlements.keys]]\nkey = \"k\"\n", "entitlements.keys[0].account_id"},
        BadCase{"[[entitlements.keys]]\nkey=\"k\"\naccount_id=\"a\"\nhard_cap=-1\n", "hard_cap"},
        BadCase{"[[entitlements.keys]]\nkey=\"k\"\naccount_id=\"a\"\nwindow={kind=\"monthly\"}\n",
                "window.kind"},
        BadCase{"[[entitlements.keys]]\nkey=\"k\"\naccount_id=\"a\"\nwindow={kind=\"rolling\"}\n",
                "window.seconds"},
        BadCase{"[[entitlements.keys]]\nkey=\"k\"\naccount_id=\"a\"\nwindow=\"rolling\"\n",
                "window"},
        BadCase{"[[entitlements.keys]]\nkey=\"k\"\naccount_id=\"a\"\n[[entitlements.keys]]\n"
                "key=\"k\"\naccount_id=\"b\"\n",
                "duplicate key"}));

TEST(CortexConfig, EnvironmentOverridesScalars) {
    std::map<std::string, std::string> env{{"CORTEX_GATEWAY__LISTEN", "127.0.0.1:1"},
                                           {"CORTEX_GATEWAY__POLL_INTERVAL_SECS", "9"},
                                           {"CORTEX_ENTITLEMENTS__REQUIRE_AUTH", "true"},
                                           {"CORTEX_MODELS_CONFIG", "/x/models.toml"},
                                           {"OTHER", "ignored"}};
    auto cfg = parse_cortex_config("[gateway]\nlisten = \"0.0.0.0:1\"\n", "c.toml", env);
    ASSERT_TRUE(cfg) << cfg.error().message();
    EXPECT_EQ(cfg->gateway.listen, "127.0.0.1:1");
    EXPECT_EQ(cfg->gateway.poll_interval_secs, 9);
    EXPECT_TRUE(cfg->entitlements.require_auth);
    EXPECT_EQ(cfg->models_config, "/x/models.toml");

    auto bad = parse_cortex_config("", "c.toml", {{"CORTEX_GATEWAY__POLL_INTERVAL_SECS", "x"}});
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("CORTEX_GATEWAY__POLL_INTERVAL_SECS"), std::string::npos);
}

TEST(CortexConfig, MissingFileIsAnError) {
    auto cfg = load_cortex_config("/nonexistent/cortex.toml");
    ASSERT_FALSE(cfg);
    EXPECT_NE(cfg.error().message().find("/nonexistent/cortex.toml"), std::string::npos);
}

TEST(Catalogue, ParsesModelsAndAliases) {
    const char* text = R"(
[[models]]
id = "Qwen/Qwen3.6-27B"
harness = "candle"
quant = "q6k"
vram_mb = 45000
min_devices = 2
min_device_vram_mb = 24000
pinned_on = ["beast"]
source = "helexa"
cost = { input = 0.5, output = 1.5, cache_read = 0.05 }
limit = { context = 999999, output = 1 }

[[models]]
id = "Qwen/Qwen3-1.7B"

[aliases]
"helexa/small" = "Qwen/Qwen3-1.7B"
)";
    auto cat = parse_catalogue(text, "models.toml");
    ASSERT_TRUE(cat) << cat.error().message();
    ASSERT_EQ(cat->models.size(), 2u);
    const auto& big = cat->models[0];
    EXPECT_EQ(big.quant, "q6k");
    EXPECT_EQ(big.vram_mb, 45000);
    EXPECT_EQ(big.min_devices, 2);
    EXPECT_EQ(big.min_device_vram_mb, 24000);
    EXPECT_EQ(big.qualified_id(), "helexa:Qwen/Qwen3.6-27B");
    ASSERT_TRUE(big.cost.has_value());
    EXPECT_DOUBLE_EQ(big.cost->output, 1.5);
    EXPECT_EQ(big.cost->cache_read, 0.05);
    EXPECT_FALSE(big.cost->cache_write.has_value());
    const auto& small = cat->models[1];
    EXPECT_EQ(small.harness, "candle");
    EXPECT_EQ(small.min_devices, 1);
    EXPECT_EQ(small.qualified_id(), "Qwen/Qwen3-1.7B");
    EXPECT_EQ(cat->resolve_alias("helexa/small"), "Qwen/Qwen3-1.7B");
    EXPECT_EQ(cat->resolve_alias("Qwen/Qwen3-8B"), "Qwen/Qwen3-8B");
    EXPECT_EQ(cat->find("helexa:Qwen/Qwen3.6-27B"), &cat->models[0]);
    EXPECT_EQ(cat->find("nope"), nullptr);
}

TEST(Catalogue, Errors) {
    EXPECT_FALSE(parse_catalogue("[[models]]\nharness=\"candle\"\n", "m.toml"));
    EXPECT_FALSE(parse_catalogue("[[models]]\nid=\"a\"\n[[models]]\nid=\"a\"\n", "m.toml"));
    EXPECT_FALSE(parse_catalogue("[[models]]\nid=\"a\"\npinned_on=\"beast\"\n", "m.toml"));
    EXPECT_FALSE(parse_catalogue("[[models]]\nid=\"a\"\ncost={input=\"x\"}\n", "m.toml"));
    EXPECT_FALSE(parse_catalogue("[aliases]\n\"x\" = 3\n", "m.toml"));
    auto err = parse_catalogue("[[models]]\nid=\"a\"\nvram_mb=-5\n", "m.toml");
    ASSERT_FALSE(err);
    EXPECT_NE(err.error().message().find("models[0].vram_mb"), std::string::npos);
}

TEST(Catalogue, MissingFileIsEmptyButBrokenFileIsAnError) {
    bool missing = false;
    auto cat = load_catalogue("/nonexistent/models.toml", &missing);
    ASSERT_TRUE(cat);
    EXPECT_TRUE(missing);
    EXPECT_TRUE(cat->models.empty());

    const std::string path = ::testing::TempDir() + "/broken_models.toml";
    std::ofstream(path) << "[[models]\n";
    auto broken = load_catalogue(path, &missing);
    EXPECT_FALSE(missing);
    ASSERT_FALSE(broken);
    EXPECT_NE(broken.error().message().find(path), std::string::npos);
}

DeviceInfo dev(int64_t index, int64_t vram) {
    return DeviceInfo{index, "DEV", vram};
}

TEST(ModelProfile, Feasibility) {
    ModelProfile p;
    p.id = "m";
    p.min_devices = 2;
    p.min_device_vram_mb = 24000;
    EXPECT_TRUE(p.is_feasible_on("beast", {dev(0, 32000), dev(1, 32000)}));
    EXPECT_FALSE(p.is_feasible_on("benjy", {dev(0, 64000)}));
    EXPECT_FALSE(p.is_feasible_on("mixed", {dev(0, 32000), dev(1, 12000)}));
    p.pinned_on = {"beast"};
    EXPECT_TRUE(p.is_feasible_on("beast", {dev(0, 32000), dev(1, 32000)}));
    EXPECT_FALSE(p.is_feasible_on("other", {dev(0, 32000), dev(1, 32000)}));
    p.pinned_on.clear();
    p.min_device_vram_mb.reset();
    EXPECT_TRUE(p.is_feasible_on("anywhere", {dev(0, 1000), dev(1, 1000)}));
    ModelProfile cpu;
    cpu.min_devices = 0;
    EXPECT_TRUE(cpu.is_feasible_on("cpu-host", {}));
    ModelProfile gpu;
    EXPECT_FALSE(gpu.is_feasible_on("cpu-host", {}));
}

TEST(ExampleFiles, ParseCleanly) {
    auto cfg = load_cortex_config(std::string(HELEXA_SOURCE_DIR) + "/cortex.example.toml");
    ASSERT_TRUE(cfg) << cfg.error().message();
    EXPECT_TRUE(cfg->warnings.empty());
    EXPECT_EQ(cfg->gateway.listen, "0.0.0.0:31313");
    EXPECT_EQ(cfg->neurons.size(), 1u);
    auto cat = load_catalogue(std::string(HELEXA_SOURCE_DIR) + "/models.example.toml");
    ASSERT_TRUE(cat) << cat.error().message();
    EXPECT_EQ(cat->models.size(), 2u);
    EXPECT_EQ(cat->resolve_alias("helexa/large"), "Qwen/Qwen3.6-27B");
}

}  // namespace
}  // namespace helexa::gateway
