// Model source ids, HF cache layout resolution, config (sources, HF cache precedence, env
// knobs), and the preflight table.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "helexa/node/config.h"
#include "helexa/node/engine_options.h"
#include "helexa/node/model_source.h"
#include "helexa/node/preflight.h"

namespace helexa::node {
namespace {

namespace fs = std::filesystem;

TEST(ModelSourceId, ParsesSchemeAndBareForms) {
    auto a = parse_model_source_id("huggingface:Qwen/Qwen3-8B");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->scheme, "huggingface");
    EXPECT_EQ(a->repo_path(), "Qwen/Qwen3-8B");
    EXPECT_EQ(a->to_string(), "huggingface:Qwen/Qwen3-8B");
    auto b = parse_model_source_id("unsloth/Qwen3.5-0.8B-GGUF");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->scheme, "");
    EXPECT_EQ(with_default_scheme(*b, "helexa").to_string(), "helexa:unsloth/Qwen3.5-0.8B-GGUF");
    EXPECT_EQ(canonical_model_id(*a, "huggingface"), "Qwen/Qwen3-8B");
    EXPECT_EQ(canonical_model_id(*a, "helexa"), "huggingface:Qwen/Qwen3-8B");
}

TEST(ModelSourceId, RejectsMalformedAndTraversalIds) {
    for (const char* bad : {"", ":org/name", "noslash", "a/b/c", "org/na:me", "../etc/passwd",
                            "org/..", "org/.hidden", "/abs/path", "Sch:org/name", "org/na me",
                            "org/name\\x", "sch/x:org/name", "org/", "/name"}) {
        auto r = parse_model_source_id(bad);
        EXPECT_FALSE(r) << bad;
        if (!r) {
            EXPECT_EQ(r.error().code(), ErrorCode::kInvalidRequest);
            EXPECT_NE(r.error().message().find("invalid model id"), std::string::npos);
        }
    }
    EXPECT_FALSE(parse_model_source_id(std::string(300, 'a') + "/b"));
}

TEST(ModelSourceId, SafeRelativePaths) {
    EXPECT_TRUE(safe_relative_path("model.safetensors"));
    EXPECT_TRUE(safe_relative_path("onnx/model-00001-of-00002.gguf"));
    for (const char* bad : {"", "/etc/passwd", "../x", "a/../b", "a//b", "./a", "a\\b", "a/"}) {
        EXPECT_FALSE(safe_relative_path(bad)) << bad;
    }
}

