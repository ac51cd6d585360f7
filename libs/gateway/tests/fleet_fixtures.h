// Builders for fleet snapshots used by the router / listing / evictor tests.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "helexa/gateway/fleet.h"

namespace helexa::gateway::testing {

inline NodeState node(std::string name, std::vector<DeviceInfo> devices = {},
                      bool healthy = true) {
    NodeState n;
    n.name = name;
    n.endpoint = "http://" + name + ".internal:13131";
    n.healthy = healthy;
    Discovery d;
    d.hostname = name;
    d.devices = std::move(devices);
    n.discovery = d;
    return n;
}

inline ModelEntry model(std::string id, ModelStatus status = ModelStatus::kLoaded) {
    ModelEntry m;
    m.id = std::move(id);
    m.status = status;
    m.capabilities = {"text"};
    return m;
}

inline DeviceInfo gpu(int64_t index, int64_t vram_mb) {
    return DeviceInfo{index, "GPU", vram_mb};
}

inline FleetSnapshot fleet(std::vector<NodeState> nodes) {
    FleetSnapshot f;
    f.nodes = std::move(nodes);
    std::sort(f.nodes.begin(), f.nodes.end(),
              [](const NodeState& a, const NodeState& b) { return a.name < b.name; });
    return f;
}

}  // namespace helexa::gateway::testing
