#include "helexa/node/registry.h"

#include <algorithm>

namespace helexa::node {

wire::ModelStatus model_status(engine::ModelHealth health) {
    switch (health) {
        case engine::ModelHealth::kLoaded:
            return wire::ModelStatus::kLoaded;
        case engine::ModelHealth::kRecovering:
            return wire::ModelStatus::kRecovering;
        case engine::ModelHealth::kPoisoned:
            return wire::ModelStatus::kPoisoned;
        case engine::ModelHealth::kUnloaded:
            break;
    }
    return wire::ModelStatus::kUnknown;
}

void ModelRegistry::refresh_locked() const {
    for (auto it = models_.begin(); it != models_.end();) {
        ModelHandle& h = it->second;
        if (h.model && h.status != wire::ModelStatus::kLoading) {
            const engine::ModelHealth health = h.model->health();
            if (health == engine::ModelHealth::kUnloaded) {
                it = models_.erase(it);  // the engine gave up on it (failed reload)
                continue;
            }
            h.status = model_status(health);
        }
        ++it;
    }
}

bool ModelRegistry::begin_loading(const std::string& id, const wire::ModelSpec& spec) {
    std::lock_guard lock(mutex_);
    refresh_locked();
    if (models_.contains(id)) {
        return false;
    }
    ModelHandle h;
    h.id = id;
    h.spec = spec;
    h.status = wire::ModelStatus::kLoading;
    models_.emplace(id, std::move(h));
    return true;
}

void ModelRegistry::finish_loading(const std::string& id,
                                   std::shared_ptr<engine::LoadedModel> model) {
    std::lock_guard lock(mutex_);
    auto it = models_.find(id);
    if (it == models_.end()) {
        return;
    }
    it->second.model = std::move(model);
    it->second.status = wire::ModelStatus::kLoaded;
    it->second.admission = AdmissionController::make(admission_);
}

void ModelRegistry::abandon(const std::string& id) {
    std::lock_guard lock(mutex_);
    auto it = models_.find(id);
    if (it != models_.end() && it->second.status == wire::ModelStatus::kLoading) {
        models_.erase(it);
    }
}

std::optional<ModelHandle> ModelRegistry::find(const std::string& id) const {
    std::lock_guard lock(mutex_);
    refresh_locked();
    auto it = models_.find(id);
    if (it == models_.end()) {
        return std::nullopt;
    }
    return it->second;
}

std::optional<ModelHandle> ModelRegistry::remove_loaded(const std::string& id) {
    std::lock_guard lock(mutex_);
    refresh_locked();
    auto it = models_.find(id);
    if (it == models_.end() || it->second.status == wire::ModelStatus::kLoading) {
        return std::nullopt;
    }
    ModelHandle h = std::move(it->second);
    models_.erase(it);
    return h;
}

std::vector<ModelHandle> ModelRegistry::list() const {
    std::lock_guard lock(mutex_);
    refresh_locked();
    std::vector<ModelHandle> out;
    out.reserve(models_.size());
    for (const auto& [_, h] : models_) {
        out.push_back(h);
    }
    return out;
}

void ActivationTracker::begin(const std::vector<std::string>& model_ids) {
    std::lock_guard lock(mutex_);
    state_ = wire::Activation{};
    state_.pending = model_ids;
    update_state_locked();
}

void ActivationTracker::started(const std::string& model_id) {
    std::lock_guard lock(mutex_);
    auto& p = state_.pending;
    p.erase(std::remove(p.begin(), p.end(), model_id), p.end());
    state_.in_progress = model_id;
    update_state_locked();
}

void ActivationTracker::completed(const std::string& model_id) {
    std::lock_guard lock(mutex_);
    if (state_.in_progress == model_id) {
        state_.in_progress.reset();
    }
    auto& p = state_.pending;
    p.erase(std::remove(p.begin(), p.end(), model_id), p.end());
    state_.completed.push_back(model_id);
    update_state_locked();
}

void ActivationTracker::failed(const std::string& model_id, std::string error) {
    std::lock_guard lock(mutex_);
    if (state_.in_progress == model_id) {
        state_.in_progress.reset();
    }
    auto& p = state_.pending;
    p.erase(std::remove(p.begin(), p.end(), model_id), p.end());
    state_.failed.push_back({model_id, std::move(error)});
    update_state_locked();
}

wire::Activation ActivationTracker::snapshot() const {
    std::lock_guard lock(mutex_);
    return state_;
}

void ActivationTracker::update_state_locked() {
    state_.state = state_.pending.empty() && !state_.in_progress ? wire::ActivationState::kReady
                                                                 : wire::ActivationState::kPreWarming;
}

}  // namespace helexa::node
