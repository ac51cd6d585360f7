// Private: the NEURON_DEBUG_POISON runner decorator. It forwards everything to the wrapped runner
// except that, while its shared latch is armed, the next step fails exactly as a poisoned CUDA
// context reports itself (kModelRecovering, "device fault ..."), so the whole recovery path runs
// without a GPU. The latch is shared by every load of the model, so one fault fires per process.
// Thread-safety: like any ModelRunner, driven by one thread; the latch is atomic.
#pragma once

#include <atomic>
#include <memory>

#include "helexa/engine/model_runner.h"

namespace helexa::engine {

inline constexpr const char* kInjectedFaultMessage =
    "device fault (injected by NEURON_DEBUG_POISON)";

// `armed` fires once across every runner sharing it (exchange to false on the failing step).
std::unique_ptr<CausalLmRunner> inject_device_fault(std::unique_ptr<CausalLmRunner> runner,
                                                   std::shared_ptr<std::atomic<bool>> armed);

}  // namespace helexa::engine
