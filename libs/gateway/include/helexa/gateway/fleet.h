// Fleet state: what cortex knows about every configured neuron (discovery, models, health,
// activation, per-model load), published as immutable snapshots.
// When to use: the poller (and the cold-load path, to record a model it just loaded) write through
// FleetState::update; the router, /v1/models and the status CLI read FleetState::snapshot().
// Thread-safety: FleetState is safe from any thread. Writers are serialized by a mutex and publish
// a fresh `shared_ptr<const FleetSnapshot>`; readers take the pointer atomically and never lock
// or mutate, so a reader sees one consistent fleet for as long as it holds the pointer.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "helexa/gateway/config.h"

namespace helexa::gateway {

// D2: neuron reports loading | loaded | poisoned | recovering; `unloaded` exists only in cortex's
// catalogue view.
enum class ModelStatus { kLoaded, kUnloaded, kLoading, kRecovering, kPoisoned };

std::string_view to_string(ModelStatus status);
// An empty status (old neurons omit it) parses as kLoaded; unknown values as kUnloaded, which is
// never routed to as if loaded.
ModelStatus parse_model_status(std::string_view text);

struct ModelLimit {
    std::optional<int64_t> context;
    std::optional<int64_t> input;
    std::optional<int64_t> output;

    bool operator==(const ModelLimit&) const = default;
};

// The tightest of two limits, field by field (a missing field never loosens a present one).
ModelLimit tightest_limit(const ModelLimit& a, const ModelLimit& b);

struct ModelEntry {
    std::string id;
    ModelStatus status = ModelStatus::kLoaded;
    std::vector<std::string> capabilities;  // e.g. ["text"] or ["text","vision"]
    bool tool_call = false;
    bool reasoning = false;
    std::optional<ModelLimit> limit;
    // Inference base URL from GET /models/{id}/endpoint, loopback-rewritten; empty = use the
    // node's configured endpoint.
    std::string endpoint;
};

struct Activation {
    std::string state;  // "pre_warming" | "ready"
    std::vector<std::string> pending;
    std::optional<std::string> in_progress;
    std::vector<std::string> completed;
    std::vector<std::string> failed;  // model ids
};

struct ModelLoad {
    int64_t in_flight = 0;
    int64_t queue_depth = 0;
};

struct Discovery {
    std::string hostname;
    std::vector<DeviceInfo> devices;
    int64_t max_prompt_tokens = 0;  // 0 = unknown (D1)
    std::optional<std::string> cuda_unavailable_reason;
};

// D10: healthy on the first successful poll, unhealthy after this many consecutive failures.
inline constexpr int kUnhealthyAfterFailures = 2;

struct NodeState {
    std::string name;
    std::string endpoint;  // configured base URL, no trailing slash
    bool healthy = false;  // never routed to until a poll succeeds
    int consecutive_failures = 0;
    std::optional<Discovery> discovery;  // fetched once, cached (re-fetched while unknown cap)
    std::vector<ModelEntry> models;
    std::optional<Activation> activation;
    std::map<std::string, ModelLoad, std::less<>> load;  // from /health models[]
    std::optional<int64_t> vram_free_mb;   // sum over devices from /health, when reported
    std::optional<int64_t> vram_total_mb;
    int64_t lifecycle_cycles = 0;  // loads + unloads cortex caused since start
    std::optional<std::chrono::system_clock::time_point> last_poll;

    const ModelEntry* find_model(std::string_view id) const;
    ModelLoad load_of(std::string_view id) const;
    // Records one poll outcome under the D10 rules.
    void record_poll(bool success);
};

struct FleetSnapshot {
    std::vector<NodeState> nodes;  // sorted by name

    const NodeState* find(std::string_view name) const;
    NodeState* find_mut(std::string_view name);
};

class FleetState {
public:
    // Seeds one unhealthy, never-polled node per configured neuron.
    explicit FleetState(const std::vector<NeuronConfig>& neurons);

    std::shared_ptr<const FleetSnapshot> snapshot() const;

    // Copy-on-write update: `mutate` edits a private copy, which is then published. Writers are
    // serialized; `mutate` must not block (it runs under the writer lock, not under any reader).
    void update(const std::function<void(FleetSnapshot&)>& mutate);

private:
    mutable std::mutex writer_mutex_;
    std::shared_ptr<const FleetSnapshot> current_;  // accessed with std::atomic_load/store
};

// Loopback rewrite (§3.7): when `url`'s host is localhost / 127.0.0.1 / 0.0.0.0 / ::1, replace it
// with the host of `configured_endpoint`, keeping the scheme, port and path of `url`; strip the
// trailing slash. A non-loopback URL passes through (trailing slash stripped). Malformed input
// yields nullopt.
std::optional<std::string> rewrite_loopback_endpoint(std::string_view url,
                                                     std::string_view configured_endpoint);

// Per-(node, model) last-use times for LRU eviction. Touched on every routed request.
// Thread-safety: internally locked; cheap.
class LruTracker {
public:
    void touch(std::string_view node, std::string_view model,
               std::chrono::steady_clock::time_point when = std::chrono::steady_clock::now());
    std::optional<std::chrono::steady_clock::time_point> last_used(std::string_view node,
                                                                   std::string_view model) const;
    void forget(std::string_view node, std::string_view model);

private:
    mutable std::mutex mutex_;
    std::map<std::pair<std::string, std::string>, std::chrono::steady_clock::time_point> last_;
};

}  // namespace helexa::gateway
