// safetensors parsing (valid, sharded, hostile), config.json and generation_config.json.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "helexa/engine/generation_config.h"
#include "helexa/engine/model_config.h"
#include "helexa/engine/safetensors.h"
#include "helexa/engine/weights.h"

namespace helexa::engine {
namespace {

namespace fs = std::filesystem;

class TempDir {
public:
    TempDir() {
        path_ = fs::temp_directory_path() /
                ("helexa_loader_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const fs::path& path() const { return path_; }

private:
    static inline int counter_ = 0;
    fs::path path_;
};

std::vector<std::byte> image_with_header(const std::string& header, size_t data_bytes) {
    std::vector<std::byte> img(8 + header.size() + data_bytes, std::byte{0});
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) {
        img[static_cast<size_t>(i)] = static_cast<std::byte>((n >> (8 * i)) & 0xff);
    }
    std::memcpy(img.data() + 8, header.data(), header.size());
    return img;
}

void write_text(const fs::path& p, const std::string& s) {
    std::ofstream(p) << s;
}

TEST(Safetensors, WriteThenReadRoundTrips) {
    TempDir dir;
    std::vector<float> a = {1, 2, 3, 4, 5, 6};
    std::vector<uint16_t> b = {f32_to_bf16(0.5f), f32_to_bf16(-1.25f)};
    ASSERT_TRUE(write_safetensors(dir.path() / "model.safetensors",
                                  {{"a", DType::kF32, {2, 3}, std::as_bytes(std::span(a))},
                                   {"b", DType::kBF16, {2}, std::as_bytes(std::span(b))}})
                    .has_value());
    auto file = SafetensorsFile::open(dir.path() / "model.safetensors");
    ASSERT_TRUE(file.has_value()) << file.error().full_message();
    const TensorInfo* ta = (*file)->find("a");
    ASSERT_NE(ta, nullptr);
    EXPECT_EQ(ta->shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(ta->dtype, DType::kF32);
    EXPECT_EQ(std::memcmp(ta->bytes.data(), a.data(), 24), 0);
    const TensorInfo* tb = (*file)->find("b");
    ASSERT_NE(tb, nullptr);
    EXPECT_EQ(tb->dtype, DType::kBF16);
    uint16_t v = 0;
    std::memcpy(&v, tb->bytes.data() + 2, 2);
    EXPECT_EQ(bf16_to_f32(v), -1.25f);
    EXPECT_EQ((*file)->find("missing"), nullptr);
}

TEST(Safetensors, RejectsMalformedHeadersWithClearErrors) {
    struct Case {
        std::string header;
        size_t data;
        std::string expect;
    };
    const std::vector<Case> cases = {
        {"not json", 0, "JSON object"},
        {"[1,2]", 0, "JSON object"},
        {R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", 8, "outside the data"},
        {R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, "does not match"},
        {R"({"t":{"dtype":"I8","shape":[8],"data_offsets":[0,8]}})", 8, "unsupported dtype"},
        {R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}})", 8, "non-negative"},
        {R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8, "outside the data"},
        {R"({"t":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,8]}})",
         8, "overflows"},
        {R"({"t":{"dtype":"F32","shape":[2]}})", 8, "data_offsets"},
        {R"({"t":5})", 0, "not an object"},
    };
    for (const auto& c : cases) {
        auto img = image_with_header(c.header, c.data);
        auto r = parse_safetensors(img);
        ASSERT_FALSE(r.has_value()) << c.header;
        EXPECT_NE(r.error().message().find(c.expect), std::string::npos)
            << c.header << " -> " << r.error().message();
    }
    // Header length beyond the file, and a file shorter than the length prefix.
    auto img = image_with_header("{}", 0);
    img[0] = std::byte{0xff};
    EXPECT_FALSE(parse_safetensors(img).has_value());
    EXPECT_FALSE(parse_safetensors(std::span<const std::byte>(img.data(), 5)).has_value());
    // Metadata only is a valid, empty file.
    auto meta = parse_safetensors(image_with_header(R"({"__metadata__":{"format":"pt"}})", 0));
    ASSERT_TRUE(meta.has_value());
    EXPECT_TRUE(meta->empty());
}

TEST(Safetensors, RandomBytesNeverCrash) {
    std::mt19937 rng(7);
    for (int i = 0; i < 300; ++i) {
        std::string header = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
        header[static_cast<size_t>(rng() % header.size())] = static_cast<char>(rng() % 256);
        auto img = image_with_header(header, rng() % 16);
        (void)parse_safetensors(img);
    }
    SUCCEED();
}

TEST(Safetensors, OpenMissingFileIsIoError) {
    auto r = SafetensorsFile::open("/nonexistent/helexa/model.safetensors");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kIo);
}

TEST(WeightSet, ReadsShardedIndexAndChecksShapes) {
    TempDir dir;
    std::vector<float> a(4, 1.0f);
    std::vector<float> b(6, 2.0f);
    ASSERT_TRUE(write_safetensors(dir.path() / "model-00001-of-00002.safetensors",
                                  {{"a", DType::kF32, {4}, std::as_bytes(std::span(a))}})
                    .has_value());
    ASSERT_TRUE(write_safetensors(dir.path() / "model-00002-of-00002.safetensors",
                                  {{"b", DType::kF32, {2, 3}, std::as_bytes(std::span(b))}})
                    .has_value());
    write_text(dir.path() / "model.safetensors.index.json",
               R"({"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors",
                   "b":"model-00002-of-00002.safetensors"}})");
    auto set = WeightSet::open(dir.path());
    ASSERT_TRUE(set.has_value()) << set.error().full_message();
    EXPECT_EQ(set->size(), 2u);
    EXPECT_EQ(set->total_bytes(), 40);
    EXPECT_TRUE(set->require("b", {2, 3}).has_value());
    auto wrong = set->require("b", {3, 2});
    ASSERT_FALSE(wrong.has_value());
    EXPECT_NE(wrong.error().message().find("[2, 3], expected [3, 2]"), std::string::npos);
    EXPECT_FALSE(set->require("c", {1}).has_value());

