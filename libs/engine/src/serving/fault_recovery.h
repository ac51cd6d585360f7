// Private: what makes a LocalEngine model survive a device fault (docs/design/fault-recovery.md).
//   RecoverableModel — the stable LoadedModel handle the node holds. It forwards to the current
//     RuntimeModel and outlives it: after a fault the engine swaps a freshly loaded RuntimeModel in
//     (or, when the reload fails, marks the handle unloaded). Request ids carry the model's
//     generation so a cancel never reaches a request of a later load.
//   RecoveryWorker — one background thread that runs recoveries one at a time, queued from the
//     scheduler thread that saw the fault.
// Thread-safety: every RecoverableModel method may be called from any thread (one mutex, never
// held while calling into the RuntimeModel); RecoveryWorker::enqueue from any thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "helexa/engine/runtime_model.h"
#include "helexa/engine/serving.h"

namespace helexa::engine::detail {

class RecoverableModel final : public LoadedModel {
public:
    explicit RecoverableModel(LoadSpec spec) : spec_(std::move(spec)) {}

    const LoadSpec& spec() const { return spec_; }  // immutable

    // Puts a freshly built model in service (first load or reload): health kLoaded and a new id
    // generation. False (model untouched) when the handle was closed meanwhile.
    bool install(std::shared_ptr<RuntimeModel> model);
    // A step reported a device fault: kLoaded -> kRecovering. False when the model was not
    // loaded (a second report, or closed), so exactly one recovery is queued per fault.
    bool mark_faulted(const Error& fault);
    // No recovery will run (the engine is gone): kRecovering -> kPoisoned.
    void mark_poisoned();
    // The fault being recovered from (empty when loaded).
    std::optional<Error> fault() const;
    // Detaches the current model for the recovery to shut down; health stays kRecovering.
    std::shared_ptr<RuntimeModel> take();
    // Dead for good (unload, or a failed reload): kUnloaded. Returns the model to shut down.
    std::shared_ptr<RuntimeModel> close();

    ModelDescriptor descriptor() const override;
    ModelLoad load() const override;
    ModelHealth health() const override;
    Result<std::vector<int32_t>> encode(const std::string& text,
                                        bool add_special_tokens) const override;
    Result<std::string> decode(const std::vector<int32_t>& ids,
                               bool skip_special_tokens) const override;
    Result<RenderedPrompt> render_chat(const ChatRenderInput& input) const override;
    Result<uint64_t> submit(GenerateRequest request, EventSink sink) override;
    void cancel(uint64_t id) override;

private:
    // The serving model and its generation, or the error that explains why there is none.
    Result<std::pair<std::shared_ptr<RuntimeModel>, uint64_t>> serving() const;

    const LoadSpec spec_;
    mutable std::mutex mu_;
    std::shared_ptr<RuntimeModel> model_;
    ModelDescriptor descriptor_;  // of the last installed model: /models keeps it while recovering
    ModelHealth health_ = ModelHealth::kUnloaded;
    uint64_t generation_ = 0;
    std::optional<Error> fault_;
};

class RecoveryWorker {
public:
    using Job = std::function<void(const std::shared_ptr<RecoverableModel>&)>;

    // Starts the thread; `job` runs there for each queued model still alive.
    explicit RecoveryWorker(Job job);
    ~RecoveryWorker();
    RecoveryWorker(const RecoveryWorker&) = delete;
    RecoveryWorker& operator=(const RecoveryWorker&) = delete;

    // False after stop() (the caller leaves the model poisoned).
    bool enqueue(std::weak_ptr<RecoverableModel> model);
    // Waits for the running job, drops queued ones and joins. Idempotent.
    void stop();

private:
    void thread_main();

    Job job_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::weak_ptr<RecoverableModel>> queue_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace helexa::engine::detail
