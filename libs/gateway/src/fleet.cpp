#include "helexa/gateway/fleet.h"

#include <algorithm>
#include <atomic>

#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

namespace helexa::gateway {

std::string_view to_string(ModelStatus status) {
    switch (status) {
        case ModelStatus::kLoaded:
            return "loaded";
        case ModelStatus::kUnloaded:
            return "unloaded";
        case ModelStatus::kLoading:
            return "loading";
        case ModelStatus::kRecovering:
            return "recovering";
        case ModelStatus::kPoisoned:
            return "poisoned";
    }
    return "unloaded";
}

ModelStatus parse_model_status(std::string_view text) {
    if (text.empty() || text == "loaded") {
        return ModelStatus::kLoaded;
    }
    if (text == "loading") {
        return ModelStatus::kLoading;
    }
    if (text == "recovering") {
        return ModelStatus::kRecovering;
    }
    if (text == "poisoned") {
        return ModelStatus::kPoisoned;
    }
    return ModelStatus::kUnloaded;
}

namespace {
std::optional<int64_t> min_opt(std::optional<int64_t> a, std::optional<int64_t> b) {
    if (a && b) {
        return std::min(*a, *b);
    }
    return a ? a : b;
}
}  // namespace

ModelLimit tightest_limit(const ModelLimit& a, const ModelLimit& b) {
    return ModelLimit{min_opt(a.context, b.context), min_opt(a.input, b.input),
                      min_opt(a.output, b.output)};
}

const ModelEntry* NodeState::find_model(std::string_view id) const {
    for (const auto& m : models) {
        if (m.id == id) {
            return &m;
        }
    }
    return nullptr;
}

ModelLoad NodeState::load_of(std::string_view id) const {
    auto it = load.find(id);
    return it == load.end() ? ModelLoad{} : it->second;
}

void NodeState::record_poll(bool success) {
    if (success) {
        consecutive_failures = 0;
        healthy = true;
        return;
    }
    ++consecutive_failures;
    if (consecutive_failures >= kUnhealthyAfterFailures) {
        healthy = false;
    }
}

const NodeState* FleetSnapshot::find(std::string_view name) const {
    for (const auto& n : nodes) {
        if (n.name == name) {
            return &n;
        }
    }
    return nullptr;
}

NodeState* FleetSnapshot::find_mut(std::string_view name) {
    for (auto& n : nodes) {
        if (n.name == name) {
            return &n;
        }
    }
    return nullptr;
}

FleetState::FleetState(const std::vector<NeuronConfig>& neurons) {
    auto snap = std::make_shared<FleetSnapshot>();
    for (const auto& n : neurons) {
        NodeState node;
        node.name = n.name;
        node.endpoint = n.endpoint;
        snap->nodes.push_back(std::move(node));
    }
    std::sort(snap->nodes.begin(), snap->nodes.end(),
              [](const NodeState& a, const NodeState& b) { return a.name < b.name; });
    current_ = std::move(snap);
}

std::shared_ptr<const FleetSnapshot> FleetState::snapshot() const {
    return std::atomic_load(&current_);
}

void FleetState::update(const std::function<void(FleetSnapshot&)>& mutate) {
    std::lock_guard lock(writer_mutex_);
    auto next = std::make_shared<FleetSnapshot>(*std::atomic_load(&current_));
    mutate(*next);
    std::sort(next->nodes.begin(), next->nodes.end(),
              [](const NodeState& a, const NodeState& b) { return a.name < b.name; });
    std::atomic_store(&current_, std::shared_ptr<const FleetSnapshot>(std::move(next)));
}

namespace {
bool is_loopback_host(std::string_view host) {
    return host == "localhost" || host == "127.0.0.1" || host == "0.0.0.0" || host == "::1" ||
           host == "[::1]";
}

std::string strip_slash(std::string s) {
    while (!s.empty() && s.back() == '/') {
        s.pop_back();
    }
    return s;
}
}  // namespace

std::optional<std::string> rewrite_loopback_endpoint(std::string_view url,
                                                     std::string_view configured_endpoint) {
    auto parsed = boost::urls::parse_absolute_uri(url);
    if (!parsed || !parsed->has_authority() || parsed->encoded_host().empty()) {
        return std::nullopt;
    }
    boost::urls::url out(*parsed);
    if (is_loopback_host(std::string_view(parsed->encoded_host_address()))) {
        auto configured = boost::urls::parse_absolute_uri(configured_endpoint);
        if (!configured || configured->encoded_host().empty()) {
            return std::nullopt;
        }
        out.set_encoded_host(configured->encoded_host());
    }
    return strip_slash(std::string(out.buffer()));
}

void LruTracker::touch(std::string_view node, std::string_view model,
                       std::chrono::steady_clock::time_point when) {
    std::lock_guard lock(mutex_);
    last_[{std::string(node), std::string(model)}] = when;
}

std::optional<std::chrono::steady_clock::time_point> LruTracker::last_used(
    std::string_view node, std::string_view model) const {
    std::lock_guard lock(mutex_);
    auto it = last_.find({std::string(node), std::string(model)});
    if (it == last_.end()) {
        return std::nullopt;
    }
    return it->second;
}

void LruTracker::forget(std::string_view node, std::string_view model) {
    std::lock_guard lock(mutex_);
    last_.erase({std::string(node), std::string(model)});
}

}  // namespace helexa::gateway