    write_text(dir.path() / "model.safetensors.index.json",
               R"({"weight_map":{"a":"../escape.safetensors"}})");
    EXPECT_FALSE(WeightSet::open(dir.path()).has_value());
    write_text(dir.path() / "model.safetensors.index.json",
               R"({"weight_map":{"a":"model-missing.safetensors"}})");
    auto missing = WeightSet::open(dir.path());
    ASSERT_FALSE(missing.has_value());
    EXPECT_EQ(missing.error().code(), ErrorCode::kIo);
}

TEST(WeightSet, EmptyDirectoryIsIoError) {
    TempDir dir;
    auto r = WeightSet::open(dir.path());
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kIo);
}

nlohmann::json base_config() {
    return nlohmann::json::parse(R"({
        "model_type": "qwen3", "hidden_size": 1024, "intermediate_size": 3072,
        "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
        "head_dim": 128, "vocab_size": 151936, "max_position_embeddings": 40960,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000, "tie_word_embeddings": true,
        "eos_token_id": 151645, "bos_token_id": 151643, "torch_dtype": "bfloat16"})");
}

TEST(ModelConfig, ParsesQwen3Shape) {
    auto c = parse_model_config(base_config());
    ASSERT_TRUE(c.has_value()) << c.error().message();
    EXPECT_EQ(c->head_dim, 128);  // explicit, not hidden / heads (= 64)
    EXPECT_TRUE(c->tie_word_embeddings);
    EXPECT_EQ(c->rope.theta, 1000000.0);
    EXPECT_EQ(c->rope.type, RopeType::kDefault);
    EXPECT_EQ(c->eos_token_ids, std::vector<int32_t>{151645});
    EXPECT_EQ(c->bos_token_id, 151643);
    EXPECT_EQ(c->torch_dtype, "bfloat16");
    EXPECT_EQ(c->rotary_dim(), 128);
}

TEST(ModelConfig, DefaultsAndNestedTextConfig) {
    auto j = base_config();
    j.erase("head_dim");
    j.erase("num_key_value_heads");
    auto c = parse_model_config(j);
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->head_dim, 64);
    EXPECT_EQ(c->num_key_value_heads, 16);

    nlohmann::json nested = {{"model_type", "qwen3"},
                             {"tie_word_embeddings", false},
                             {"text_config", base_config()}};
    nested["text_config"]["hidden_size"] = 512;
    nested["text_config"]["rope_parameters"] = {{"rope_theta", 5e6},
                                                {"partial_rotary_factor", 0.25},
                                                {"rope_type", "default"}};
    auto n = parse_model_config(nested);
    ASSERT_TRUE(n.has_value()) << n.error().message();
    EXPECT_EQ(n->hidden_size, 512);
    EXPECT_FALSE(n->tie_word_embeddings);  // top level wins for this key
    EXPECT_EQ(n->rope.theta, 5e6);
    EXPECT_EQ(n->rotary_dim(), 32);
}

