#include "helexa/node/config.h"

#include <fmt/format.h>

namespace helexa::node {

namespace {

std::optional<std::string> env_value(const Environment& env, std::string_view name) {
    auto it = env.find(name);
    if (it == env.end() || it->second.empty()) {
        return std::nullopt;
    }
    return it->second;
}

std::string home_dir(const Environment& env) {
    return env_value(env, "HOME").value_or("/var/lib/neuron");
}

void check_positive(const ConfigReader& r, std::string_view key, int64_t value, int64_t min) {
    if (value < min) {
        throw ConfigError(fmt::format("{}: key '{}': must be >= {}, got {}", r.source(),
                                      r.full_key(key), min, value));
    }
}

wire::ModelSpec read_model_spec(const ConfigReader& r) {
    wire::ModelSpec spec;
    spec.model_id = r.require<std::string>("model_id");
    if (spec.model_id.empty()) {
        throw ConfigError(
            fmt::format("{}: key '{}': must not be empty", r.source(), r.full_key("model_id")));
    }
    spec.harness = r.get_optional<std::string>("harness");
    spec.quant = r.get_optional<std::string>("quant");
    spec.tensor_parallel = r.get_optional<int64_t>("tensor_parallel");
    if (spec.tensor_parallel) {
        check_positive(r, "tensor_parallel", *spec.tensor_parallel, 1);
    }
    spec.devices = r.get_optional<std::vector<int64_t>>("devices");
    return spec;
}

}  // namespace

std::string default_hf_cache(const std::optional<std::string>& hf_cache, const Environment& env) {
    if (hf_cache && !hf_cache->empty()) {
        return *hf_cache;
    }
    if (auto v = env_value(env, "HF_HUB_CACHE")) {
        return *v;
    }
    if (auto v = env_value(env, "HF_HOME")) {
        return *v + "/hub";
    }
    return home_dir(env) + "/.cache/huggingface/hub";
}

NeuronConfig load_neuron_config(const ConfigReader& reader, const Environment& env) {
    NeuronConfig cfg;
    auto port = reader.get<int64_t>("port", kDefaultPort);
    if (port < 0 || port > 65535) {
        throw ConfigError(fmt::format("{}: key '{}': port out of range: {}", reader.source(),
                                      reader.full_key("port"), port));
    }
    cfg.listen = ListenAddress{"0.0.0.0", static_cast<uint16_t>(port)};
    if (auto listen = reader.get_optional<ListenAddress>("listen")) {
        cfg.listen = *listen;
    }

    auto harness_tables = reader.table_array("harnesses");
    if (!harness_tables.empty()) {
        cfg.harnesses.clear();
        for (const auto& h : harness_tables) {
            cfg.harnesses.push_back(h.require<std::string>("name"));
        }
    }

    auto candle = reader.table("harness.candle");
    auto hf_cache = candle.get_optional<std::string>("hf_cache");
    cfg.default_source = candle.get<std::string>("default_source", std::string(kHuggingFaceScheme));

    auto sources = candle.table("sources");
    for (const auto& scheme : sources.keys()) {
        auto s = sources.child_table(scheme);
        SourceConfig src;
        src.scheme = scheme;
        src.endpoint = s.get<std::string>(
            "endpoint", scheme == kHuggingFaceScheme ? std::string(kHuggingFaceEndpoint) : "");
        if (src.endpoint.empty()) {
            throw ConfigError(fmt::format("{}: key '{}': required for source '{}'", reader.source(),
                                          s.full_key("endpoint"), scheme));
        }
        while (!src.endpoint.empty() && src.endpoint.back() == '/') {
            src.endpoint.pop_back();
        }
        src.auth_env = s.get_optional<std::string>("auth_env");
        if (src.auth_env) {
            src.token = env_value(env, *src.auth_env);
        }
        auto cache = s.get_optional<std::string>("cache_dir");
        if (scheme == kHuggingFaceScheme) {
            src.cache_dir = default_hf_cache(cache ? cache : hf_cache, env);
        } else {
            // Other registries never share the HF cache: the same org/name may hold other bytes.
            src.cache_dir = cache.value_or(home_dir(env) + "/.cache/helexa/" + scheme + "/hub");
        }
        cfg.sources[scheme] = std::move(src);
    }
    if (!cfg.sources.contains(kHuggingFaceScheme)) {
        SourceConfig hf;
        hf.scheme = kHuggingFaceScheme;
        hf.endpoint = kHuggingFaceEndpoint;
        hf.cache_dir = default_hf_cache(hf_cache, env);
        cfg.sources[std::string(kHuggingFaceScheme)] = std::move(hf);
    }
    if (!cfg.sources.contains(cfg.default_source)) {
        std::string known;
        for (const auto& [name, _] : cfg.sources) {
            known += (known.empty() ? "" : ", ") + name;
        }
        throw ConfigError(fmt::format("{}: key '{}': unknown source '{}' (configured: {})",
                                      reader.source(), candle.full_key("default_source"),
                                      cfg.default_source, known));
    }

    auto adm = candle.table("admission");
    const AdmissionConfig defaults;
    cfg.admission.max_in_flight = adm.get<int64_t>("max_in_flight", defaults.max_in_flight);
    cfg.admission.max_queue_depth = adm.get<int64_t>("max_queue_depth", defaults.max_queue_depth);
    cfg.admission.max_wait_secs = adm.get<int64_t>("max_wait_secs", defaults.max_wait_secs);
    cfg.admission.max_per_principal =
        adm.get<int64_t>("max_per_principal", defaults.max_per_principal);
    check_positive(adm, "max_in_flight", cfg.admission.max_in_flight, 1);
    check_positive(adm, "max_queue_depth", cfg.admission.max_queue_depth, 0);
    check_positive(adm, "max_wait_secs", cfg.admission.max_wait_secs, 0);
    check_positive(adm, "max_per_principal", cfg.admission.max_per_principal, 0);

    auto pc = candle.table("prefix_cache");
    cfg.prefix_cache.enabled = pc.get<bool>("enabled", true);
    cfg.prefix_cache.budget_mb = pc.get_optional<int64_t>("budget_mb");
    cfg.prefix_cache.max_entries = pc.get_optional<int64_t>("max_entries");

    auto cl = candle.table("context_limit");
    cfg.context_limit.target_prefill_latency_secs =
        cl.get_optional<double>("target_prefill_latency_secs");
    cfg.context_limit.bootstrap_prefill_tok_per_sec =
        cl.get_optional<double>("bootstrap_prefill_tok_per_sec");
    cfg.context_limit.activation_headroom_mb = cl.get_optional<int64_t>("activation_headroom_mb");
    cfg.context_limit.min_free_floor_mb = cl.get_optional<int64_t>("min_free_floor_mb");
    cfg.context_limit.output_reserve_tokens = cl.get_optional<int64_t>("output_reserve_tokens");

    auto& k = cfg.knobs;
    k.prefill_chunk_tokens = reader.get<int64_t>("prefill_chunk_tokens", 512);
    check_positive(reader, "prefill_chunk_tokens", k.prefill_chunk_tokens, 1);
    k.max_prompt_tokens = reader.get_optional<int64_t>("max_prompt_tokens");
    if (k.max_prompt_tokens) {
        check_positive(reader, "max_prompt_tokens", *k.max_prompt_tokens, 1);
    }
    k.min_free_vram_mb = reader.get<int64_t>("min_free_vram_mb", 1500);
    check_positive(reader, "min_free_vram_mb", k.min_free_vram_mb, 0);
    k.use_chat_template = reader.get<bool>("use_chat_template", true);
    k.mrope = reader.get<bool>("mrope", true);
    k.gdn_chunked = reader.get<bool>("gdn_chunked", true);
    k.tp_step_timeout_s = reader.get<int64_t>("tp_step_timeout_s", 120);
    k.debug_poison = reader.get_optional<std::string>("debug_poison");
    k.debug_device_lost = reader.get<bool>("debug_device_lost", false);
    k.overlap_decode = reader.get<bool>("overlap_decode", true);

    for (const auto& m : reader.table_array("default_models")) {
        cfg.default_models.push_back(read_model_spec(m));
    }
    cfg.unload_timeout_secs = reader.get<int64_t>("unload_timeout_secs", 20);
    cfg.drain_timeout_secs = reader.get<int64_t>("drain_timeout_secs", 30);
    cfg.io_threads = reader.get<int64_t>("io_threads", 2);
    check_positive(reader, "io_threads", cfg.io_threads, 1);
    cfg.sampling_threads = reader.get<int64_t>("sampling_threads", 0);
    check_positive(reader, "sampling_threads", cfg.sampling_threads, 0);
    if (cfg.sampling_threads > kMaxSamplingThreads) {
        throw ConfigError(fmt::format("{}: key '{}': must be <= {}, got {}", reader.source(),
                                      reader.full_key("sampling_threads"), kMaxSamplingThreads,
                                      cfg.sampling_threads));
    }
    cfg.nvml_library = reader.get<std::string>("nvml_library", "libnvidia-ml.so.1");
    return cfg;
}

}  // namespace helexa::node
