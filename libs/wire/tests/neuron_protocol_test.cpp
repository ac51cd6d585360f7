// Neuron protocol types: round trips, lenient reads of old/new peers, strict request parsing.
#include "helexa/wire/neuron_protocol.h"

#include <gtest/gtest.h>

namespace helexa::wire {
namespace {

using nlohmann::json;

template <typename T>
T round_trip(const T& value) {
    json j = value;
    return j.get<T>();
}

TEST(NeuronProtocol, DiscoveryRoundTripAndOmitsAbsentReason) {
    DiscoveryResponse d;
    d.hostname = "beast";
    d.os = "Fedora 43";
    d.driver_version = "580.65";
    d.cuda_version = "13.0";
    d.devices = {{0, "NVIDIA RTX 5090", 32607, "12.0"}, {1, "NVIDIA RTX 5090", 32607, "12.0"}};
    d.harnesses = {"candle"};
    d.max_prompt_tokens = 49152;
    json j = d;
    EXPECT_FALSE(j.contains("cuda_unavailable_reason"));
    EXPECT_EQ(j["devices"][1]["total_vram_mb"], 32607);
    EXPECT_EQ(round_trip(d), d);
    d.cuda_unavailable_reason = "Driver/library version mismatch: reboot the host";
    EXPECT_EQ(json(d)["cuda_unavailable_reason"], *d.cuda_unavailable_reason);
    EXPECT_EQ(round_trip(d), d);
}

TEST(NeuronProtocol, DiscoveryLenientRead) {
    auto d = parse_discovery(json::parse(R"({"hostname":"cpu-box","devices":[
        {"index":0,"name":"A","total_vram_mb":"lots","compute_capability":[8,9]},
        {"index":1,"compute_capability":9.0}, 7],
        "harnesses":["candle",3],"future_field":{"x":1}})"));
    ASSERT_TRUE(d);
    EXPECT_EQ(d->hostname, "cpu-box");
    EXPECT_EQ(d->os, "");
    EXPECT_FALSE(d->cuda_version);
    ASSERT_EQ(d->devices.size(), 2u);
    EXPECT_EQ(d->devices[0].total_vram_mb, 0);
    EXPECT_EQ(d->devices[0].compute_capability, "8.9");
    EXPECT_EQ(d->devices[1].compute_capability, "9.0");
    EXPECT_EQ(d->harnesses, std::vector<std::string>{"candle"});
    EXPECT_EQ(d->max_prompt_tokens, 0);
    EXPECT_FALSE(parse_discovery(json::array()));
    EXPECT_EQ(parse_discovery(json("x")).error().code(), ErrorCode::kUpstream);
}

TEST(NeuronProtocol, HealthRoundTripAndShape) {
    HealthResponse h;
    h.devices = {{0, "GPU0", 24576, 20000, 4576, 87.5, 71.0}, {1, "GPU1", 24576, 0, 24576, {}, {}}};
    h.activation.state = ActivationState::kPreWarming;
    h.activation.pending = {"Qwen/Qwen3-8B"};
    h.activation.in_progress = "Qwen/Qwen3.6-27B";
    h.activation.completed = {"Qwen/Qwen3-0.6B"};
    h.activation.failed = {{"bad/model", "404 from hub"}};
    h.models = {{"Qwen/Qwen3-0.6B", 2, 1}};
    json j = h;
    EXPECT_EQ(j["activation"]["state"], "pre_warming");
    EXPECT_EQ(j["activation"]["in_progress"], "Qwen/Qwen3.6-27B");
    EXPECT_EQ(j["activation"]["failed"][0], json({{"model_id", "bad/model"}, {"error", "404 from hub"}}));
    EXPECT_EQ(j["models"][0], json({{"id", "Qwen/Qwen3-0.6B"}, {"in_flight", 2}, {"queue_depth", 1}}));
    EXPECT_FALSE(j["devices"][1].contains("temperature_c"));
    EXPECT_EQ(round_trip(h), h);

    HealthResponse ready;
    json r = ready;
    EXPECT_TRUE(r["activation"]["in_progress"].is_null());
    EXPECT_EQ(r["activation"]["state"], "ready");
    EXPECT_EQ(r["models"], json::array());  // always present
}

TEST(NeuronProtocol, HealthFromOlderNeuronWithoutActivationOrModels) {
    auto h = parse_health(json::parse(R"({"status":"ok","devices":[{"index":0,"vram_used_mb":10}]})"));
    ASSERT_TRUE(h);
    EXPECT_EQ(h->activation.state, ActivationState::kReady);
    EXPECT_TRUE(h->models.empty());
    EXPECT_EQ(h->devices[0].vram_used_mb, 10);
    auto future = parse_health(json::parse(R"({"activation":{"state":"draining"}})"));
    ASSERT_TRUE(future);
    EXPECT_EQ(future->activation.state, ActivationState::kUnknown);
}

TEST(NeuronProtocol, ModelInfoRoundTripAndStatuses) {
    ModelInfo m;
    m.id = "Qwen/Qwen3.6-27B";
    m.status = ModelStatus::kRecovering;
    m.devices = {0, 1};
    m.vram_mb = 30000;
    m.capabilities = {"text", "vision"};
    m.tool_call = true;
    m.reasoning = true;
    m.limit = ModelLimit{131072, 120000, 32768};
    EXPECT_EQ(round_trip(m), m);
    json j = m;
    EXPECT_EQ(j["status"], "recovering");
    EXPECT_EQ(j["limit"], json({{"context", 131072}, {"input", 120000}, {"output", 32768}}));

    ModelInfo bare;
    bare.id = "x";
    json b = bare;
    EXPECT_FALSE(b.contains("capabilities"));
    EXPECT_FALSE(b.contains("limit"));

    for (auto status : {ModelStatus::kLoading, ModelStatus::kLoaded, ModelStatus::kPoisoned,
                        ModelStatus::kRecovering}) {
        EXPECT_EQ(model_status_from_string(to_string(status)), status);
    }
    EXPECT_EQ(model_status_from_string("unloaded"), ModelStatus::kUnknown);
}

TEST(NeuronProtocol, ModelListForms) {
    json item = json::parse(R"({"id":"a","status":"loaded","devices":[0],"vram_mb":100})");
    for (const json& body : {json::array({item}), json({{"models", {item}}}),
                             json({{"data", {item, 5}}})}) {
        auto list = parse_model_list(body);
        ASSERT_TRUE(list) << body.dump();
        ASSERT_EQ(list->size(), 1u);
        EXPECT_EQ((*list)[0].id, "a");
        EXPECT_EQ((*list)[0].status, ModelStatus::kLoaded);
        EXPECT_FALSE((*list)[0].tool_call);
    }
    EXPECT_FALSE(parse_model_list(json::object()));
    EXPECT_FALSE(parse_model_list(json(3)));
}

TEST(NeuronProtocol, ModelSpecStrictParse) {
    auto spec = parse_model_spec(json::parse(
        R"({"model_id":"hf:Qwen/Qwen3-8B","quant":"Q4_K_M","tensor_parallel":2,"devices":[0,1],"extra":1})"));
    ASSERT_TRUE(spec);
    EXPECT_EQ(spec->model_id, "hf:Qwen/Qwen3-8B");
    EXPECT_EQ(spec->quant, "Q4_K_M");
    EXPECT_EQ(spec->tensor_parallel, 2);
    EXPECT_EQ(spec->devices, (std::vector<int64_t>{0, 1}));
    EXPECT_FALSE(spec->harness);
    EXPECT_EQ(round_trip(*spec), *spec);
    json minimal = ModelSpec{"m", {}, {}, {}, {}};
    EXPECT_EQ(minimal, json({{"model_id", "m"}}));

    struct Case {
        const char* body;
        const char* param;
    };
    for (const Case& c : {Case{R"({})", "model_id"}, Case{R"({"model_id":""})", "model_id"},
                          Case{R"({"model_id":"m","quant":4})", "quant"},
                          Case{R"({"model_id":"m","harness":[]})", "harness"},
                          Case{R"({"model_id":"m","tensor_parallel":0})", "tensor_parallel"},
                          Case{R"({"model_id":"m","devices":"0"})", "devices"},
                          Case{R"({"model_id":"m","devices":[0,-1]})", "devices[1]"}}) {
        auto bad = parse_model_spec(json::parse(c.body));
        ASSERT_FALSE(bad) << c.body;
        EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidRequest);
        EXPECT_EQ(bad.error().param(), std::optional<std::string>(c.param)) << c.body;
    }
}

