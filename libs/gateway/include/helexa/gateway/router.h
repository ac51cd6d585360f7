// Router (features §3.7, D9): decides where a request for a model goes, from one fleet snapshot
// and the catalogue. Pure: it performs no I/O; a cold load is returned as a plan that the caller
// executes (POST /models/load on the chosen neuron, then route).
// When to use: every inference handler, after parsing `model` from the body.
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "helexa/common/result.h"
#include "helexa/gateway/config.h"
#include "helexa/gateway/fleet.h"

namespace helexa::gateway {

// Alias resolution, then Anthropic names: a `claude-…` name that is not an alias resolves to
// the configured default model (itself alias-resolved). Anything else passes through.
std::string resolve_model_name(std::string_view requested, const Catalogue& catalogue,
                               const std::optional<std::string>& default_model);

struct RouteTarget {
    std::string node;
    std::string base_url;        // inference base URL, no trailing slash
    std::string upstream_model;  // the id the neuron knows the model by
};

struct ColdLoadPlan {
    std::string node;
    std::string node_endpoint;   // management base URL of that neuron
    nlohmann::json load_spec;    // body for POST /models/load
    std::string upstream_model;  // id to route with once loaded (the qualified id)
};

struct RouteDecision {
    enum class Kind { kRoute, kColdLoad };
    Kind kind = Kind::kRoute;
    std::string resolved_model;  // concrete id: metric labels, LRU touch, body rewrite
    RouteTarget target;          // kRoute
    ColdLoadPlan cold_load;      // kColdLoad
};

// The §3.7 order: loaded on a healthy node → least busy (in_flight + queue_depth, ties by node
// name); recovering → 503 model_recovering (Retry-After 2); unloaded on a healthy node → route
// there; in the catalogue → cold-load plan on a feasible healthy neuron (pinned first, then by
// name); no healthy node → 503 service_unavailable (Retry-After 5); else 404 model_not_found.
Result<RouteDecision> resolve_route(std::string_view requested, const FleetSnapshot& fleet,
                                    const Catalogue& catalogue,
                                    const std::optional<std::string>& default_model);

// `profile_to_spec`: {model_id: qualified id, harness, quant?, tensor_parallel?, devices?}.
// Multi-device profiles pick the first min_devices devices meeting the VRAM floor and set
// tensor_parallel = min_devices.
nlohmann::json profile_to_spec(const ModelProfile& profile, const std::vector<DeviceInfo>& devices);

// Rewrites the top-level "model" field of a JSON request body. Fails on a non-object body.
Result<std::string> rewrite_model_in_body(std::string_view body, std::string_view model);

}  // namespace helexa::gateway
