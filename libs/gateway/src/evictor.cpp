#include "helexa/gateway/evictor.h"

#include <algorithm>
#include <limits>
#include <tuple>

#include "helexa/gateway/models_listing.h"

namespace helexa::gateway {

bool vram_is_tight(const NodeState& node, const ModelProfile& incoming) {
    return incoming.vram_mb && node.vram_free_mb && *node.vram_free_mb < *incoming.vram_mb;
}

std::vector<std::string> plan_evictions(const NodeState& node, const ModelProfile& incoming,
                                        const Catalogue& catalogue, const LruTracker& lru,
                                        EvictionStrategy strategy) {
    std::vector<std::string> victims;
    if (!vram_is_tight(node, incoming)) {
        return victims;
    }
    struct Candidate {
        std::string id;
        int64_t priority_rank;  // lower = evicted earlier
        int64_t last_used;      // steady ticks; never used = min
        std::optional<int64_t> vram_mb;
    };
    std::vector<Candidate> candidates;
    for (const auto& m : node.models) {
        if (m.status != ModelStatus::kLoaded || same_model(m.id, incoming.id, catalogue)) {
            continue;
        }
        const ModelProfile* profile = catalogue.find(m.id);
        if (profile != nullptr && profile->is_pinned_on(node.name)) {
            continue;
        }
        auto used = lru.last_used(node.name, m.id);
        int64_t ticks = used ? used->time_since_epoch().count()
                             : std::numeric_limits<int64_t>::min();
        int64_t rank = 0;
        if (strategy == EvictionStrategy::kPriority) {
            // Not in the catalogue → rank min; later catalogue entries → lower rank.
            rank = profile == nullptr ? std::numeric_limits<int64_t>::min() : -profile->position;
        }
        candidates.push_back(
            {m.id, rank, ticks, profile != nullptr ? profile->vram_mb : std::nullopt});
    }
    std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
        return std::tie(a.priority_rank, a.last_used, a.id) <
               std::tie(b.priority_rank, b.last_used, b.id);
    });
    int64_t free_mb = *node.vram_free_mb;
    for (const auto& c : candidates) {
        victims.push_back(c.id);
        if (!c.vram_mb) {
            break;
        }
        free_mb += *c.vram_mb;
        if (free_mb >= *incoming.vram_mb) {
            break;
        }
    }
    return victims;
}

}  // namespace helexa::gateway
