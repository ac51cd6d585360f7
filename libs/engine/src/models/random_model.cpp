// Deterministic random-weight HF snapshots (see random_model.h).
#include "helexa/engine/random_model.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "helexa/engine/safetensors.h"

namespace helexa::engine {
namespace {

uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t fnv1a(const std::string& s) {
    uint64_t h = 1469598103934665603ull;
    for (char c : s) {
        h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
    }
    return h;
}

struct Planned {
    std::string name;
    std::vector<int64_t> shape;
    float center;  // 0 for projections, 1 for norm weights
    float half_width;
};

std::vector<Planned> plan(const RandomModelSpec& s) {
    const float a = s.init_std * std::sqrt(3.0f);
    const float j = s.norm_jitter;
    const int64_t q = s.num_attention_heads * s.head_dim;
    const int64_t kv = s.num_key_value_heads * s.head_dim;
    const bool qkv_bias = s.model_type == "qwen2" || s.attention_bias;
    const bool o_bias = s.model_type != "qwen2" && s.attention_bias;
    std::vector<Planned> p;
    p.push_back({"model.embed_tokens.weight", {s.vocab_size, s.hidden_size}, 0, a});
    for (int64_t i = 0; i < s.num_hidden_layers; ++i) {
        const std::string l = "model.layers." + std::to_string(i) + ".";
        p.push_back({l + "input_layernorm.weight", {s.hidden_size}, 1, j});
        p.push_back({l + "self_attn.q_proj.weight", {q, s.hidden_size}, 0, a});
        p.push_back({l + "self_attn.k_proj.weight", {kv, s.hidden_size}, 0, a});
        p.push_back({l + "self_attn.v_proj.weight", {kv, s.hidden_size}, 0, a});
        p.push_back({l + "self_attn.o_proj.weight", {s.hidden_size, q}, 0, a});
        if (qkv_bias) {
            p.push_back({l + "self_attn.q_proj.bias", {q}, 0, a});
            p.push_back({l + "self_attn.k_proj.bias", {kv}, 0, a});
            p.push_back({l + "self_attn.v_proj.bias", {kv}, 0, a});
        }
        if (o_bias) {
            p.push_back({l + "self_attn.o_proj.bias", {s.hidden_size}, 0, a});
        }
        if (s.model_type == "qwen3") {
            p.push_back({l + "self_attn.q_norm.weight", {s.head_dim}, 1, j});
            p.push_back({l + "self_attn.k_norm.weight", {s.head_dim}, 1, j});
        }
        p.push_back({l + "post_attention_layernorm.weight", {s.hidden_size}, 1, j});
        p.push_back({l + "mlp.gate_proj.weight", {s.intermediate_size, s.hidden_size}, 0, a});
        p.push_back({l + "mlp.up_proj.weight", {s.intermediate_size, s.hidden_size}, 0, a});
        p.push_back({l + "mlp.down_proj.weight", {s.hidden_size, s.intermediate_size}, 0, a});
    }
    p.push_back({"model.norm.weight", {s.hidden_size}, 1, j});
    if (!s.tie_word_embeddings) {
        p.push_back({"lm_head.weight", {s.vocab_size, s.hidden_size}, 0, a});
    }
    return p;
}

int64_t numel(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) {
        n *= d;
    }
    return n;
}

// The value of element i of a tensor is a pure function of (seed, name, i).
class Draw {
public:
    Draw(const Planned& t, uint64_t seed) : t_(t), state_(seed ^ fnv1a(t.name)) {}
    float next() {
        // 24 random bits -> [-1, 1)
        const auto u = static_cast<float>(splitmix64(state_) >> 40) * (2.0f / 16777216.0f) - 1.0f;
        return t_.center + t_.half_width * u;
    }

private:
    const Planned& t_;
    uint64_t state_;
};

void store(std::byte* dst, float v, DType dtype) {
    switch (dtype) {
        case DType::kF32:
            std::memcpy(dst, &v, 4);
            break;
        case DType::kBF16: {
            const uint16_t b = f32_to_bf16(v);
            std::memcpy(dst, &b, 2);
            break;
        }
        case DType::kF16: {
            const uint16_t h = f32_to_f16(v);
            std::memcpy(dst, &h, 2);
            break;
        }
        case DType::kI32:
            break;
    }
}

void fill(std::vector<std::byte>& out, const Planned& t, DType dtype, uint64_t seed,
          const TensorShaper& shaper) {
    const int64_t n = numel(t.shape);
    const int64_t esize = dtype_size(dtype);
    out.resize(static_cast<size_t>(n * esize));
    Draw draw(t, seed);
    if (!shaper) {
        // Straight to the file dtype: the 0.6B benchmark model never holds an f32 copy.
        for (int64_t i = 0; i < n; ++i) {
            store(out.data() + i * esize, draw.next(), dtype);
        }
        return;
    }
    std::vector<float> values(static_cast<size_t>(n));
    for (auto& v : values) {
        v = draw.next();
    }
    shaper(t.name, t.shape, values);
    for (int64_t i = 0; i < n; ++i) {
        store(out.data() + i * esize, values[static_cast<size_t>(i)], dtype);
    }
}

std::string dtype_torch_name(DType d) {
    switch (d) {
        case DType::kF32:
            return "float32";
        case DType::kF16:
            return "float16";
        case DType::kBF16:
            return "bfloat16";
        case DType::kI32:
            return "int32";
    }
    return "float32";
}

Status write_json(const std::filesystem::path& path, const nlohmann::json& j) {
    std::ofstream out(path, std::ios::trunc);
    out << j.dump(2) << "\n";
    out.close();
    if (!out) {
        return fail(ErrorCode::kIo, "cannot write " + path.string());
    }
    return ok();
}

}  // namespace

