// A CausalLmRunner whose backend belongs to one device thread: every call that touches the
// backend (step, the activation hook, destruction) is sent to the backend's DeviceExecutor and
// waited for, so the scheduler thread never touches the device itself (CONVENTIONS.md "Threads
// and ownership"). Read-only accessors answer from the calling thread: they read values fixed at
// load.
#pragma once

#include <memory>

#include "helexa/engine/model_runner.h"

namespace helexa::engine {

std::unique_ptr<CausalLmRunner> bind_to_executor(std::unique_ptr<CausalLmRunner> runner,
                                                 std::shared_ptr<DeviceExecutor> executor);

}  // namespace helexa::engine
