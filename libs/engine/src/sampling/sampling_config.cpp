#include "helexa/engine/sampling_config.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace helexa::engine {
namespace {

constexpr size_t kMaxStopStrings = 16;
constexpr float kMaxAbsPenalty = 2.0F;
constexpr float kMaxAbsLogitBias = 100.0F;

tl::unexpected<Error> invalid(const std::string& field, const std::string& why) {
    return tl::unexpected<Error>(
        Error(ErrorCode::kInvalidRequest, field + " " + why).with_param(field));
}

template <typename T>
Result<std::optional<T>> read_number(const nlohmann::json& config, const char* key) {
    auto it = config.find(key);
    if (it == config.end() || it->is_null()) {
        return std::optional<T>{};
    }
    if (!it->is_number()) {
        return fail(ErrorCode::kInvalidRequest,
                    std::string("generation_config.json: '") + key + "' is not a number");
    }
    if constexpr (std::is_integral_v<T>) {
        if (!it->is_number_integer()) {
            return fail(ErrorCode::kInvalidRequest,
                        std::string("generation_config.json: '") + key + "' is not an integer");
        }
        return std::optional<T>(it->get<T>());
    } else {
        return std::optional<T>(static_cast<T>(it->get<double>()));
    }
}

}  // namespace

Result<GenerationDefaults> generation_defaults_from_json(const nlohmann::json& config) {
    if (!config.is_object()) {
        return fail(ErrorCode::kInvalidRequest, "generation_config.json is not a JSON object");
    }
    GenerationDefaults out;
    if (auto it = config.find("do_sample"); it != config.end() && !it->is_null()) {
        if (!it->is_boolean()) {
            return fail(ErrorCode::kInvalidRequest,
                        "generation_config.json: 'do_sample' is not a boolean");
        }
        out.do_sample = it->get<bool>();
    }
    auto temperature = read_number<float>(config, "temperature");
    auto top_p = read_number<float>(config, "top_p");
    auto top_k = read_number<int64_t>(config, "top_k");
    auto min_p = read_number<float>(config, "min_p");
    auto rep = read_number<float>(config, "repetition_penalty");
    auto max_new = read_number<int64_t>(config, "max_new_tokens");
    for (const auto* r : {&temperature, &top_p, &min_p, &rep}) {
        if (!*r) {
            return fail(r->error());
        }
    }
    for (const auto* r : {&top_k, &max_new}) {
        if (!*r) {
            return fail(r->error());
        }
    }
    out.temperature = *temperature;
    out.top_p = *top_p;
    if (*top_k) {
        out.top_k = static_cast<int32_t>(std::clamp<int64_t>(
            **top_k, -1, std::numeric_limits<int32_t>::max()));
    }
    out.min_p = *min_p;
    out.repetition_penalty = *rep;
    out.max_new_tokens = *max_new;

    if (auto it = config.find("eos_token_id"); it != config.end() && !it->is_null()) {
        auto add = [&](const nlohmann::json& v) -> Status {
            if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
                v.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
                return fail(ErrorCode::kInvalidRequest,
                            "generation_config.json: 'eos_token_id' holds a non-id value");
            }
            out.eos_token_ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
            return ok();
        };
        if (it->is_array()) {
            for (const auto& v : *it) {
                HELEXA_TRY_STATUS(add(v));
            }
        } else {
            HELEXA_TRY_STATUS(add(*it));
        }
    }
    return out;
}

Result<SamplingConfig> resolve_sampling(const SamplingParams& request,
                                        const GenerationDefaults& defaults, int64_t vocab_size,
                                        int64_t context_left) {
    SamplingConfig cfg;

    // Temperature: an explicit do_sample=false in generation_config means greedy by default.
    if (request.temperature) {
        cfg.temperature = *request.temperature;
    } else if (defaults.do_sample.has_value() && !*defaults.do_sample) {
        cfg.temperature = 0.0F;
    } else if (defaults.temperature) {
        cfg.temperature = *defaults.temperature;
    }
    if (!std::isfinite(cfg.temperature) || cfg.temperature < 0.0F) {
        return invalid("temperature", "must be a finite number >= 0");
    }

    cfg.top_p = request.top_p.value_or(defaults.top_p.value_or(kDefaultTopP));
    if (!std::isfinite(cfg.top_p) || cfg.top_p <= 0.0F || cfg.top_p > 1.0F) {
        return invalid("top_p", "must be in (0, 1]");
    }

    cfg.top_k = request.top_k.value_or(defaults.top_k.value_or(kDefaultTopK));
    if (cfg.top_k < -1) {
        return invalid("top_k", "must be >= 0 (0 or -1 disables it)");
    }
    if (cfg.top_k == -1 || cfg.top_k >= vocab_size) {
        cfg.top_k = 0;  // every token is within the top-k: same as disabled
    }

    cfg.min_p = request.min_p.value_or(defaults.min_p.value_or(kDefaultMinP));
    if (!std::isfinite(cfg.min_p) || cfg.min_p < 0.0F || cfg.min_p > 1.0F) {
        return invalid("min_p", "must be in [0, 1]");
    }

    cfg.repetition_penalty = request.repetition_penalty.value_or(
        defaults.repetition_penalty.value_or(kDefaultRepetitionPenalty));
    if (!std::isfinite(cfg.repetition_penalty) || cfg.repetition_penalty <= 0.0F) {
        return invalid("repetition_penalty", "must be a finite number > 0");
    }

    cfg.presence_penalty = request.presence_penalty.value_or(0.0F);
    if (!std::isfinite(cfg.presence_penalty) || std::fabs(cfg.presence_penalty) > kMaxAbsPenalty) {
        return invalid("presence_penalty", "must be in [-2, 2]");
    }
    cfg.frequency_penalty = request.frequency_penalty.value_or(0.0F);
    if (!std::isfinite(cfg.frequency_penalty) ||
        std::fabs(cfg.frequency_penalty) > kMaxAbsPenalty) {
        return invalid("frequency_penalty", "must be in [-2, 2]");
    }

    cfg.seed = request.seed;

    for (const auto& [id, bias] : request.logit_bias) {
        if (id < 0 || id >= vocab_size) {
            return invalid("logit_bias", "has token id " + std::to_string(id) +
                                             " outside the vocabulary [0, " +
                                             std::to_string(vocab_size) + ")");
        }
        if (!std::isfinite(bias) || std::fabs(bias) > kMaxAbsLogitBias) {
            return invalid("logit_bias", "values must be in [-100, 100]");
        }
        if (bias != 0.0F) {
            cfg.logit_bias.emplace(id, bias);
        }
    }

    if (context_left < 1) {
        return fail(ErrorCode::kContextLengthExceeded, "the prompt leaves no room to generate");
    }
    int64_t max_tokens = kDefaultMaxTokens;
    if (request.max_tokens) {
        if (*request.max_tokens < 1) {
            return invalid("max_tokens", "must be >= 1");
        }
        max_tokens = *request.max_tokens;
    } else if (defaults.max_new_tokens && *defaults.max_new_tokens >= 1) {
        max_tokens = *defaults.max_new_tokens;
    }
    cfg.max_tokens = std::min(max_tokens, context_left);
    cfg.ignore_eos = request.ignore_eos;

    for (const auto& s : request.stop) {
        if (!s.empty()) {
            cfg.stop.push_back(s);
        }
    }
    if (cfg.stop.size() > kMaxStopStrings) {
        return invalid("stop", "has more than 16 strings");
    }
    return cfg;
}

}  // namespace helexa::engine
