// `GET /v1/models` composition (features §3.9): the union of the catalogue (filtered by
// feasibility against each neuron's discovered devices) and whatever is loaded or loading
// anywhere, plus one mirrored entry per alias.
// When to use: the /v1/models handler, `cortex models`, and anything that needs the advertised
// limit of a model (context pre-validation, reservation estimates).
// Thread-safety: pure functions over an immutable snapshot.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "helexa/gateway/config.h"
#include "helexa/gateway/fleet.h"

namespace helexa::gateway {

struct ModelLocation {
    std::string node;
    ModelStatus status = ModelStatus::kLoaded;
};

struct ModelView {
    std::string id;
    bool loaded = false;
    std::vector<std::string> feasible_on;  // neuron names, sorted
    std::vector<ModelLocation> locations;  // sorted by node
    ModelStatus status = ModelStatus::kUnloaded;  // loaded | recovering | loading | unloaded
    std::vector<std::string> capabilities;        // union, sorted
    std::optional<ModelLimit> limit;              // tightest across serving neurons
    std::optional<ModelCost> cost;                // from the catalogue
    bool tool_call = false;                       // OR across neurons
    bool reasoning = false;
    std::optional<std::string> alias_of;  // set on alias entries
};

// The four passes: catalogue × feasibility, loaded models (healthy nodes), activation
// (in_progress / pending → loading), aliases mirroring their targets. Sorted by id.
std::vector<ModelView> compose_models(const FleetSnapshot& fleet, const Catalogue& catalogue);

// {"object":"list","data":[{id, object:"model", created, owned_by, loaded, feasible_on,
// locations:[{node,status}], status, capabilities, tool_call, reasoning, limit?, cost?}]}
nlohmann::json models_list_json(const std::vector<ModelView>& models, int64_t created);
nlohmann::json model_view_json(const ModelView& model, int64_t created);

// The tightest limit advertised by healthy neurons serving `model_id` (concrete id).
std::optional<ModelLimit> advertised_limit(const FleetSnapshot& fleet, std::string_view model_id);

// Whether two model ids name the same model (equal, or one is the other with a `source:` prefix
// that the catalogue declares).
bool same_model(std::string_view neuron_id, std::string_view id, const Catalogue& catalogue);

}  // namespace helexa::gateway
