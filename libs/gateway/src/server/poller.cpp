// The fleet poller: per neuron, /discovery (cached; re-fetched while the prompt cap is unknown),
// /models and /health every interval, and /models/{id}/endpoint once per newly seen model.
// Publishes through FleetState::update; health follows D10.
#include <chrono>
#include <set>

#include <boost/asio/this_coro.hpp>
#include <fmt/format.h>

#include "helexa/net/deadline.h"
#include "helexa/wire/neuron_protocol.h"
#include "internal.h"

namespace helexa::gateway::detail {
namespace {

ModelStatus from_wire(wire::ModelStatus status) {
    switch (status) {
        case wire::ModelStatus::kLoading:
            return ModelStatus::kLoading;
        case wire::ModelStatus::kLoaded:
            return ModelStatus::kLoaded;
        case wire::ModelStatus::kPoisoned:
            return ModelStatus::kPoisoned;
        case wire::ModelStatus::kRecovering:
            return ModelStatus::kRecovering;
        case wire::ModelStatus::kUnknown:
            return ModelStatus::kUnloaded;
    }
    return ModelStatus::kUnloaded;
}

Discovery from_wire(const wire::DiscoveryResponse& d) {
    Discovery out;
    out.hostname = d.hostname;
    out.max_prompt_tokens = d.max_prompt_tokens;
    out.cuda_unavailable_reason = d.cuda_unavailable_reason;
    for (const auto& dev : d.devices) {
        out.devices.push_back(DeviceInfo{dev.index, dev.name, dev.total_vram_mb});
    }
    return out;
}

// {"endpoint": url} | {"url": url} | "url" | url as plain text.
std::optional<std::string> endpoint_from_body(const net::ClientResponse& res) {
    auto json = nlohmann::json::parse(res.body, nullptr, false);
    if (!json.is_discarded()) {
        if (json.is_string()) {
            return json.get<std::string>();
        }
        if (json.is_object()) {
            for (const char* key : {"endpoint", "url", "inference_url"}) {
                if (auto it = json.find(key); it != json.end() && it->is_string()) {
                    return it->get<std::string>();
                }
            }
        }
        return std::nullopt;
    }
    std::string text = res.body;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
        text.pop_back();
    }
    return text.empty() ? std::nullopt : std::optional<std::string>(text);
}

struct PollResult {
    bool ok = false;
    std::string failure;
    std::optional<Discovery> discovery;
    std::vector<wire::ModelInfo> models;
    std::optional<wire::HealthResponse> health;
    std::map<std::string, std::string> endpoints;  // newly fetched, by model id
};

asio::awaitable<Result<nlohmann::json>> get_json(net::Client& client, const std::string& url) {
    auto res = co_await client.get(url);
    if (!res) {
        co_return tl::unexpected(std::move(res).error());
    }
    if (res->status != 200) {
        co_return fail(ErrorCode::kUpstream, fmt::format("{} returned {}", url, res->status));
    }
    co_return res->json();
}

}  // namespace

