// Restarting the neuron in place after a device loss (docs/design/fault-recovery.md, "When the
// device does not come back"): a CUDA context that took a sticky error can be given back only
// by the process that owned it exiting, so the daemon re-executes itself with the same
// arguments and environment, handing over the models it was serving. The new image loads them
// like default models (after the configured ones) and counts the restart, which turns the
// NEURON_DEBUG_POISON / NEURON_DEBUG_DEVICE_LOST rehearsal off so it cannot loop.
// Thread-safety: call from the main thread only (environment and exec).
#pragma once

#include <string>
#include <vector>

#include "helexa/wire/neuron_protocol.h"

namespace helexa::apps {

// The models handed over by the process this one replaced (and forgets them); empty on a normal
// start. A malformed hand-over (never written by us) is logged and dropped.
std::vector<wire::ModelSpec> take_restored_models();

// How many times this neuron has re-executed itself (0 on a normal start).
int restart_count();

// Re-executes the running binary with `argv`, handing over `models`. Returns only on failure,
// with the reason.
std::string restart_process(const std::vector<std::string>& argv,
                            const std::vector<wire::ModelSpec>& models);

}  // namespace helexa::apps