nlohmann::json random_model_config_json(const RandomModelSpec& s) {
    static const std::map<std::string, std::string> kArch = {
        {"qwen3", "Qwen3ForCausalLM"}, {"llama", "LlamaForCausalLM"},
        {"qwen2", "Qwen2ForCausalLM"}};
    nlohmann::json rope = {{"rope_type", "default"}, {"rope_theta", s.rope_theta}};
    if (s.rope_scaling && s.rope_scaling->type == RopeType::kLlama3) {
        rope = {{"rope_type", "llama3"},
                {"rope_theta", s.rope_theta},
                {"factor", s.rope_scaling->factor},
                {"low_freq_factor", s.rope_scaling->low_freq_factor},
                {"high_freq_factor", s.rope_scaling->high_freq_factor},
                {"original_max_position_embeddings",
                 s.rope_scaling->original_max_position_embeddings}};
    } else if (s.rope_scaling && s.rope_scaling->type == RopeType::kLinear) {
        rope = {{"rope_type", "linear"},
                {"rope_theta", s.rope_theta},
                {"factor", s.rope_scaling->factor}};
    }
    auto it = kArch.find(s.model_type);
    nlohmann::json j = {
        {"architectures", {it == kArch.end() ? s.model_type : it->second}},
        {"model_type", s.model_type},
        {"hidden_size", s.hidden_size},
        {"intermediate_size", s.intermediate_size},
        {"num_hidden_layers", s.num_hidden_layers},
        {"num_attention_heads", s.num_attention_heads},
        {"num_key_value_heads", s.num_key_value_heads},
        {"head_dim", s.head_dim},
        {"vocab_size", s.vocab_size},
        {"max_position_embeddings", s.max_position_embeddings},
        {"rms_norm_eps", s.rms_norm_eps},
        {"rope_theta", s.rope_theta},
        {"rope_parameters", rope},
        {"tie_word_embeddings", s.tie_word_embeddings},
        {"attention_bias", s.attention_bias},
        {"hidden_act", "silu"},
        {"dtype", dtype_torch_name(s.dtype)},
    };
    if (s.bos_token_id) {
        j["bos_token_id"] = *s.bos_token_id;
    }
    if (!s.eos_token_ids.empty()) {
        j["eos_token_id"] = s.eos_token_ids.size() == 1 ? nlohmann::json(s.eos_token_ids[0])
                                                        : nlohmann::json(s.eos_token_ids);
    }
    return j;
}