asio::awaitable<void> poll_node(GatewayState& state, std::string node_name) {
    auto before = state.fleet->snapshot();
    const NodeState* node = before->find(node_name);
    if (node == nullptr) {
        co_return;
    }
    const std::string endpoint = node->endpoint;
    PollResult result;
    if (!node->discovery || node->discovery->max_prompt_tokens == 0) {
        auto disc = co_await get_json(state.client, endpoint + "/discovery");
        if (disc) {
            if (auto parsed = wire::parse_discovery(*disc)) {
                result.discovery = from_wire(*parsed);
            }
        }
    }
    auto models = co_await get_json(state.client, endpoint + "/models");
    auto health = co_await get_json(state.client, endpoint + "/health");
    if (!models) {
        result.failure = models.error().full_message();
    } else if (auto list = wire::parse_model_list(*models); !list) {
        result.failure = list.error().full_message();
    } else {
        result.models = std::move(*list);
    }
    if (result.failure.empty()) {
        if (!health) {
            result.failure = health.error().full_message();
        } else if (auto h = wire::parse_health(*health); !h) {
            result.failure = h.error().full_message();
        } else {
            result.health = std::move(*h);
            result.ok = true;
        }
    }
    if (result.ok) {
        // Inference endpoints for models not seen before (neuron hard-codes localhost).
        for (const auto& m : result.models) {
            const ModelEntry* known = node->find_model(m.id);
            if (known != nullptr && !known->endpoint.empty()) {
                continue;
            }
            auto res = co_await state.client.get(endpoint + "/models/" + m.id + "/endpoint");
            if (res && res->status == 200) {
                if (auto url = endpoint_from_body(*res)) {
                    if (auto rewritten = rewrite_loopback_endpoint(*url, endpoint)) {
                        result.endpoints[m.id] = *rewritten;
                    }
                }
            }
        }
    }

    bool became_unhealthy = false;
    bool became_healthy = false;
    state.fleet->update([&](FleetSnapshot& fleet) {
        NodeState* n = fleet.find_mut(node_name);
        if (n == nullptr) {
            return;
        }
        const bool was_healthy = n->healthy;
        n->record_poll(result.ok);
        n->last_poll = std::chrono::system_clock::now();
        became_unhealthy = was_healthy && !n->healthy;
        became_healthy = !was_healthy && n->healthy;
        if (result.discovery) {
            n->discovery = result.discovery;
        }
        if (!result.ok) {
            return;
        }
        std::vector<ModelEntry> entries;
        for (const auto& m : result.models) {
            ModelEntry e;
            e.id = m.id;
            e.status = from_wire(m.status);
            e.capabilities = m.capabilities;
            e.tool_call = m.tool_call;
            e.reasoning = m.reasoning;
            if (m.limit) {
                ModelLimit limit;
                if (m.limit->context > 0) {
                    limit.context = m.limit->context;
                }
                limit.input = m.limit->input;
                if (m.limit->output > 0) {
                    limit.output = m.limit->output;
                }
                e.limit = limit;
            }
            if (auto it = result.endpoints.find(m.id); it != result.endpoints.end()) {
                e.endpoint = it->second;
            } else if (const ModelEntry* old = n->find_model(m.id)) {
                e.endpoint = old->endpoint;
            }
            entries.push_back(std::move(e));
        }
        n->models = std::move(entries);
        const auto& h = *result.health;
        Activation act;
        act.state = std::string(wire::to_string(h.activation.state));
        act.pending = h.activation.pending;
        act.in_progress = h.activation.in_progress;
        act.completed = h.activation.completed;
        for (const auto& f : h.activation.failed) {
            act.failed.push_back(f.model_id);
        }
        n->activation = std::move(act);
        n->load.clear();
        for (const auto& l : h.models) {
            n->load[l.id] = ModelLoad{l.in_flight, l.queue_depth};
        }
        if (!h.devices.empty()) {
            int64_t free_mb = 0;
            int64_t total_mb = 0;
            for (const auto& d : h.devices) {
                free_mb += d.vram_free_mb;
                total_mb += d.vram_total_mb;
            }
            n->vram_free_mb = free_mb;
            n->vram_total_mb = total_mb;
        } else {
            n->vram_free_mb.reset();
            n->vram_total_mb.reset();
        }
    });
    state.metrics.node_healthy.with({node_name}).set(
        state.fleet->snapshot()->find(node_name)->healthy ? 1.0 : 0.0);
    if (became_unhealthy) {
        state.log->warn("node {} unhealthy after {} failed polls: {}", node_name,
                        kUnhealthyAfterFailures, result.failure);
    } else if (became_healthy) {
        state.log->warn("node {} healthy ({} models)", node_name, result.models.size());
    } else if (!result.ok) {
        state.log->debug("poll of node {} failed: {}", node_name, result.failure);
    }
}

asio::awaitable<void> poll_all(GatewayState& state) {
    auto snap = state.fleet->snapshot();
    for (const auto& node : snap->nodes) {
        co_await poll_node(state, node.name);
    }
}

asio::awaitable<void> poll_loop(GatewayState& state, std::string node_name) {
    const auto interval = std::chrono::seconds(state.config.gateway.poll_interval_secs);
    for (;;) {
        co_await net::sleep_for(interval);
        co_await poll_node(state, node_name);
    }
}

}  // namespace helexa::gateway::detail
