// The neuron's model registry (which models are loading / loaded, with their engine handle and
// admission controller) and the activation tracker behind /health.activation.
//
// Use: the load path calls begin_loading -> finish_loading | abandon; handlers take a
// ModelHandle snapshot with find() and use it without holding any lock.
// A loaded model's status follows its engine handle (LoadedModel::health): recovering or
// poisoned after a device fault, loaded again once the engine reloaded it; a model whose reload
// failed (health kUnloaded) is dropped from the registry the next time it is looked at, so it is
// simply not loaded any more (docs/design/fault-recovery.md).
// Thread-safety: every member is thread-safe (one mutex each; never held across co_await).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "helexa/engine/serving.h"
#include "helexa/node/admission.h"
#include "helexa/wire/neuron_protocol.h"

namespace helexa::node {

struct ModelHandle {
    std::string id;  // canonical id (see canonical_model_id)
    wire::ModelSpec spec;
    wire::ModelStatus status = wire::ModelStatus::kLoading;  // as of the snapshot
    std::shared_ptr<engine::LoadedModel> model;  // null while loading
    std::shared_ptr<AdmissionController> admission;
};

class ModelRegistry {
public:
    explicit ModelRegistry(AdmissionConfig admission) : admission_(admission) {}

    // Registers `id` as loading; false when it is already present (loading or loaded).
    bool begin_loading(const std::string& id, const wire::ModelSpec& spec);
    void finish_loading(const std::string& id, std::shared_ptr<engine::LoadedModel> model);
    void abandon(const std::string& id);

    std::optional<ModelHandle> find(const std::string& id) const;
    // Removes a loaded model; nullopt when absent or still loading.
    std::optional<ModelHandle> remove_loaded(const std::string& id);
    std::vector<ModelHandle> list() const;

private:
    // Refreshes the status of loaded entries from their engine handles and drops dead ones.
    void refresh_locked() const;

    AdmissionConfig admission_;
    mutable std::mutex mutex_;
    mutable std::map<std::string, ModelHandle, std::less<>> models_;
};

// The /models status of an engine model's health.
wire::ModelStatus model_status(engine::ModelHealth health);

class ActivationTracker {
public:
    // Default models queued at start-up; state becomes pre_warming when any.
    void begin(const std::vector<std::string>& model_ids);
    void started(const std::string& model_id);
    void completed(const std::string& model_id);
    void failed(const std::string& model_id, std::string error);
    wire::Activation snapshot() const;

private:
    void update_state_locked();
    mutable std::mutex mutex_;
    wire::Activation state_;
};

}  // namespace helexa::node