TEST(NeuronProtocol, PreflightError) {
    PreflightError e{"tp_requires_safetensors", "hf:unsloth/Qwen3-8B-GGUF", "use tensor_parallel = 1"};
    json body = preflight_error_body(e);
    EXPECT_EQ(body["error"]["kind"], "tp_requires_safetensors");
    EXPECT_EQ(body["error"]["suggestion"], "use tensor_parallel = 1");
    auto parsed = parse_preflight_error(body);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, e);
    PreflightError no_suggestion{"empty_repo", "x", {}};
    EXPECT_FALSE(preflight_error_body(no_suggestion)["error"].contains("suggestion"));
    EXPECT_TRUE(parse_preflight_error(json({{"kind", "k"}})));
    EXPECT_FALSE(parse_preflight_error(json::parse(R"({"error":{"message":"x"}})")));
}

TEST(NeuronProtocol, TokenizeRequestForms) {
    auto plain = parse_tokenize_request(json::parse(R"({"model":"m","prompt":"hi","add_special_tokens":false})"));
    ASSERT_TRUE(plain);
    EXPECT_FALSE(plain->is_chat());
    EXPECT_EQ(plain->prompt, "hi");
    EXPECT_EQ(plain->add_special_tokens, false);

    auto chat = parse_tokenize_request(json::parse(
        R"({"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[],"chat_template_kwargs":{"enable_thinking":false}})"));
    ASSERT_TRUE(chat);
    EXPECT_TRUE(chat->is_chat());
    EXPECT_TRUE(chat->add_generation_prompt);  // default true
    EXPECT_EQ((*chat->chat_template_kwargs)["enable_thinking"], false);
    EXPECT_EQ(round_trip(*chat), *chat);
    EXPECT_EQ(json(*chat)["add_generation_prompt"], true);

    for (const char* body : {R"({"prompt":"x"})", R"({"model":"m"})", R"({"model":"m","prompt":5})",
                             R"({"model":"m","messages":{}})",
                             R"({"model":"m","messages":[],"tools":{}})",
                             R"({"model":"m","messages":[],"add_generation_prompt":"yes"})",
                             R"({"model":"m","messages":[],"chat_template_kwargs":[]})"}) {
        auto bad = parse_tokenize_request(json::parse(body));
        ASSERT_FALSE(bad) << body;
        EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidRequest);
    }
}

TEST(NeuronProtocol, TokenizeResponse) {
    TokenizeResponse r{{1, 2, 3}, 3};
    EXPECT_EQ(round_trip(r), r);
    auto counted = parse_tokenize_response(json::parse(R"({"tokens":[5,6,-1,"x"]})"));
    ASSERT_TRUE(counted);
    EXPECT_EQ(counted->tokens, (std::vector<int32_t>{5, 6}));
    EXPECT_EQ(counted->count, 2);  // count defaults to the token list length
    EXPECT_EQ(parse_tokenize_response(json::parse(R"({"count":40000})"))->count, 40000);
}

TEST(NeuronProtocol, Detokenize) {
    DetokenizeRequest req{"m", {1, 2}};
    EXPECT_EQ(round_trip(req), req);
    DetokenizeResponse resp{"hello"};
    EXPECT_EQ(round_trip(resp), resp);
}

TEST(NeuronProtocol, UnloadRequest) {
    UnloadRequest u{"m"};
    EXPECT_EQ(json(u), json({{"model_id", "m"}}));
    EXPECT_EQ(round_trip(u), u);
}

}  // namespace
}  // namespace helexa::wire
