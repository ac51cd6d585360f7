#include "helexa/gateway/router.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "fleet_fixtures.h"
#include "helexa/common/error_envelope.h"

namespace helexa::gateway {
namespace {

using testing::fleet;
using testing::gpu;
using testing::model;
using testing::node;

Catalogue catalogue() {
    Catalogue c;
    ModelProfile big;
    big.id = "Qwen/Qwen3.6-27B";
    big.min_devices = 2;
    big.min_device_vram_mb = 24000;
    big.quant = "q6k";
    c.models.push_back(big);
    ModelProfile small;
    small.id = "Qwen/Qwen3-1.7B";
    small.position = 1;
    c.models.push_back(small);
    ModelProfile pinned;
    pinned.id = "Qwen/Qwen3-8B";
    pinned.pinned_on = {"zeta"};
    pinned.source = "helexa";
    pinned.position = 2;
    c.models.push_back(pinned);
    c.aliases = {{"helexa/small", "Qwen/Qwen3-1.7B"}, {"helexa/large", "Qwen/Qwen3.6-27B"}};
    return c;
}

TEST(ResolveModelName, AliasesAndClaudeNames) {
    auto c = catalogue();
    std::optional<std::string> def = "helexa/large";
    EXPECT_EQ(resolve_model_name("helexa/small", c, def), "Qwen/Qwen3-1.7B");
    EXPECT_EQ(resolve_model_name("claude-sonnet-4-5", c, def), "Qwen/Qwen3.6-27B");
    EXPECT_EQ(resolve_model_name("claude-sonnet-4-5", c, std::nullopt), "claude-sonnet-4-5");
    EXPECT_EQ(resolve_model_name("Qwen/Qwen3-8B", c, def), "Qwen/Qwen3-8B");
    c.aliases["claude-haiku-4-5"] = "Qwen/Qwen3-1.7B";
    EXPECT_EQ(resolve_model_name("claude-haiku-4-5", c, def), "Qwen/Qwen3-1.7B");
}

TEST(ResolveRoute, LeastBusyReplicaWithNameTieBreak) {
    auto a = node("alpha");
    auto b = node("bravo");
    a.models = {model("m")};
    b.models = {model("m")};
    a.load["m"] = {1, 2};
    b.load["m"] = {0, 1};
    auto f = fleet({a, b});
    auto r = resolve_route("m", f, {}, std::nullopt);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->kind, RouteDecision::Kind::kRoute);
    EXPECT_EQ(r->target.node, "bravo");
    EXPECT_EQ(r->target.base_url, "http://bravo.internal:13131");

    f.find_mut("bravo")->load["m"] = {3, 0};  // the load flips
    r = resolve_route("m", f, {}, std::nullopt);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->target.node, "alpha");

    f.find_mut("alpha")->load["m"] = {3, 0};  // tie → by name
    r = resolve_route("m", f, {}, std::nullopt);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->target.node, "alpha");
}

TEST(ResolveRoute, SkipsUnhealthyNodesAndUsesModelEndpoint) {
    auto a = node("alpha", {}, /*healthy=*/false);
    auto b = node("bravo");
    a.models = {model("m")};
    auto mb = model("m");
    mb.endpoint = "http://bravo.internal:14000/x";
    b.models = {mb};
    b.load["m"] = {50, 50};
    auto r = resolve_route("m", fleet({a, b}), {}, std::nullopt);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->target.node, "bravo");
    EXPECT_EQ(r->target.base_url, "http://bravo.internal:14000/x");
}

TEST(ResolveRoute, AliasRoutesToConcreteIdAndQualifiedNeuronId) {
    auto c = catalogue();
    auto z = node("zeta", {gpu(0, 24000)});
    z.models = {model("helexa:Qwen/Qwen3-8B")};
    c.aliases["fast"] = "Qwen/Qwen3-8B";
    auto r = resolve_route("fast", fleet({z}), c, std::nullopt);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->resolved_model, "Qwen/Qwen3-8B");
    EXPECT_EQ(r->target.upstream_model, "helexa:Qwen/Qwen3-8B");
}

TEST(ResolveRoute, RecoveringIs503WithRetryAfter2AndNoColdLoad) {
    auto c = catalogue();
    auto b = node("beast", {gpu(0, 32000), gpu(1, 32000)});
    b.models = {model("Qwen/Qwen3.6-27B", ModelStatus::kRecovering)};
    auto r = resolve_route("Qwen/Qwen3.6-27B", fleet({b}), c, std::nullopt);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kModelRecovering);
    EXPECT_EQ(r.error().retry_after_secs(), 2);
    auto env = openai_envelope(r.error());
    EXPECT_EQ(env.http_status, 503);
    EXPECT_EQ(env.body["error"]["code"], "model_recovering");
}

