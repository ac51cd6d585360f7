#include "helexa/gateway/models_listing.h"

#include <algorithm>
#include <map>
#include <set>

namespace helexa::gateway {

bool same_model(std::string_view neuron_id, std::string_view id, const Catalogue& catalogue) {
    if (neuron_id == id) {
        return true;
    }
    const ModelProfile* profile = catalogue.find(id);
    return profile != nullptr &&
           (profile->id == neuron_id || profile->qualified_id() == neuron_id);
}

namespace {

// The catalogue id for a neuron-reported id, so "helexa:org/m" and "org/m" share one entry.
std::string canonical_id(const std::string& neuron_id, const Catalogue& catalogue) {
    const ModelProfile* profile = catalogue.find(neuron_id);
    return profile != nullptr ? profile->id : neuron_id;
}

struct Accumulator {
    ModelView view;
    std::set<std::string> feasible;
    std::map<std::string, ModelStatus> locations;
    std::set<std::string> capabilities;
};

int status_rank(ModelStatus s) {
    switch (s) {
        case ModelStatus::kLoaded:
            return 4;
        case ModelStatus::kRecovering:
            return 3;
        case ModelStatus::kLoading:
            return 2;
        case ModelStatus::kPoisoned:
        case ModelStatus::kUnloaded:
            return 1;
    }
    return 0;
}

}  // namespace

std::vector<ModelView> compose_models(const FleetSnapshot& fleet, const Catalogue& catalogue) {
    std::map<std::string, Accumulator> acc;
    auto entry = [&](const std::string& id) -> Accumulator& {
        auto& a = acc[id];
        a.view.id = id;
        return a;
    };

    // Pass 1: catalogue × topology feasibility. Cost from the catalogue; its limit is ignored.
    for (const auto& profile : catalogue.models) {
        auto& a = entry(profile.id);
        a.view.cost = profile.cost;
        for (const auto& node : fleet.nodes) {
            if (node.discovery && profile.is_feasible_on(node.name, node.discovery->devices)) {
                a.feasible.insert(node.name);
            }
        }
    }

    // Pass 2: models reported by healthy neurons.
    for (const auto& node : fleet.nodes) {
        if (!node.healthy) {
            continue;
        }
        for (const auto& m : node.models) {
            auto& a = entry(canonical_id(m.id, catalogue));
            a.locations[node.name] = m.status;
            if (m.status == ModelStatus::kLoaded || m.status == ModelStatus::kRecovering) {
                a.capabilities.insert(m.capabilities.begin(), m.capabilities.end());
                a.view.tool_call = a.view.tool_call || m.tool_call;
                a.view.reasoning = a.view.reasoning || m.reasoning;
                if (m.limit) {
                    a.view.limit = a.view.limit ? tightest_limit(*a.view.limit, *m.limit)
                                                : *m.limit;
                }
            }
        }
    }

    // Pass 3: pre-warming models stay visible as loading.
    for (const auto& node : fleet.nodes) {
        if (!node.healthy || !node.activation) {
            continue;
        }
        std::vector<std::string> warming = node.activation->pending;
        if (node.activation->in_progress) {
            warming.push_back(*node.activation->in_progress);
        }
        for (const auto& id : warming) {
            auto& a = entry(canonical_id(id, catalogue));
            a.locations.emplace(node.name, ModelStatus::kLoading);  // never downgrades
        }
    }

    std::vector<ModelView> out;
    out.reserve(acc.size() + catalogue.aliases.size());
    for (auto& [id, a] : acc) {
        ModelView& v = a.view;
        v.feasible_on.assign(a.feasible.begin(), a.feasible.end());
        v.capabilities.assign(a.capabilities.begin(), a.capabilities.end());
        int best = 0;
        v.status = ModelStatus::kUnloaded;
        for (const auto& [node, status] : a.locations) {
            v.locations.push_back({node, status});
            if (status != ModelStatus::kPoisoned && status_rank(status) > best) {
                best = status_rank(status);
                v.status = status;
            }
        }
        v.loaded = v.status == ModelStatus::kLoaded;
        out.push_back(std::move(v));
    }

    // Pass 4: each alias mirrors every field of its target.
    for (const auto& [alias, target] : catalogue.aliases) {
        const std::string& target_id = target;  // clang 14 cannot capture a structured binding
        auto it = std::find_if(out.begin(), out.end(),
                               [&](const ModelView& v) { return v.id == target_id; });
        if (it == out.end() || acc.contains(alias)) {
            continue;
        }
        ModelView mirror = *it;
        mirror.id = alias;
        mirror.alias_of = target;
        out.push_back(std::move(mirror));
    }
    std::sort(out.begin(), out.end(),
              [](const ModelView& a, const ModelView& b) { return a.id < b.id; });
    return out;
}

nlohmann::json model_view_json(const ModelView& m, int64_t created) {
    nlohmann::json j = {
        {"id", m.id},
        {"object", "model"},
        {"created", created},
        {"owned_by", "helexa"},
        {"loaded", m.loaded},
        {"feasible_on", m.feasible_on},
        {"status", to_string(m.status)},
        {"capabilities", m.capabilities},
        {"tool_call", m.tool_call},
        {"reasoning", m.reasoning},
    };
    nlohmann::json locations = nlohmann::json::array();
    for (const auto& loc : m.locations) {
        locations.push_back({{"node", loc.node}, {"status", to_string(loc.status)}});
    }
    j["locations"] = std::move(locations);
    if (m.limit) {
        nlohmann::json limit = nlohmann::json::object();
        if (m.limit->context) {
            limit["context"] = *m.limit->context;
        }
        if (m.limit->input) {
            limit["input"] = *m.limit->input;
        }
        if (m.limit->output) {
            limit["output"] = *m.limit->output;
        }
        j["limit"] = std::move(limit);
    }
    if (m.cost) {
        nlohmann::json cost = {{"input", m.cost->input}, {"output", m.cost->output}};
        if (m.cost->cache_read) {
            cost["cache_read"] = *m.cost->cache_read;
        }
        if (m.cost->cache_write) {
            cost["cache_write"] = *m.cost->cache_write;
        }
        j["cost"] = std::move(cost);
    }
    if (m.alias_of) {
        j["alias_of"] = *m.alias_of;
    }
    return j;
}

nlohmann::json models_list_json(const std::vector<ModelView>& models, int64_t created) {
    nlohmann::json data = nlohmann::json::array();
    for (const auto& m : models) {
        data.push_back(model_view_json(m, created));
    }
    return {{"object", "list"}, {"data", std::move(data)}};
}

std::optional<ModelLimit> advertised_limit(const FleetSnapshot& fleet,
                                           std::string_view model_id) {
    std::optional<ModelLimit> out;
    for (const auto& node : fleet.nodes) {
        if (!node.healthy) {
            continue;
        }
        for (const auto& m : node.models) {
            if (m.id == model_id && m.limit && m.status == ModelStatus::kLoaded) {
                out = out ? tightest_limit(*out, *m.limit) : *m.limit;
            }
        }
    }
    return out;
}

}  // namespace helexa::gateway
