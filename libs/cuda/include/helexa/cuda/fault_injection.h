// Test support for device-fault recovery (issue 8, "Faults"): makes a real device fault on a
// device, on its owner thread, the way a kernel bug or an uncorrectable ECC error would. Every
// model on the device then fails its steps with kModelRecovering; the next backend created on the
// device resets it first (device_worker.h), and models loaded before the reset refuse to touch
// it again. Thread-safety: any thread.
#pragma once

#include "helexa/common/result.h"

namespace helexa::cuda {

// Returns the fault as a status (kModelRecovering when the device faulted as intended).
Status inject_device_fault(int device);

}  // namespace helexa::cuda