TEST(ResolveRoute, LoadedElsewhereBeatsRecovering) {
    auto a = node("alpha");
    auto b = node("bravo");
    a.models = {model("m", ModelStatus::kRecovering)};
    b.models = {model("m")};
    auto r = resolve_route("m", fleet({a, b}), {}, std::nullopt);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->target.node, "bravo");
}

TEST(ResolveRoute, UnloadedEntryRoutesForLazyLoad) {
    auto a = node("alpha");
    a.models = {model("m", ModelStatus::kUnloaded)};
    auto r = resolve_route("m", fleet({a}), {}, std::nullopt);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->kind, RouteDecision::Kind::kRoute);
    EXPECT_EQ(r->target.node, "alpha");
}

TEST(ResolveRoute, CatalogueColdLoadPicksFeasibleNeuron) {
    auto c = catalogue();
    auto small_host = node("alpha", {gpu(0, 12000)});
    auto beast = node("beast", {gpu(0, 32000), gpu(1, 32000)});
    auto r = resolve_route("helexa/large", fleet({small_host, beast}), c, std::nullopt);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->kind, RouteDecision::Kind::kColdLoad);
    EXPECT_EQ(r->cold_load.node, "beast");
    EXPECT_EQ(r->cold_load.node_endpoint, "http://beast.internal:13131");
    EXPECT_EQ(r->cold_load.load_spec["model_id"], "Qwen/Qwen3.6-27B");
    EXPECT_EQ(r->cold_load.load_spec["quant"], "q6k");
    EXPECT_EQ(r->cold_load.load_spec["tensor_parallel"], 2);
    EXPECT_EQ(r->cold_load.load_spec["devices"], nlohmann::json::array({0, 1}));

    // Small model: feasible everywhere → first by name.
    r = resolve_route("Qwen/Qwen3-1.7B", fleet({small_host, beast}), c, std::nullopt);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->cold_load.node, "alpha");
    EXPECT_FALSE(r->cold_load.load_spec.contains("tensor_parallel"));
}

TEST(ResolveRoute, PinnedNeuronPreferredAndQualifiedIdLoaded) {
    auto c = catalogue();
    auto r = resolve_route("Qwen/Qwen3-8B",
                           fleet({node("alpha", {gpu(0, 24000)}), node("zeta", {gpu(0, 24000)})}),
                           c, std::nullopt);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->cold_load.node, "zeta");
    EXPECT_EQ(r->cold_load.load_spec["model_id"], "helexa:Qwen/Qwen3-8B");
    EXPECT_EQ(r->cold_load.upstream_model, "helexa:Qwen/Qwen3-8B");
}

TEST(ResolveRoute, NoFeasibleOrHealthyNodeIs503RetryAfter5) {
    auto c = catalogue();
    auto r = resolve_route("Qwen/Qwen3.6-27B", fleet({node("alpha", {gpu(0, 12000)})}), c,
                           std::nullopt);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kServiceUnavailable);
    EXPECT_EQ(r.error().retry_after_secs(), 5);

    auto down = node("alpha", {}, false);
    down.models = {model("m")};
    r = resolve_route("m", fleet({down}), {}, std::nullopt);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kServiceUnavailable);
    EXPECT_EQ(openai_envelope(r.error()).http_status, 503);

    r = resolve_route("anything", fleet({}), {}, std::nullopt);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kServiceUnavailable);
}

TEST(ResolveRoute, UnknownModelIs404) {
    auto r = resolve_route("nope", fleet({node("alpha")}), catalogue(), std::nullopt);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kModelNotFound);
    auto env = openai_envelope(r.error());
    EXPECT_EQ(env.http_status, 404);
    EXPECT_EQ(env.body["error"]["code"], "model_not_found");
}

TEST(ResolveRoute, LoadingIsNotRoutable) {
    auto a = node("alpha");
    a.models = {model("m", ModelStatus::kLoading)};
    auto r = resolve_route("m", fleet({a}), {}, std::nullopt);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kModelNotFound);
}

TEST(RewriteModelInBody, ReplacesModelOnly) {
    auto out = rewrite_model_in_body(R"({"model":"helexa/small","stream":true,"n":1})", "Q/Q");
    ASSERT_TRUE(out);
    auto j = nlohmann::json::parse(*out);
    EXPECT_EQ(j["model"], "Q/Q");
    EXPECT_EQ(j["stream"], true);
    EXPECT_FALSE(rewrite_model_in_body("[1,2]", "x"));
    EXPECT_FALSE(rewrite_model_in_body("{nope", "x"));
}

}  // namespace
}  // namespace helexa::gateway
