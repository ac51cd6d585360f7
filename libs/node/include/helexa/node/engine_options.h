// The LocalEngine options a neuron.toml (and its NEURON_* overrides) asks for: prefix cache,
// prefill chunk budget, NEURON_MIN_FREE_VRAM_MB (the per-request free device memory floor) and
// NEURON_DEBUG_POISON (one injected device fault, docs/design/fault-recovery.md).
// Use: apps/neuron builds its engine from it; tests build the same engine the daemon would.
// Thread-safety: pure function.
#pragma once

#include "helexa/engine/local_engine.h"
#include "helexa/node/config.h"

namespace helexa::node {

// The backend kind is left to the caller (the daemon chooses it).
engine::LocalEngineOptions local_engine_options(const NeuronConfig& config);

}  // namespace helexa::node
