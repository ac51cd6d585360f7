// Evictor decision (features §3.12): before a cold load on a node whose VRAM is tight, choose
// which loaded models to unload there. Never a model pinned to that node, never the incoming
// model, only models with status loaded.
// Strategies: `lru` — least recently used first (never-used before used; ties by id).
// `priority` — models absent from the catalogue first, then catalogue models from the end of
// models.toml towards the start (earlier entries are more important); LRU breaks ties.
// When to use: the cold-load path, just before POST /models/load. Pure; the caller performs
// POST /models/unload for each victim.
// Thread-safety: pure function (reads the LruTracker under its own lock).
#pragma once

#include <string>
#include <vector>

#include "helexa/gateway/config.h"
#include "helexa/gateway/fleet.h"

namespace helexa::gateway {

// VRAM is tight when the incoming model's vram_mb and the node's free VRAM are both known and
// free < vram_mb. Unknown sizes never trigger eviction (the neuron stays the judge).
bool vram_is_tight(const NodeState& node, const ModelProfile& incoming);

// The models to unload, in order. When tight, victims are added until the estimated free VRAM
// (free + each victim's catalogue vram_mb) covers the incoming model; a victim with no known
// size ends the list after itself. Empty when not tight or nothing is evictable.
std::vector<std::string> plan_evictions(const NodeState& node, const ModelProfile& incoming,
                                        const Catalogue& catalogue, const LruTracker& lru,
                                        EvictionStrategy strategy);

}  // namespace helexa::gateway