class TempDir {
public:
    TempDir() {
        path_ = fs::temp_directory_path() /
                ("helexa-node-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
        fs::create_directories(path_);
    }
    ~TempDir() { fs::remove_all(path_); }
    const fs::path& path() const { return path_; }

private:
    static inline int counter_ = 0;
    fs::path path_;
};

void touch(const fs::path& p, const std::string& text = "x") {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
}

TEST(HfCache, ResolvesRefsMainToSnapshot) {
    TempDir tmp;
    auto id = *parse_model_source_id("Qwen/Qwen3-8B");
    auto repo = tmp.path() / "models--Qwen--Qwen3-8B";
    touch(repo / "refs" / "main", "abc123\n");
    touch(repo / "snapshots" / "abc123" / "config.json");
    touch(repo / "snapshots" / "abc123" / "model.safetensors");
    touch(repo / "snapshots" / "old" / "config.json");
    auto snap = find_local_snapshot(tmp.path().string(), id);
    ASSERT_TRUE(snap);
    EXPECT_EQ(snap->revision, "abc123");
    EXPECT_EQ(snap->files, (std::vector<std::string>{"config.json", "model.safetensors"}));
    // A ref pointing outside snapshots/ is ignored.
    touch(repo / "refs" / "main", "../../etc");
    EXPECT_FALSE(find_local_snapshot(tmp.path().string(), id));
    // Without refs/main, a single snapshot is used; two are ambiguous.
    fs::remove(repo / "refs" / "main");
    EXPECT_FALSE(find_local_snapshot(tmp.path().string(), id));
    fs::remove_all(repo / "snapshots" / "old");
    ASSERT_TRUE(find_local_snapshot(tmp.path().string(), id));
    EXPECT_FALSE(find_local_snapshot(tmp.path().string(), *parse_model_source_id("a/b")));
}

TEST(NeuronConfig, DefaultsWithoutAFile) {
    Environment env{{"HOME", "/home/n"}};
    auto cfg = load_neuron_config(ConfigReader::empty("neuron.toml", "NEURON_", env), env);
    EXPECT_EQ(cfg.listen.port, 13131);
    EXPECT_EQ(cfg.harnesses, std::vector<std::string>{"candle"});
    EXPECT_EQ(cfg.default_source, "huggingface");
    EXPECT_EQ(cfg.sources.at("huggingface").cache_dir, "/home/n/.cache/huggingface/hub");
    EXPECT_EQ(cfg.sources.at("huggingface").endpoint, "https://huggingface.co");
    EXPECT_EQ(cfg.admission.max_in_flight, 64);
    EXPECT_EQ(cfg.admission.max_queue_depth, 256);
    EXPECT_EQ(cfg.admission.max_wait_secs, 30);
    EXPECT_EQ(cfg.admission.max_per_principal, 32);
    EXPECT_EQ(cfg.knobs.prefill_chunk_tokens, 512);
    EXPECT_FALSE(cfg.knobs.max_prompt_tokens);
    EXPECT_FALSE(cfg.knobs.debug_device_lost);
    EXPECT_TRUE(cfg.knobs.overlap_decode);
    EXPECT_TRUE(local_engine_options(cfg).scheduler.overlap_decode);
    EXPECT_EQ(cfg.sampling_threads, 0);
    EXPECT_EQ(local_engine_options(cfg).scheduler.sampling_threads, 0);  // the scheduler's default
}

TEST(NeuronConfig, HfCachePrecedence) {
    EXPECT_EQ(default_hf_cache("/x", {{"HF_HUB_CACHE", "/y"}}), "/x");
    EXPECT_EQ(default_hf_cache(std::nullopt, {{"HF_HUB_CACHE", "/y"}, {"HF_HOME", "/z"}}), "/y");
    EXPECT_EQ(default_hf_cache(std::nullopt, {{"HF_HOME", "/z"}}), "/z/hub");
}

TEST(NeuronConfig, ReadsTheOriginalShapeAndEnvKnobs) {
    const char* toml = R"(
port = 14000
[[harnesses]]
name = "candle"
[harness.candle]
hf_cache = "/data/hf"
default_source = "helexa"
[harness.candle.sources.helexa]
endpoint = "https://registry.helexa.ai/"
auth_env = "HELEXA_TOKEN"
cache_dir = "/data/helexa"
[harness.candle.admission]
max_in_flight = 2
max_per_principal = 0
[harness.candle.prefix_cache]
enabled = false
budget_mb = 512
[harness.candle.context_limit]
output_reserve_tokens = 1024
[[default_models]]
model_id = "Qwen/Qwen3-8B"
quant = "bf16"
devices = [0]
[[default_models]]
model_id = "helexa:Qwen/Qwen3.6-27B"
tensor_parallel = 2
devices = [0, 1]
)";
    Environment env{{"HELEXA_TOKEN", "s3cret"},
                    {"NEURON_MAX_PROMPT_TOKENS", "16384"},
                    {"NEURON_USE_CHAT_TEMPLATE", "false"},
                    {"NEURON_DEBUG_DEVICE_LOST", "true"},
                    {"NEURON_SAMPLING_THREADS", "12"},
                    {"NEURON_OVERLAP_DECODE", "false"}};
    auto reader = ConfigReader::from_string(toml, "neuron.toml", "NEURON_", env);
    auto cfg = load_neuron_config(reader, env);
    EXPECT_TRUE(reader.unknown_keys().empty());
    EXPECT_EQ(cfg.listen.port, 14000);
    EXPECT_EQ(cfg.default_source, "helexa");
    EXPECT_EQ(cfg.sources.at("helexa").endpoint, "https://registry.helexa.ai");
    EXPECT_EQ(cfg.sources.at("helexa").token, std::optional<std::string>("s3cret"));
    EXPECT_EQ(cfg.sources.at("helexa").cache_dir, "/data/helexa");
    EXPECT_EQ(cfg.sources.at("huggingface").cache_dir, "/data/hf");
    EXPECT_EQ(cfg.admission.max_in_flight, 2);
    EXPECT_EQ(cfg.admission.max_per_principal, 0);
    EXPECT_FALSE(cfg.prefix_cache.enabled);
    EXPECT_EQ(cfg.context_limit.output_reserve_tokens, std::optional<int64_t>(1024));
    ASSERT_EQ(cfg.default_models.size(), 2U);
    EXPECT_EQ(cfg.default_models[1].tensor_parallel, std::optional<int64_t>(2));
    EXPECT_EQ(cfg.knobs.max_prompt_tokens, std::optional<int64_t>(16384));
    EXPECT_FALSE(cfg.knobs.use_chat_template);
    EXPECT_TRUE(cfg.knobs.debug_device_lost);
    EXPECT_FALSE(cfg.knobs.overlap_decode);
    EXPECT_FALSE(local_engine_options(cfg).scheduler.overlap_decode);
    EXPECT_EQ(cfg.sampling_threads, 12);
    EXPECT_EQ(local_engine_options(cfg).scheduler.sampling_threads, 12);

