#include "helexa/gateway/models_listing.h"

#include <thread>

#include <gtest/gtest.h>

#include "fleet_fixtures.h"
#include "helexa/gateway/evictor.h"

namespace helexa::gateway {
namespace {

using testing::fleet;
using testing::gpu;
using testing::model;
using testing::node;

const ModelView* find(const std::vector<ModelView>& v, std::string_view id) {
    for (const auto& m : v) {
        if (m.id == id) {
            return &m;
        }
    }
    return nullptr;
}

Catalogue catalogue() {
    Catalogue c;
    ModelProfile big;
    big.id = "big";
    big.min_devices = 2;
    big.cost = ModelCost{0.5, 1.5, 0.05, std::nullopt};
    c.models.push_back(big);
    ModelProfile small;
    small.id = "small";
    small.position = 1;
    c.models.push_back(small);
    c.aliases = {{"tier/large", "big"}, {"tier/small", "small"}, {"tier/ghost", "missing"}};
    return c;
}

TEST(ComposeModels, Pass1CatalogueFeasibilityAndCost) {
    auto models = compose_models(fleet({node("a", {gpu(0, 8000)}),
                                        node("b", {gpu(0, 8000), gpu(1, 8000)})}),
                                 catalogue());
    const ModelView* big = find(models, "big");
    ASSERT_NE(big, nullptr);
    EXPECT_FALSE(big->loaded);
    EXPECT_EQ(big->status, ModelStatus::kUnloaded);
    EXPECT_EQ(big->feasible_on, std::vector<std::string>{"b"});
    EXPECT_TRUE(big->locations.empty());
    ASSERT_TRUE(big->cost);
    EXPECT_DOUBLE_EQ(big->cost->output, 1.5);
    EXPECT_FALSE(big->limit);
    const ModelView* small = find(models, "small");
    ASSERT_NE(small, nullptr);
    EXPECT_EQ(small->feasible_on, (std::vector<std::string>{"a", "b"}));
}

TEST(ComposeModels, Pass2UnionOrAndTightestLimit) {
    auto a = node("a", {gpu(0, 8000)});
    auto b = node("b", {gpu(0, 8000), gpu(1, 8000)});
    auto ma = model("small");
    ma.capabilities = {"text"};
    ma.tool_call = true;
    ma.limit = ModelLimit{32768, 28672, 4096};
    auto mb = model("small");
    mb.capabilities = {"text", "vision"};
    mb.reasoning = true;
    mb.limit = ModelLimit{16384, std::nullopt, 8192};
    a.models = {ma};
    b.models = {mb, model("adhoc")};
    auto models = compose_models(fleet({a, b}), catalogue());
    const ModelView* small = find(models, "small");
    ASSERT_NE(small, nullptr);
    EXPECT_TRUE(small->loaded);
    EXPECT_EQ(small->status, ModelStatus::kLoaded);
    EXPECT_EQ(small->capabilities, (std::vector<std::string>{"text", "vision"}));
    EXPECT_TRUE(small->tool_call);
    EXPECT_TRUE(small->reasoning);
    ASSERT_TRUE(small->limit);
    EXPECT_EQ(*small->limit, (ModelLimit{16384, 28672, 4096}));
    ASSERT_EQ(small->locations.size(), 2u);
    EXPECT_EQ(small->locations[0].node, "a");
    // Not in the catalogue but loaded: listed, no cost, no feasibility.
    const ModelView* adhoc = find(models, "adhoc");
    ASSERT_NE(adhoc, nullptr);
    EXPECT_TRUE(adhoc->loaded);
    EXPECT_FALSE(adhoc->cost);
    EXPECT_TRUE(adhoc->feasible_on.empty());
}

TEST(ComposeModels, UnhealthyNodesContributeNoLocations) {
    auto a = node("a", {gpu(0, 8000)}, /*healthy=*/false);
    a.models = {model("small")};
    auto models = compose_models(fleet({a}), catalogue());
    const ModelView* small = find(models, "small");
    ASSERT_NE(small, nullptr);
    EXPECT_FALSE(small->loaded);
    EXPECT_TRUE(small->locations.empty());
}

TEST(ComposeModels, Pass3ActivationShowsLoading) {
    auto a = node("a", {gpu(0, 8000), gpu(1, 8000)});
    Activation act;
    act.state = "pre_warming";
    act.in_progress = "big";
    act.pending = {"later"};
    a.activation = act;
    auto models = compose_models(fleet({a}), catalogue());
    const ModelView* big = find(models, "big");
    ASSERT_NE(big, nullptr);
    EXPECT_EQ(big->status, ModelStatus::kLoading);
    EXPECT_FALSE(big->loaded);
    ASSERT_EQ(big->locations.size(), 1u);
    EXPECT_EQ(big->locations[0].status, ModelStatus::kLoading);
    const ModelView* later = find(models, "later");
    ASSERT_NE(later, nullptr);
    EXPECT_EQ(later->status, ModelStatus::kLoading);
}

TEST(ComposeModels, RecoveringStatus) {
    auto a = node("a");
    a.models = {model("small", ModelStatus::kRecovering)};
    auto models = compose_models(fleet({a}), catalogue());
    EXPECT_EQ(find(models, "small")->status, ModelStatus::kRecovering);
    EXPECT_FALSE(find(models, "small")->loaded);
}

TEST(ComposeModels, Pass4AliasesMirrorTargets) {
    auto a = node("a", {gpu(0, 8000)});
    auto m = model("small");
    m.limit = ModelLimit{4096, std::nullopt, 1024};
    a.models = {m};
    auto models = compose_models(fleet({a}), catalogue());
    const ModelView* alias = find(models, "tier/small");
    const ModelView* target = find(models, "small");
    ASSERT_NE(alias, nullptr);
    EXPECT_EQ(alias->alias_of, "small");
    EXPECT_EQ(alias->loaded, target->loaded);
    EXPECT_EQ(alias->feasible_on, target->feasible_on);
    EXPECT_EQ(alias->limit, target->limit);
    EXPECT_EQ(alias->locations.size(), target->locations.size());
    ASSERT_NE(find(models, "tier/large"), nullptr);
    EXPECT_DOUBLE_EQ(find(models, "tier/large")->cost->input, 0.5);
    EXPECT_EQ(find(models, "tier/ghost"), nullptr);  // target unknown anywhere
}

TEST(ComposeModels, QualifiedNeuronIdSharesCatalogueEntry) {
    Catalogue c;
    ModelProfile p;
    p.id = "org/m";
    p.source = "helexa";
    p.min_devices = 0;
    c.models.push_back(p);
    auto a = node("a");
    a.models = {model("helexa:org/m")};
    auto models = compose_models(fleet({a}), c);
    ASSERT_EQ(models.size(), 1u);
    EXPECT_EQ(models[0].id, "org/m");
    EXPECT_TRUE(models[0].loaded);
}

TEST(ModelsListJson, OpenAiShapePlusExtensions) {
    auto a = node("a", {gpu(0, 8000)});
    auto m = model("small");
    m.limit = ModelLimit{4096, std::nullopt, 1024};
    a.models = {m};
    auto j = models_list_json(compose_models(fleet({a}), catalogue()), 1700000000);
    EXPECT_EQ(j["object"], "list");
    ASSERT_TRUE(j["data"].is_array());
    nlohmann::json small;
    for (const auto& e : j["data"]) {
        if (e["id"] == "small") {
            small = e;
        }
    }
    ASSERT_FALSE(small.is_null());
    EXPECT_EQ(small["object"], "model");
    EXPECT_EQ(small["created"], 1700000000);
    EXPECT_EQ(small["owned_by"], "helexa");
    EXPECT_EQ(small["loaded"], true);
    EXPECT_EQ(small["status"], "loaded");
    EXPECT_EQ(small["locations"][0]["node"], "a");
    EXPECT_EQ(small["limit"]["context"], 4096);
    EXPECT_FALSE(small["limit"].contains("input"));
    EXPECT_FALSE(small.contains("max_model_len"));
    EXPECT_FALSE(small.contains("cost"));
}

TEST(AdvertisedLimit, TightestAcrossHealthyLoadedNodes) {
    auto a = node("a");
    auto b = node("b");
    auto c = node("c", {}, false);
    auto ma = model("m");
    ma.limit = ModelLimit{8000, std::nullopt, 2000};
    auto mb = model("m");
    mb.limit = ModelLimit{6000, std::nullopt, 3000};
    auto mc = model("m");
    mc.limit = ModelLimit{10, std::nullopt, 10};
    a.models = {ma};
    b.models = {mb};
    c.models = {mc};
    auto limit = advertised_limit(fleet({a, b, c}), "m");
    ASSERT_TRUE(limit);
    EXPECT_EQ(limit->context, 6000);
    EXPECT_EQ(limit->output, 2000);
    EXPECT_FALSE(advertised_limit(fleet({a}), "other"));
}

TEST(Fleet, HealthRulesD10) {
    NodeState n;
    EXPECT_FALSE(n.healthy);
    n.record_poll(true);
    EXPECT_TRUE(n.healthy);
    n.record_poll(false);
    EXPECT_TRUE(n.healthy);  // one failure is tolerated
    n.record_poll(false);
    EXPECT_FALSE(n.healthy);
    n.record_poll(false);
    EXPECT_FALSE(n.healthy);
    n.record_poll(true);  // healthy on the first success
    EXPECT_TRUE(n.healthy);
    EXPECT_EQ(n.consecutive_failures, 0);
}

TEST(Fleet, SnapshotsAreImmutableAndUpdatesPublish) {
    FleetState state({{"b", "http://b:1"}, {"a", "http://a:1"}});
    auto before = state.snapshot();
    ASSERT_EQ(before->nodes.size(), 2u);
    EXPECT_EQ(before->nodes[0].name, "a");
    state.update([](FleetSnapshot& f) { f.find_mut("a")->record_poll(true); });
    auto after = state.snapshot();
    EXPECT_FALSE(before->find("a")->healthy);
    EXPECT_TRUE(after->find("a")->healthy);

    // Concurrent readers while one writer publishes never see a torn snapshot.
    std::atomic<bool> stop{false};
    std::thread reader([&] {
        while (!stop) {
            auto snap = state.snapshot();
            ASSERT_EQ(snap->nodes.size(), 2u);
        }
    });
    for (int i = 0; i < 200; ++i) {
        state.update([i](FleetSnapshot& f) { f.find_mut("b")->lifecycle_cycles = i; });
    }
    stop = true;
    reader.join();
    EXPECT_EQ(state.snapshot()->find("b")->lifecycle_cycles, 199);
}

TEST(LoopbackRewrite, Table) {
    const std::string cfg = "http://beast.internal:13131";
    EXPECT_EQ(rewrite_loopback_endpoint("http://localhost:13131", cfg),
              "http://beast.internal:13131");
    EXPECT_EQ(rewrite_loopback_endpoint("http://127.0.0.1:13131/", cfg),
              "http://beast.internal:13131");
    EXPECT_EQ(rewrite_loopback_endpoint("http://0.0.0.0:14000/v1/", cfg),
              "http://beast.internal:14000/v1");
    EXPECT_EQ(rewrite_loopback_endpoint("http://[::1]:14000", cfg),
              "http://beast.internal:14000");
    EXPECT_EQ(rewrite_loopback_endpoint("http://other.internal:13131/", cfg),
              "http://other.internal:13131");
    EXPECT_EQ(rewrite_loopback_endpoint("http://localhost/p", cfg), "http://beast.internal/p");
    EXPECT_FALSE(rewrite_loopback_endpoint("not a url", cfg));
    EXPECT_FALSE(rewrite_loopback_endpoint("", cfg));
}

// ---- evictor ----

TEST(Evictor, NotTightMeansNoEviction) {
    auto n = node("a");
    n.models = {model("x")};
    ModelProfile incoming;
    incoming.id = "new";
    incoming.vram_mb = 10000;
    LruTracker lru;
    EXPECT_TRUE(plan_evictions(n, incoming, {}, lru, EvictionStrategy::kLru).empty());
    n.vram_free_mb = 20000;
    EXPECT_TRUE(plan_evictions(n, incoming, {}, lru, EvictionStrategy::kLru).empty());
    incoming.vram_mb.reset();
    n.vram_free_mb = 0;
    EXPECT_TRUE(plan_evictions(n, incoming, {}, lru, EvictionStrategy::kLru).empty());
}

TEST(Evictor, LruNeverPinnedNeverNonLoaded) {
    Catalogue c;
    ModelProfile pinned;
    pinned.id = "pinned";
    pinned.pinned_on = {"a"};
    pinned.vram_mb = 9000;
    c.models.push_back(pinned);
    auto n = node("a");
    n.vram_free_mb = 1000;
    n.models = {model("old"), model("pinned"), model("recent"),
                model("rec", ModelStatus::kRecovering)};
    ModelProfile incoming;
    incoming.id = "new";
    incoming.vram_mb = 5000;
    LruTracker lru;
    auto t0 = std::chrono::steady_clock::now();
    lru.touch("a", "pinned", t0);
    lru.touch("a", "old", t0 + std::chrono::seconds(1));
    lru.touch("a", "recent", t0 + std::chrono::seconds(2));
    auto victims = plan_evictions(n, incoming, c, lru, EvictionStrategy::kLru);
    EXPECT_EQ(victims, std::vector<std::string>{"old"});
    lru.touch("a", "old", t0 + std::chrono::seconds(3));
    victims = plan_evictions(n, incoming, c, lru, EvictionStrategy::kLru);
    EXPECT_EQ(victims, std::vector<std::string>{"recent"});
}

TEST(Evictor, EvictsSeveralWhenSizesKnown) {
    Catalogue c;
    for (auto [id, mb] : {std::pair{"x", 2000}, std::pair{"y", 2000}, std::pair{"z", 2000}}) {
        ModelProfile p;
        p.id = id;
        p.vram_mb = mb;
        p.position = static_cast<int64_t>(c.models.size());
        c.models.push_back(p);
    }
    auto n = node("a");
    n.vram_free_mb = 1000;
    n.models = {model("x"), model("y"), model("z")};
    ModelProfile incoming;
    incoming.id = "new";
    incoming.vram_mb = 4500;
    LruTracker lru;
    auto t0 = std::chrono::steady_clock::now();
    lru.touch("a", "x", t0 + std::chrono::seconds(3));
    lru.touch("a", "y", t0 + std::chrono::seconds(1));
    lru.touch("a", "z", t0 + std::chrono::seconds(2));
    EXPECT_EQ(plan_evictions(n, incoming, c, lru, EvictionStrategy::kLru),
              (std::vector<std::string>{"y", "z"}));
    // Priority: not-in-catalogue first, then later catalogue entries.
    n.models.push_back(model("adhoc"));
    EXPECT_EQ(plan_evictions(n, incoming, c, lru, EvictionStrategy::kPriority),
              (std::vector<std::string>{"adhoc"}));  // unknown size ends the list
    n.models.pop_back();
    EXPECT_EQ(plan_evictions(n, incoming, c, lru, EvictionStrategy::kPriority),
              (std::vector<std::string>{"z", "y"}));
}

}  // namespace
}  // namespace helexa::gateway
