// config.json parsing and RoPE frequency setup.
#include "helexa/engine/model_config.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <sstream>

#include "helexa/engine/generation_config.h"

namespace helexa::engine {
namespace {

constexpr std::array<std::string_view, 3> kSupported = {"qwen3", "llama", "qwen2"};

std::string supported_list() {
    std::string s;
    for (auto t : kSupported) {
        s += (s.empty() ? "" : ", ") + std::string(t);
    }
    return s;
}

Status field_error(const std::string& key, const std::string& what) {
    return fail(ErrorCode::kInvalidRequest, "config.json: '" + key + "' " + what);
}

// Field lookup: text_config first (multimodal nesting), then the top level.
class Fields {
public:
    explicit Fields(const nlohmann::json& top) : top_(top) {
        auto it = top.find("text_config");
        if (it != top.end() && it->is_object()) {
            text_ = &*it;
        }
    }
    const nlohmann::json* get(const std::string& key, bool top_first = false) const {
        const nlohmann::json* order[2] = {text_, &top_};
        if (top_first) {
            std::swap(order[0], order[1]);
        }
        for (const auto* obj : order) {
            if (obj == nullptr) {
                continue;
            }
            auto it = obj->find(key);
            if (it != obj->end() && !it->is_null()) {
                return &*it;
            }
        }
        return nullptr;
    }

private:
    const nlohmann::json& top_;
    const nlohmann::json* text_ = nullptr;
};

Status read_int(const Fields& f, const std::string& key, int64_t& out, bool required) {
    const auto* v = f.get(key);
    if (v == nullptr) {
        return required ? field_error(key, "is required") : ok();
    }
    if (!v->is_number_integer() || v->get<int64_t>() <= 0) {
        return field_error(key, "must be a positive integer");
    }
    out = v->get<int64_t>();
    return ok();
}

Status read_number(const nlohmann::json* v, const std::string& key, double& out) {
    if (v == nullptr) {
        return ok();
    }
    if (!v->is_number()) {
        return field_error(key, "must be a number");
    }
    out = v->get<double>();
    return ok();
}

Status read_bool(const nlohmann::json* v, const std::string& key, bool& out) {
    if (v == nullptr) {
        return ok();
    }
    if (!v->is_boolean()) {
        return field_error(key, "must be a boolean");
    }
    out = v->get<bool>();
    return ok();
}

Status read_ids(const nlohmann::json* v, const std::string& key, std::vector<int32_t>& out) {
    if (v == nullptr) {
        return ok();
    }
    auto one = [&](const nlohmann::json& x) -> Status {
        if (!x.is_number_integer() || x.get<int64_t>() < 0 ||
            x.get<int64_t>() > INT32_MAX) {
            return field_error(key, "must be a token id or a list of token ids");
        }
        out.push_back(static_cast<int32_t>(x.get<int64_t>()));
        return ok();
    };
    if (v->is_array()) {
        for (const auto& x : *v) {
            HELEXA_TRY_STATUS(one(x));
        }
        return ok();
    }
    return one(*v);
}

// rope_parameters (transformers 5) or rope_theta + rope_scaling (earlier releases).
Status read_rope(const Fields& f, RopeConfig& rope) {
    const nlohmann::json* params = f.get("rope_parameters");
    if (params == nullptr) {
        params = f.get("rope_scaling");
    }
    HELEXA_TRY_STATUS(read_number(f.get("rope_theta"), "rope_theta", rope.theta));
    HELEXA_TRY_STATUS(read_number(f.get("partial_rotary_factor"), "partial_rotary_factor",
                                  rope.partial_rotary_factor));
    if (params != nullptr) {
        if (!params->is_object()) {
            return field_error("rope_parameters", "must be an object");
        }
        auto num = [&](const char* key, double& out) {
            auto it = params->find(key);
            return read_number(it == params->end() || it->is_null() ? nullptr : &*it,
                               std::string("rope_parameters.") + key, out);
        };
        HELEXA_TRY_STATUS(num("rope_theta", rope.theta));
        HELEXA_TRY_STATUS(num("partial_rotary_factor", rope.partial_rotary_factor));
        HELEXA_TRY_STATUS(num("factor", rope.factor));
        HELEXA_TRY_STATUS(num("low_freq_factor", rope.low_freq_factor));
        HELEXA_TRY_STATUS(num("high_freq_factor", rope.high_freq_factor));
        double orig = static_cast<double>(rope.original_max_position_embeddings);
        HELEXA_TRY_STATUS(num("original_max_position_embeddings", orig));
        rope.original_max_position_embeddings = static_cast<int64_t>(orig);
        std::string type = "default";
        for (const char* key : {"rope_type", "type"}) {
            auto it = params->find(key);
            if (it != params->end() && it->is_string()) {
                type = it->get<std::string>();
                break;
            }
        }
        if (type == "default") {
            rope.type = RopeType::kDefault;
        } else if (type == "linear") {
            rope.type = RopeType::kLinear;
        } else if (type == "llama3") {
            rope.type = RopeType::kLlama3;
        } else {
            return field_error("rope_parameters.rope_type",
                               "'" + type + "' is not supported (supported: default, linear, "
                               "llama3)");
        }
    }
    if (!(rope.theta > 0) || !(rope.partial_rotary_factor > 0) ||
        rope.partial_rotary_factor > 1 || !(rope.factor > 0)) {
        return field_error("rope_parameters", "has out-of-range values");
    }
    if (rope.type == RopeType::kLlama3 &&
        (!(rope.high_freq_factor > rope.low_freq_factor) || rope.low_freq_factor <= 0 ||
         rope.original_max_position_embeddings <= 0)) {
        return field_error("rope_parameters", "llama3 scaling needs high_freq_factor > "
                                              "low_freq_factor > 0");
    }
    return ok();
}

}  // namespace

int64_t ModelConfig::rotary_dim() const {
    auto d = static_cast<int64_t>(static_cast<double>(head_dim) * rope.partial_rotary_factor);
    return d - d % 2;
}

std::span<const std::string_view> supported_model_types() {
    return kSupported;
}

Result<ModelConfig> parse_model_config(const nlohmann::json& json) {
    if (!json.is_object()) {
        return fail(ErrorCode::kInvalidRequest, "config.json: expected a JSON object");
    }
    Fields f(json);
    ModelConfig c;
    const auto* type = json.find("model_type") != json.end() ? &json["model_type"] : nullptr;
    if (type == nullptr || !type->is_string()) {
        type = f.get("model_type");
    }
    if (type == nullptr || !type->is_string()) {
        return fail(ErrorCode::kInvalidRequest,
                    "config.json: missing model_type (supported: " + supported_list() + ")");
    }
    c.model_type = type->get<std::string>();
    if (std::find(kSupported.begin(), kSupported.end(), c.model_type) == kSupported.end()) {
        return fail(Error(ErrorCode::kInvalidRequest, "unsupported model_type '" +
                                                          c.model_type + "' (supported: " +
                                                          supported_list() + ")")
                        .with_extra("model_type", c.model_type));
    }
    if (const auto* a = f.get("architectures", true); a != nullptr && a->is_array()) {
        for (const auto& x : *a) {
            if (x.is_string()) {
                c.architectures.push_back(x.get<std::string>());
            }
        }
    }
    HELEXA_TRY_STATUS(read_int(f, "hidden_size", c.hidden_size, true));
    HELEXA_TRY_STATUS(read_int(f, "intermediate_size", c.intermediate_size, true));
    HELEXA_TRY_STATUS(read_int(f, "num_hidden_layers", c.num_hidden_layers, true));
    HELEXA_TRY_STATUS(read_int(f, "num_attention_heads", c.num_attention_heads, true));
    c.num_key_value_heads = c.num_attention_heads;
    HELEXA_TRY_STATUS(read_int(f, "num_key_value_heads", c.num_key_value_heads, false));
    c.head_dim = c.hidden_size / c.num_attention_heads;
    HELEXA_TRY_STATUS(read_int(f, "head_dim", c.head_dim, false));
    HELEXA_TRY_STATUS(read_int(f, "vocab_size", c.vocab_size, true));
    HELEXA_TRY_STATUS(read_int(f, "max_position_embeddings", c.max_position_embeddings, false));
    HELEXA_TRY_STATUS(read_number(f.get("rms_norm_eps"), "rms_norm_eps", c.rms_norm_eps));
    HELEXA_TRY_STATUS(read_bool(f.get("tie_word_embeddings", true), "tie_word_embeddings",
                                c.tie_word_embeddings));
    HELEXA_TRY_STATUS(read_bool(f.get("attention_bias"), "attention_bias", c.attention_bias));
    HELEXA_TRY_STATUS(read_bool(f.get("mlp_bias"), "mlp_bias", c.mlp_bias));
    HELEXA_TRY_STATUS(read_rope(f, c.rope));
    HELEXA_TRY_STATUS(read_ids(f.get("eos_token_id", true), "eos_token_id", c.eos_token_ids));
    std::vector<int32_t> bos;
    HELEXA_TRY_STATUS(read_ids(f.get("bos_token_id", true), "bos_token_id", bos));
    if (!bos.empty()) {
        c.bos_token_id = bos.front();
    }
    for (const char* key : {"dtype", "torch_dtype"}) {
        if (const auto* d = f.get(key); d != nullptr && d->is_string()) {
            c.torch_dtype = d->get<std::string>();
            break;
        }
    }
    if (const auto* act = f.get("hidden_act"); act != nullptr) {
        if (!act->is_string() || (*act != "silu" && *act != "swish")) {
            return tl::unexpected(
                field_error("hidden_act", "must be \"silu\" (the only activation supported)")
                    .error());
        }
    }
    if (c.num_attention_heads % c.num_key_value_heads != 0) {
        return tl::unexpected(
            field_error("num_key_value_heads", "must divide num_attention_heads").error());
    }
    if (!(c.rms_norm_eps > 0)) {
        return tl::unexpected(field_error("rms_norm_eps", "must be positive").error());
    }
    if (c.rotary_dim() <= 0) {
        return tl::unexpected(field_error("partial_rotary_factor", "leaves no rotary dims").error());
    }
    return c;
}

Result<ModelConfig> load_model_config(const std::filesystem::path& dir) {
    const auto path = dir / "config.json";
    std::ifstream in(path);
    if (!in) {
        return fail(ErrorCode::kIo, "cannot read " + path.string());
    }
    std::stringstream buf;
    buf << in.rdbuf();
    auto json = nlohmann::json::parse(buf.str(), nullptr, false);
    if (json.is_discarded()) {
        return fail(ErrorCode::kInvalidJson, path.string() + " is not valid JSON");
    }
    auto c = parse_model_config(json);
    if (!c) {
        return fail(std::move(c.error()).with_context(path.string()));
    }
    return c;
}

std::vector<float> rope_inv_freq(const ModelConfig& config) {
    const int64_t dim = config.rotary_dim();
    const auto base = static_cast<float>(config.rope.theta);
    std::vector<float> inv(static_cast<size_t>(dim / 2));
    for (int64_t i = 0; i < dim / 2; ++i) {
        const float expo = static_cast<float>(2 * i) / static_cast<float>(dim);
        inv[static_cast<size_t>(i)] = 1.0f / std::pow(base, expo);
    }
    const RopeConfig& r = config.rope;
    if (r.type == RopeType::kLinear) {
        for (float& f : inv) {
            f = static_cast<float>(f / r.factor);
        }
    } else if (r.type == RopeType::kLlama3) {
        // transformers _compute_llama3_parameters: long wavelengths scaled by `factor`, short
        // ones kept, the band between blended smoothly.
        const auto factor = static_cast<float>(r.factor);
        const auto low = static_cast<float>(r.low_freq_factor);
        const auto high = static_cast<float>(r.high_freq_factor);
        const auto old_ctx = static_cast<float>(r.original_max_position_embeddings);
        const float low_wavelen = old_ctx / low;
        const float high_wavelen = old_ctx / high;
        constexpr float kPi = 3.14159265358979323846f;
        for (float& f : inv) {
            const float wavelen = 2.0f * kPi / f;
            float scaled = wavelen > low_wavelen ? f / factor : f;
            const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
            if (medium) {
                const float smooth = (old_ctx / wavelen - low) / (high - low);
                scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
            }
            f = scaled;
        }
    }
    return inv;
}

Result<GenerationDefaults> load_generation_config(const std::filesystem::path& dir,
                                                  const ModelConfig& model) {
    GenerationDefaults g;
    const auto path = dir / "generation_config.json";
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) {
        std::ifstream in(path);
        std::stringstream buf;
        buf << in.rdbuf();
        auto json = nlohmann::json::parse(buf.str(), nullptr, false);
        if (json.is_discarded()) {
            return fail(ErrorCode::kInvalidJson, path.string() + " is not valid JSON");
        }
        auto parsed = generation_defaults_from_json(json);
        if (!parsed) {
            return fail(std::move(parsed.error()).with_context(path.string()));
        }
        g = std::move(*parsed);
    }
    for (int32_t id : model.eos_token_ids) {
        if (std::find(g.eos_token_ids.begin(), g.eos_token_ids.end(), id) ==
            g.eos_token_ids.end()) {
            g.eos_token_ids.push_back(id);
        }
    }
    return g;
}

}  // namespace helexa::engine