TEST(ModelConfig, UnsupportedTypeNamesTheSupportedSet) {
    auto j = base_config();
    j["model_type"] = "mamba";
    auto c = parse_model_config(j);
    ASSERT_FALSE(c.has_value());
    EXPECT_EQ(c.error().code(), ErrorCode::kInvalidRequest);
    EXPECT_NE(c.error().message().find("'mamba'"), std::string::npos);
    EXPECT_NE(c.error().message().find("qwen3, llama, qwen2"), std::string::npos);
}

TEST(ModelConfig, RejectsBadFields) {
    for (auto [key, value] : std::vector<std::pair<std::string, nlohmann::json>>{
             {"hidden_size", -1},
             {"num_key_value_heads", 5},
             {"hidden_act", "gelu"},
             {"tie_word_embeddings", "yes"},
             {"eos_token_id", "x"},
             {"rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}}}) {
        auto j = base_config();
        j[key] = value;
        auto c = parse_model_config(j);
        ASSERT_FALSE(c.has_value()) << key;
        EXPECT_NE(c.error().message().find(key == "rope_scaling" ? "yarn" : key),
                  std::string::npos)
            << c.error().message();
    }
    auto j = base_config();
    j.erase("vocab_size");
    EXPECT_FALSE(parse_model_config(j).has_value());
}

// Llama 3.1's rope scaling against the formula evaluated in double here.
TEST(ModelConfig, Llama3RopeScaling) {
    auto j = base_config();
    j["model_type"] = "llama";
    j["head_dim"] = 64;
    j["rope_theta"] = 500000.0;
    j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
    j["eos_token_id"] = {128001, 128008, 128009};
    auto c = parse_model_config(j);
    ASSERT_TRUE(c.has_value()) << c.error().message();
    EXPECT_EQ(c->rope.type, RopeType::kLlama3);
    EXPECT_EQ(c->eos_token_ids.size(), 3u);
    auto inv = rope_inv_freq(*c);
    ASSERT_EQ(inv.size(), 32u);
    int scaled = 0;
    int kept = 0;
    int blended = 0;
    for (size_t i = 0; i < inv.size(); ++i) {
        const double base = 1.0 / std::pow(500000.0, (2.0 * i) / 64.0);
        const double wavelen = 2 * M_PI / base;
        double want = base;
        if (wavelen > 8192.0) {
            want = base / 8.0;
            ++scaled;
        } else if (wavelen >= 2048.0) {
            const double s = (8192.0 / wavelen - 1.0) / 3.0;
            want = (1 - s) * base / 8.0 + s * base;
            ++blended;
        } else {
            ++kept;
        }
        EXPECT_NEAR(inv[i], want, want * 1e-5) << i;
    }
    EXPECT_GT(scaled, 0);
    EXPECT_GT(kept, 0);
    EXPECT_GT(blended, 0);
}

TEST(GenerationConfig, LoadsAndMergesEos) {
    TempDir dir;
    auto c = parse_model_config(base_config());
    ASSERT_TRUE(c.has_value());
    auto none = load_generation_config(dir.path(), *c);
    ASSERT_TRUE(none.has_value());
    EXPECT_FALSE(none->temperature.has_value());
    EXPECT_EQ(none->eos_token_ids, std::vector<int32_t>{151645});

    write_text(dir.path() / "generation_config.json",
               R"({"eos_token_id":[151645,151643],"temperature":0.6,"top_p":0.95,"top_k":20})");
    auto g = load_generation_config(dir.path(), *c);
    ASSERT_TRUE(g.has_value()) << g.error().full_message();
    EXPECT_FLOAT_EQ(*g->temperature, 0.6f);
    EXPECT_EQ(*g->top_k, 20);
    EXPECT_EQ(g->eos_token_ids, (std::vector<int32_t>{151645, 151643}));

    write_text(dir.path() / "generation_config.json", "{not json");
    EXPECT_FALSE(load_generation_config(dir.path(), *c).has_value());
}

}  // namespace
}  // namespace helexa::engine
