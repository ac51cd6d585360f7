#include "helexa/gateway/router.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "helexa/common/error_envelope.h"
#include "helexa/gateway/models_listing.h"

namespace helexa::gateway {

std::string resolve_model_name(std::string_view requested, const Catalogue& catalogue,
                               const std::optional<std::string>& default_model) {
    if (catalogue.aliases.contains(requested)) {
        return catalogue.resolve_alias(requested);
    }
    if (requested.rfind("claude-", 0) == 0 && default_model && !default_model->empty()) {
        return catalogue.resolve_alias(*default_model);
    }
    return std::string(requested);
}

nlohmann::json profile_to_spec(const ModelProfile& profile,
                               const std::vector<DeviceInfo>& devices) {
    nlohmann::json spec = {{"model_id", profile.qualified_id()}, {"harness", profile.harness}};
    if (profile.quant) {
        spec["quant"] = *profile.quant;
    }
    if (profile.min_devices > 1) {
        std::vector<int64_t> picked;
        for (const auto& d : devices) {
            if (!profile.min_device_vram_mb || d.vram_total_mb >= *profile.min_device_vram_mb) {
                picked.push_back(d.index);
            }
            if (static_cast<int64_t>(picked.size()) == profile.min_devices) {
                break;
            }
        }
        spec["tensor_parallel"] = profile.min_devices;
        spec["devices"] = picked;
    }
    return spec;
}

namespace {

std::string base_url_of(const NodeState& node, const ModelEntry& entry) {
    return entry.endpoint.empty() ? node.endpoint : entry.endpoint;
}

Error no_healthy_nodes(std::string_view model) {
    return service_unavailable_error(
        fmt::format("no healthy neuron can serve model '{}'; retry shortly", model), 5);
}

}  // namespace

Result<RouteDecision> resolve_route(std::string_view requested, const FleetSnapshot& fleet,
                                    const Catalogue& catalogue,
                                    const std::optional<std::string>& default_model) {
    RouteDecision decision;
    decision.resolved_model = resolve_model_name(requested, catalogue, default_model);
    const std::string& model = decision.resolved_model;

    // 1. Loaded on healthy nodes → least busy replica; ties by node name (nodes are sorted).
    const NodeState* best_node = nullptr;
    const ModelEntry* best_entry = nullptr;
    int64_t best_load = std::numeric_limits<int64_t>::max();
    bool recovering = false;
    bool known_on_unhealthy = false;
    const NodeState* unloaded_node = nullptr;
    const ModelEntry* unloaded_entry = nullptr;
    for (const auto& node : fleet.nodes) {
        for (const auto& m : node.models) {
            if (!same_model(m.id, model, catalogue)) {
                continue;
            }
            if (!node.healthy) {
                known_on_unhealthy = true;
                continue;
            }
            switch (m.status) {
                case ModelStatus::kLoaded: {
                    ModelLoad load = node.load_of(m.id);
                    int64_t busy = load.in_flight + load.queue_depth;
                    if (busy < best_load) {
                        best_load = busy;
                        best_node = &node;
                        best_entry = &m;
                    }
                    break;
                }
                case ModelStatus::kRecovering:
                    recovering = true;
                    break;
                case ModelStatus::kUnloaded:
                    if (unloaded_node == nullptr) {
                        unloaded_node = &node;
                        unloaded_entry = &m;
                    }
                    break;
                case ModelStatus::kLoading:   // not routable yet (known race, §3.7 step 4)
                case ModelStatus::kPoisoned:  // the neuron recovers it; never routed to
                    break;
            }
        }
    }
    if (best_node != nullptr) {
        decision.kind = RouteDecision::Kind::kRoute;
        decision.target = {best_node->name, base_url_of(*best_node, *best_entry), best_entry->id};
        return decision;
    }
    // 2. Recovering: hold the route; a catalogue cold-load would race the recovery.
    if (recovering) {
        return fail(Error(ErrorCode::kModelRecovering,
                          fmt::format("model '{}' is recovering; retry shortly", model))
                        .with_retry_after(2));
    }
    // 3. Unloaded on a healthy node → route there and let the neuron load lazily.
    if (unloaded_node != nullptr) {
        decision.kind = RouteDecision::Kind::kRoute;
        decision.target = {unloaded_node->name, base_url_of(*unloaded_node, *unloaded_entry),
                           unloaded_entry->id};
        return decision;
    }
    const bool any_healthy = std::any_of(fleet.nodes.begin(), fleet.nodes.end(),
                                         [](const NodeState& n) { return n.healthy; });
    // 4. In the catalogue → a feasible healthy neuron, pinned ones first, then by name.
    if (const ModelProfile* profile = catalogue.find(model)) {
        const NodeState* chosen = nullptr;
        for (int pass = 0; pass < 2 && chosen == nullptr; ++pass) {
            for (const auto& node : fleet.nodes) {
                if (!node.healthy || !node.discovery) {
                    continue;
                }
                if (pass == 0 && !profile->is_pinned_on(node.name)) {
                    continue;
                }
                if (profile->is_feasible_on(node.name, node.discovery->devices)) {
                    chosen = &node;
                    break;
                }
            }
        }
        if (chosen == nullptr) {
            return fail(no_healthy_nodes(model));
        }
        decision.kind = RouteDecision::Kind::kColdLoad;
        decision.cold_load = {chosen->name, chosen->endpoint,
                              profile_to_spec(*profile, chosen->discovery->devices),
                              profile->qualified_id()};
        return decision;
    }
    if (!any_healthy || known_on_unhealthy) {
        return fail(no_healthy_nodes(model));
    }
    return fail(Error(ErrorCode::kModelNotFound,
                      fmt::format("The model '{}' does not exist", model))
                    .with_param("model"));
}

Result<std::string> rewrite_model_in_body(std::string_view body, std::string_view model) {
    auto json = nlohmann::json::parse(body, nullptr, false);
    if (json.is_discarded() || !json.is_object()) {
        return fail(ErrorCode::kInvalidJson, "request body must be a JSON object");
    }
    json["model"] = model;
    return json.dump();
}

}  // namespace helexa::gateway
