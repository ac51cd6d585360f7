// cortex configuration: `cortex.toml` (gateway, eviction, fleet, entitlements) and `models.toml`
// (the model catalogue and aliases), compatible with the Rust original's files.
// When to use: once at start-up (main) and in tests; the resulting structs are plain values that
// the rest of the gateway reads. Environment overrides use the `CORTEX_` prefix with `__` between
// nested keys (`CORTEX_GATEWAY__LISTEN=0.0.0.0:8080`), applied to scalar keys only.
// Thread-safety: plain values; parse functions are pure and reentrant.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "helexa/common/result.h"

namespace helexa::gateway {

enum class EvictionStrategy { kLru, kPriority };

std::string_view to_string(EvictionStrategy strategy);

struct GatewaySection {
    std::string listen = "0.0.0.0:31313";
    std::string metrics_listen = "0.0.0.0:31314";
    int64_t poll_interval_secs = 5;
    // Holds the spend ledger (ledger.sqlite3); systemd's StateDirectory=cortex.
    std::string state_dir = "/var/lib/cortex";
    // Concrete model (or alias) that Anthropic model names (`claude-…`) resolve to when no alias
    // of that exact name exists. Unset: claude-* names are routed like any other name.
    std::optional<std::string> default_model;
    // helexa extensions (not in the original): bounds on a cold load and on request bodies.
    int64_t cold_load_timeout_secs = 600;
    int64_t max_request_body_bytes = 32 * 1024 * 1024;
};

struct EvictionSection {
    EvictionStrategy strategy = EvictionStrategy::kLru;
    int64_t defrag_after_cycles = 50;
};

struct NeuronConfig {
    std::string name;
    std::string endpoint;  // e.g. http://beast.internal:13131 (trailing slash removed)
};

// D5: `window = { kind = "balance" }` (default) or `window = { kind = "rolling", seconds = N }`.
struct CapWindow {
    enum class Kind { kBalance, kRolling };
    Kind kind = Kind::kBalance;
    int64_t seconds = 0;  // rolling only, > 0

    bool operator==(const CapWindow&) const = default;
};

struct KeyConfig {
    std::string key;
    std::string account_id;
    std::string key_id;               // defaults to a stable digest of the key (never the key)
    std::optional<int64_t> hard_cap;  // tokens (prompt + completion); unset = uncapped, metered
    CapWindow window;
};

struct EntitlementsConfig {
    bool require_auth = false;
    std::vector<KeyConfig> keys;
};

struct CortexConfig {
    GatewaySection gateway;
    EvictionSection eviction;
    std::vector<NeuronConfig> neurons;  // `[[neurons]]`, `[[nodes]]` accepted as the same
    std::string models_config = "/etc/cortex/models.toml";
    EntitlementsConfig entitlements;
    std::vector<std::string> warnings;  // unknown keys and similar, for main to log
};

struct ModelCost {
    double input = 0.0;   // USD per 1M tokens
    double output = 0.0;
    std::optional<double> cache_read;
    std::optional<double> cache_write;
};

// A device as the catalogue's feasibility check sees it (from a neuron's /discovery).
struct DeviceInfo {
    int64_t index = 0;
    std::string name;
    int64_t vram_total_mb = 0;
};

struct ModelProfile {
    std::string id;
    std::string harness = "candle";
    std::optional<std::string> quant;
    std::optional<int64_t> vram_mb;
    int64_t min_devices = 1;  // 0 allows CPU-only neurons
    std::optional<int64_t> min_device_vram_mb;
    std::vector<std::string> pinned_on;  // feasible only there, and never evicted there
    std::optional<std::string> source;   // scheme prefix for load requests, e.g. "helexa"
    std::optional<ModelCost> cost;
    // Catalogue order: earlier entries rank higher under the priority eviction strategy.
    int64_t position = 0;

    // pinned_on non-empty → the neuron must be listed; at least min_devices devices, each of at
    // least min_device_vram_mb when set.
    bool is_feasible_on(std::string_view neuron, const std::vector<DeviceInfo>& devices) const;
    bool is_pinned_on(std::string_view neuron) const;
    // "source:id" when source is set and non-empty, else id.
    std::string qualified_id() const;
};

struct Catalogue {
    std::vector<ModelProfile> models;
    std::map<std::string, std::string, std::less<>> aliases;  // flat: aliases never chain

    // By id or qualified id.
    const ModelProfile* find(std::string_view id) const;
    // The alias target, or `id` itself when it is not an alias.
    std::string resolve_alias(std::string_view id) const;
};

// Parses cortex.toml text. `origin` names the file in error messages. Env overrides are read
// from `env` (name → value), normally the process environment via environment_overrides().
Result<CortexConfig> parse_cortex_config(std::string_view toml_text, std::string_view origin,
                                         const std::map<std::string, std::string>& env = {});
// Reads and parses a cortex.toml file; a missing file is an error naming the path.
Result<CortexConfig> load_cortex_config(const std::string& path);

// Parses models.toml text.
Result<Catalogue> parse_catalogue(std::string_view toml_text, std::string_view origin);
// Reads models.toml; a missing file yields an empty catalogue (with `missing` set when given),
// an unparsable one is an error (never a silent empty catalogue).
Result<Catalogue> load_catalogue(const std::string& path, bool* missing = nullptr);

// CORTEX_* variables of the current process.
std::map<std::string, std::string> environment_overrides();

// Stable, non-reversible id for a key without key_id ("k-" + 16 hex digits of FNV-1a 64).
std::string derive_key_id(std::string_view key);

}  // namespace helexa::gateway