    auto listen = ConfigReader::from_string("listen = \"127.0.0.1:9\"", "n", "NEURON_", {});
    EXPECT_EQ(load_neuron_config(listen, {}).listen.to_string(), "127.0.0.1:9");
}

TEST(NeuronConfig, ExampleFileLoadsWithNoUnknownKeys) {
    auto reader = ConfigReader::from_file(std::string(HELEXA_SOURCE_DIR) + "/neuron.example.toml",
                                          "NEURON_", {});
    auto cfg = load_neuron_config(reader, {});
    EXPECT_EQ(cfg.listen.port, 13131);
    EXPECT_EQ(cfg.admission.max_queue_depth, 256);
    EXPECT_TRUE(reader.unknown_keys().empty());
}

TEST(NeuronConfig, BadValuesNameTheKey) {
    auto check = [](const char* toml, const char* needle) {
        auto reader = ConfigReader::from_string(toml, "neuron.toml", "NEURON_", {});
        try {
            load_neuron_config(reader, {});
            ADD_FAILURE() << "no error for " << toml;
        } catch (const ConfigError& e) {
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    check("port = 70000", "port");
    check("[harness.candle]\ndefault_source = \"nope\"", "unknown source 'nope'");
    check("[harness.candle.admission]\nmax_in_flight = 0", "max_in_flight");
    check("[[default_models]]\nquant = \"x\"", "model_id");
    check("[harness.candle.sources.mirror]\nauth_env = \"X\"", "endpoint");
    check("debug_device_lost = \"maybe\"", "debug_device_lost");
    check("sampling_threads = -1", "sampling_threads");
    check("sampling_threads = 100000", "sampling_threads");
}

// ---- preflight ----

TEST(Preflight, ClassifiesRepos) {
    EXPECT_EQ(classify_repo({"README.md"}), SourceFormat::kEmpty);
    EXPECT_EQ(classify_repo({"a.gguf", "README.md"}), SourceFormat::kGguf);
    EXPECT_EQ(classify_repo({"model.safetensors", "config.json"}),
              SourceFormat::kDenseSafetensors);
    EXPECT_EQ(classify_repo({"a.gguf", "model.safetensors"}), SourceFormat::kMixed);
}

TEST(Preflight, QuantLabelsAndDistance) {
    EXPECT_EQ(gguf_quant_label("Qwen3-8B-Q4_K_M.gguf"), "Q4_K_M");
    EXPECT_EQ(gguf_quant_label("sub/Qwen3.6-27B-Q6_K_P-00001-of-00002.gguf"), "Q6_K_P");
    EXPECT_EQ(gguf_quant_label("model.Q8_0.gguf"), "Q8_0");
    EXPECT_EQ(gguf_quant_label("model.safetensors"), "");
    EXPECT_EQ(quant_distance("q6k", "Q6_K_P"), 1);
    EXPECT_EQ(quant_distance("Q4_K_M", "q4km"), 0);
    EXPECT_EQ(gguf_base_repo("unsloth/Qwen3-8B-GGUF"), std::optional<std::string>("unsloth/Qwen3-8B"));
    EXPECT_EQ(gguf_base_repo("Qwen/Qwen3-8B"), std::nullopt);
}

TEST(Preflight, FeasibilityTable) {
    std::vector<std::string> gguf{"X-Q4_K_M.gguf", "X-Q6_K_P.gguf", "X-Q8_0.gguf", "README.md"};
    std::vector<std::string> dense{"config.json", "tokenizer.json", "model-00001.safetensors",
                                   "model-00002.safetensors", "model.safetensors.index.json"};
    const std::string id = "huggingface:org/X-GGUF";

    auto tp = preflight(gguf, id, "org/X-GGUF", std::string("Q4_K_M"), 2);
    ASSERT_FALSE(tp);
    EXPECT_EQ(tp.error().error.kind, "tp_requires_safetensors");
    EXPECT_EQ(tp.error().error.model_id, id);

    auto miss = preflight(gguf, id, "org/X-GGUF", std::string("q6k"), 1);
    ASSERT_FALSE(miss);
    EXPECT_EQ(miss.error().error.kind, "quant_not_found");
    EXPECT_EQ(miss.error().error.suggestion, std::optional<std::string>("Q6_K_P"));

    auto hit = preflight(gguf, id, "org/X-GGUF", std::string("q4_k_m"), 1);
    ASSERT_TRUE(hit);
    EXPECT_TRUE(hit->use_gguf);
    EXPECT_EQ(hit->weight_files, std::vector<std::string>{"X-Q4_K_M.gguf"});
    EXPECT_EQ(hit->tokenizer_repo, std::optional<std::string>("org/X"));

    auto none = preflight(gguf, id, "org/X-GGUF", std::nullopt, 1);
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error().error.kind, "quant_required");

    auto dense_tp = preflight(dense, "org/D", "org/D", std::nullopt, 2);
    ASSERT_TRUE(dense_tp);
    EXPECT_FALSE(dense_tp->use_gguf);
    EXPECT_EQ(dense_tp->weight_files.size(), 2U);
    EXPECT_EQ(dense_tp->support_files.size(), 3U);

    auto empty = preflight({"README.md"}, "org/E", "org/E", std::nullopt, 1);
    ASSERT_FALSE(empty);
    EXPECT_EQ(empty.error().error.kind, "empty_repo");

    auto mixed_files = dense;
    mixed_files.push_back("X-Q4_K_M.gguf");
    auto mixed = preflight(mixed_files, "org/M", "org/M", std::string("Q4_K_M"), 2);
    ASSERT_TRUE(mixed);
    EXPECT_EQ(mixed->format, SourceFormat::kMixed);
    EXPECT_FALSE(mixed->use_gguf);

    auto split = preflight({"m-Q4_K_M-00001-of-00002.gguf", "m-Q4_K_M-00002-of-00002.gguf"},
                           "org/S", "org/S", std::nullopt, 1);
    ASSERT_TRUE(split);
    EXPECT_EQ(split->weight_files.size(), 2U);
    EXPECT_EQ(split->quant, std::optional<std::string>("Q4_K_M"));
}

}  // namespace
}  // namespace helexa::node
