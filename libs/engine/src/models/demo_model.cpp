// The embedded default model's weights (see demo_model.h for the phase-walk design).
#include "helexa/engine/demo_model.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

namespace helexa::engine {
namespace {

uint64_t mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// Uniform in [-1, 1) from 24 bits, as the random model draws (exact in float, so portable).
float unit(uint64_t bits) {
    return static_cast<float>(bits >> 40) * (2.0F / 16777216.0F) - 1.0F;
}

// Logit margins. With the hidden state normalised, a one-hot dim of the embedding reads back
// as gain = sqrt(hidden / 3) (phase, bias and noise each carry a third of the energy).
constexpr double kAdvanceMargin = 6.0;  // e^-6: chance per token to leave the walk
constexpr double kEosMargin = 6.0;      // EOS mass vs the rest of the vocabulary after a closer
constexpr double kEosElsewhere = -3.0;  // EOS logit away from the closing phase
constexpr double kBannedLogit = -30.0;  // special ids that must never be sampled

struct Layout {
    int64_t hidden = 0;
    int64_t n_phases = 0;
    int64_t bias_dim = 0;     // n_phases + 1
    int64_t noise_begin = 0;  // n_phases + 2
    int64_t n_noise = 0;
    double gain = 0;
};

Layout layout_of(const DemoModelSpec& s) {
    Layout l;
    l.hidden = s.hidden_size;
    l.n_phases = s.n_phases;
    l.bias_dim = s.n_phases + 1;
    l.noise_begin = s.n_phases + 2;
    l.n_noise = s.hidden_size - l.noise_begin;
    l.gain = std::sqrt(static_cast<double>(s.hidden_size) / 3.0);
    return l;
}

Status validate(const DemoModelSpec& s) {
    auto bad = [](const std::string& msg) {
        return fail(ErrorCode::kInvalidRequest, "demo model spec: " + msg);
    };
    if (s.n_phases < 1) {
        return bad("n_phases must be >= 1");
    }
    if (s.hidden_size < s.n_phases + 10) {
        return bad("hidden_size must be at least n_phases + 10");
    }
    if (s.n_regular_tokens < 2 || s.n_regular_tokens > s.vocab_size) {
        return bad("n_regular_tokens must lie in [2, vocab_size]");
    }
    if (!(s.start_phase_fraction >= 0.0 && s.start_phase_fraction < 1.0)) {
        return bad("start_phase_fraction must lie in [0, 1)");
    }
    if (s.eos_token_ids.empty()) {
        return bad("at least one EOS id is required");
    }
    for (int32_t id : s.eos_token_ids) {
        if (id < 0 || id >= s.vocab_size) {
            return bad("EOS id " + std::to_string(id) + " outside the vocabulary");
        }
    }
    for (int32_t id : s.start_token_ids) {
        if (id < 0 || id >= s.n_regular_tokens) {
            return bad("start id " + std::to_string(id) + " is not a regular token");
        }
    }
    if (s.bos_token_id && (*s.bos_token_id < 0 || *s.bos_token_id >= s.vocab_size)) {
        return bad("BOS id outside the vocabulary");
    }
    return ok();
}

bool is_eos(const DemoModelSpec& s, int64_t id) {
    return std::find(s.eos_token_ids.begin(), s.eos_token_ids.end(), id) != s.eos_token_ids.end();
}

// [V, H] row-major; every value is a pure function of (seed, row, dim).
void shape_embedding(const DemoModelSpec& s, const Layout& l, const std::vector<int32_t>& phase,
                     std::span<float> w) {
    const auto noise_half = static_cast<float>(std::sqrt(3.0 / static_cast<double>(l.n_noise)));
    for (int64_t t = 0; t < s.vocab_size; ++t) {
        float* row = w.data() + t * l.hidden;
        std::fill(row, row + l.hidden, 0.0F);
        row[phase[static_cast<size_t>(t)]] = 1.0F;
        row[l.bias_dim] = 1.0F;
        uint64_t state = mix(s.seed ^ 0x656d62ULL) ^ static_cast<uint64_t>(t) * 0x2545f491ULL;
        for (int64_t d = l.noise_begin; d < l.hidden; ++d) {
            state = mix(state);
            row[d] = noise_half * unit(state);  // std 1 / sqrt(n_noise): unit norm overall
        }
    }
}

void shape_lm_head(const DemoModelSpec& s, const Layout& l, const std::vector<int32_t>& phase,
                   std::span<float> w) {
    const double n_vocab = static_cast<double>(s.vocab_size);
    // Tokens one phase ahead hold about (1 - start fraction) / n_phases of the vocabulary.
    const double advance_logit =
        std::log(static_cast<double>(s.n_phases) / (1.0 - s.start_phase_fraction)) +
        kAdvanceMargin;
    const auto advance = static_cast<float>(advance_logit / l.gain);
    const auto eos_bias = static_cast<float>(kEosElsewhere / l.gain);
    const auto eos_phase =
        static_cast<float>((std::log(n_vocab) + kEosMargin - kEosElsewhere) / l.gain);
    const auto banned = static_cast<float>(kBannedLogit / l.gain);
    // Noise logits with unit variance: sum over n_noise dims of (gain / sqrt(n_noise)) * w.
    const auto noise_half = static_cast<float>(std::sqrt(3.0) / l.gain);
    for (int64_t t = 0; t < s.vocab_size; ++t) {
        float* row = w.data() + t * l.hidden;
        std::fill(row, row + l.hidden, 0.0F);
        if (is_eos(s, t)) {
            row[l.n_phases] = eos_phase;
            row[l.bias_dim] = eos_bias;
            continue;
        }
        if (t >= s.n_regular_tokens) {
            row[l.bias_dim] = banned;
            continue;
        }
        const int32_t p = phase[static_cast<size_t>(t)];
        if (p > 0) {
            row[p - 1] = advance;
        }
        uint64_t state = mix(s.seed ^ 0x6c6d68ULL) ^ static_cast<uint64_t>(t) * 0x9e3779b1ULL;
        for (int64_t d = l.noise_begin; d < l.hidden; ++d) {
            state = mix(state);
            row[d] = noise_half * unit(state);
        }
    }
}

Status write_text(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::trunc | std::ios::binary);
    out << text;
    out.close();
    if (!out) {
        return fail(ErrorCode::kIo, "cannot write " + path.string());
    }
    return ok();
}

}  // namespace

