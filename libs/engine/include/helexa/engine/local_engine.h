// LocalEngine: the in-process Engine (serving.h) that neuron runs. It assembles a loaded model from
// a HuggingFace-layout snapshot: the architecture's runner on a backend (model_runner.h), the
// model's own tokenizer and chat template (libs/text), the vocabulary probes (reasoning and
// tool-call markers, EOS ids) and a scheduler thread (runtime_model.h).
// Device faults (docs/design/fault-recovery.md): the handle load() returns stays valid across a
// fault. A step that fails with kModelRecovering fails every request of the model, reports
// health() kRecovering, and a background thread unloads and reloads the model from the same
// snapshot with the same options; a failed reload leaves the model unloaded (kUnloaded, gone
// from the engine) with one warning logged.
// When to use: one per neuron process; node calls load/unload, then talks to LoadedModel.
// Thread-safety: load/unload may be called from any thread; they serialise on an internal mutex
// (loading is slow, the node runs it off its I/O threads), which the reload also takes.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "helexa/engine/model_runner.h"
#include "helexa/engine/scheduler.h"
#include "helexa/engine/serving.h"

namespace helexa::engine {

// Wraps the runner of every load and reload of a model (tests inject faults or fake device
// memory with it). An error fails that load. Runs under the engine's load mutex.
using RunnerDecorator = std::function<Result<std::unique_ptr<CausalLmRunner>>(
    const LoadSpec& spec, std::unique_ptr<CausalLmRunner> runner)>;

struct LocalEngineOptions {
    ModelRunnerOptions runner;    // backend kind and threads, KV block size and pool size
    SchedulerOptions scheduler;   // prefill chunk budget, batch and queue bounds, free-VRAM floor
    RunnerDecorator runner_decorator;  // optional
    // NEURON_DEBUG_POISON: the first step of this model (LoadSpec::model_id) fails as a device
    // fault would, once per engine (the latch survives the reload), to exercise recovery.
    std::optional<std::string> debug_poison_model;
    // NEURON_DEBUG_DEVICE_LOST: the reload after the injected fault fails as a CUDA device that
    // cannot be reset in-process does (kCudaUnavailable), to rehearse the process restart.
    bool debug_device_lost = false;
    // A reload after a device fault failed with kCudaUnavailable: the device did not come back in
    // this process (a CUDA context that took a sticky error cannot be replaced while the process
    // that owned it lives; NVIDIA's guidance and what an H200 shows). Called on the recovery
    // thread with those models' ids; they stay kRecovering (clients get model_recovering +
    // Retry-After), and the callee restarts the process, which loads them again (the neuron
    // re-executes itself: docs/design/fault-recovery.md). Unset: they are unloaded, as after any
    // failed reload.
    std::function<void(std::vector<std::string> model_ids)> on_device_lost;
};

class RuntimeModel;

namespace detail {
class RecoverableModel;
class RecoveryWorker;
}  // namespace detail

class LocalEngine final : public Engine {
public:
    explicit LocalEngine(LocalEngineOptions options);
    ~LocalEngine() override;

    // Errors: see Engine::load; a model already loaded under spec.model_id is returned as is.
    Result<std::shared_ptr<LoadedModel>> load(const LoadSpec& spec) override;
    Status unload(const std::string& model_id) override;

private:
    // Builds runner, tokenizer, template and scheduler for `spec`; faults report to `handle`.
    // Caller holds mutex_.
    Result<std::shared_ptr<RuntimeModel>> build(const LoadSpec& spec,
                                                std::weak_ptr<detail::RecoverableModel> handle);
    // On the recovery thread: unload the poisoned model and every model sharing a device with it
    // (a device fault kills the device's context for all of them), reload each into its handle.
    void recover(const std::shared_ptr<detail::RecoverableModel>& handle);
    // Whether two models' devices overlap (LoadSpec::devices; none listed: the backend's default
    // device, or no device at all on the CPU backend).
    bool share_device(const LoadSpec& a, const LoadSpec& b) const;

    LocalEngineOptions options_;
    std::shared_ptr<std::atomic<bool>> debug_poison_armed_;  // NEURON_DEBUG_POISON latch
    std::mutex mutex_;
    std::map<std::string, std::shared_ptr<detail::RecoverableModel>> models_;
    std::shared_ptr<detail::RecoveryWorker> recovery_;  // stopped first in the destructor
};

// Whether a rendered prompt ends inside an open reasoning block (`open` after the last `close`),
// as templates that inject "<think>\n" after the generation prompt leave it.
bool prompt_opens_reasoning(std::string_view prompt, std::string_view open, std::string_view close);

}  // namespace helexa::engine