int64_t random_model_parameter_count(const RandomModelSpec& spec) {
    int64_t n = 0;
    for (const auto& t : plan(spec)) {
        n += numel(t.shape);
    }
    return n;
}

Status write_random_model(const RandomModelSpec& spec, const std::filesystem::path& dir) {
    return write_random_model(spec, dir, TensorShaper{});
}

Status write_random_model(const RandomModelSpec& spec, const std::filesystem::path& dir,
                          const TensorShaper& shaper) {
    auto config = random_model_config_json(spec);
    auto parsed = parse_model_config(config);  // same validation as a real load
    if (!parsed) {
        return fail(std::move(parsed.error()).with_context("random model spec"));
    }
    if (spec.dtype == DType::kI32) {
        return fail(ErrorCode::kInvalidRequest, "random model dtype must be F32, F16 or BF16");
    }
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
        return fail(ErrorCode::kIo, "cannot create " + dir.string() + ": " + ec.message());
    }
    const auto planned = plan(spec);
    std::vector<std::vector<std::byte>> buffers(planned.size());
    std::vector<TensorToWrite> tensors;
    tensors.reserve(planned.size());
    for (size_t i = 0; i < planned.size(); ++i) {
        fill(buffers[i], planned[i], spec.dtype, spec.seed, shaper);
        tensors.push_back({planned[i].name, spec.dtype, planned[i].shape, buffers[i]});
    }
    HELEXA_TRY_STATUS(write_safetensors(dir / "model.safetensors", tensors));
    HELEXA_TRY_STATUS(write_json(dir / "config.json", config));
    if (spec.write_generation_config) {
        nlohmann::json g = {{"do_sample", true},     {"temperature", 0.6},
                            {"top_p", 0.95},         {"top_k", 20},
                            {"transformers_version", "5.0.0"}};
        if (spec.bos_token_id) {
            g["bos_token_id"] = *spec.bos_token_id;
        }
        if (!spec.eos_token_ids.empty()) {
            g["eos_token_id"] = spec.eos_token_ids;
        }
        HELEXA_TRY_STATUS(write_json(dir / "generation_config.json", g));
    }
    return ok();
}

void write_tiny_tokenizer(const std::filesystem::path& dir, int32_t vocab) {
    nlohmann::json v = nlohmann::json::object();
    v["<unk>"] = 0;
    int32_t id = 1;
    for (char ch = 32; ch < 127; ++ch) {
        v[std::string(1, ch)] = id++;
    }
    while (id < vocab - 1) {
        // Appended rather than "t" + to_string: GCC 12 at -O3 reports a false -Wrestrict on
        // operator+(const char*, string&&).
        std::string key = "t";
        key += std::to_string(id);
        v[key] = id;
        ++id;
    }
    v["<|im_end|>"] = vocab - 1;
    nlohmann::json added = nlohmann::json::array(
        {{{"id", vocab - 1}, {"content", "<|im_end|>"}, {"single_word", false},
          {"lstrip", false}, {"rstrip", false}, {"normalized", false}, {"special", true}}});
    nlohmann::json doc = {{"version", "1.0"},           {"added_tokens", added},
                          {"normalizer", nullptr},      {"pre_tokenizer", nullptr},
                          {"post_processor", nullptr},  {"decoder", nullptr},
                          {"model",
                           {{"type", "BPE"},
                            {"unk_token", "<unk>"},
                            {"fuse_unk", true},
                            {"byte_fallback", false},
                            {"vocab", v},
                            {"merges", nlohmann::json::array()}}}};
    std::ofstream(dir / "tokenizer.json") << doc.dump();
    std::ofstream(dir / "tokenizer_config.json")
        << nlohmann::json{{"eos_token", "<|im_end|>"}}.dump();
}

}  // namespace helexa::engine