RandomModelSpec demo_random_model_spec(const DemoModelSpec& s) {
    RandomModelSpec r;
    r.model_type = "qwen3";
    r.hidden_size = s.hidden_size;
    r.intermediate_size = s.intermediate_size;
    r.num_hidden_layers = s.num_hidden_layers;
    r.num_attention_heads = s.num_attention_heads;
    r.num_key_value_heads = s.num_key_value_heads;
    r.head_dim = s.head_dim;
    r.vocab_size = s.vocab_size;
    r.max_position_embeddings = s.max_position_embeddings;
    r.tie_word_embeddings = false;
    r.dtype = DType::kBF16;
    r.seed = s.seed;
    r.bos_token_id = s.bos_token_id;
    // config.json names the first EOS id (as Qwen3's does); generation_config.json lists all.
    r.eos_token_ids = {s.eos_token_ids.front()};
    r.write_generation_config = false;
    return r;
}

std::vector<int32_t> demo_token_phases(const DemoModelSpec& s) {
    std::vector<int32_t> phase(static_cast<size_t>(std::max<int64_t>(s.vocab_size, 0)), 0);
    if (s.n_phases < 1) {
        return phase;
    }
    const auto regular = std::min<int64_t>(s.n_regular_tokens, s.vocab_size);
    for (int64_t t = 0; t < regular; ++t) {
        const uint64_t h = mix(s.seed ^ (static_cast<uint64_t>(t) * 0xd1b54a32d192ed03ULL));
        const double u = static_cast<double>(h >> 11) * 0x1.0p-53;
        if (u >= s.start_phase_fraction) {
            phase[static_cast<size_t>(t)] =
                1 + static_cast<int32_t>(mix(h) % static_cast<uint64_t>(s.n_phases));
        }
    }
    for (int32_t id : s.start_token_ids) {
        if (id >= 0 && id < s.vocab_size) {
            phase[static_cast<size_t>(id)] = 0;
        }
    }
    return phase;
}

Status write_demo_model(const DemoModelSpec& spec, const std::filesystem::path& dir) {
    HELEXA_TRY_STATUS(validate(spec));
    const Layout l = layout_of(spec);
    const std::vector<int32_t> phase = demo_token_phases(spec);
    const RandomModelSpec rspec = demo_random_model_spec(spec);
    auto shaper = [&](const std::string& name, const std::vector<int64_t>& /*shape*/,
                      std::span<float> values) {
        if (name == "model.embed_tokens.weight") {
            shape_embedding(spec, l, phase, values);
        } else if (name == "lm_head.weight") {
            shape_lm_head(spec, l, phase, values);
        } else if (name == "model.norm.weight") {
            // Unit final norm: the margins above are computed for it.
            std::fill(values.begin(), values.end(), 1.0F);
        }
    };
    HELEXA_TRY_STATUS(write_random_model(rspec, dir, shaper));

    nlohmann::json config = random_model_config_json(rspec);
    config["torch_dtype"] = "bfloat16";
    config["helexa_demo_model"] = {
        {"note", "generated random weights (helexa embedded default); output is not "
                 "meaningful text"},
        {"n_phases", spec.n_phases},
        {"seed", spec.seed}};
    HELEXA_TRY_STATUS(write_text(dir / "config.json", config.dump(2) + "\n"));

    // Qwen3's own sampling defaults; the weights end a turn under any of them.
    nlohmann::json gen = {{"do_sample", true},
                          {"eos_token_id", spec.eos_token_ids},
                          {"temperature", 0.6},
                          {"top_k", 20},
                          {"top_p", 0.95},
                          {"transformers_version", "4.51.0"}};
    if (spec.bos_token_id) {
        gen["bos_token_id"] = *spec.bos_token_id;
        gen["pad_token_id"] = *spec.bos_token_id;
    }
    return write_text(dir / "generation_config.json", gen.dump(2) + "\n");
}

}  // namespace helexa::engine
