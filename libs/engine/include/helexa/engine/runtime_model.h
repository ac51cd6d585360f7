// RuntimeModel: the LoadedModel the node sees, assembled from a ModelRunner (the model on its
// backend), the model's tokenizer and chat template (injected as callables, so this layer does
// not depend on how libs/text builds them) and a Scheduler running on its own thread.
// When to use: an Engine::load implementation builds the runner and tokenizer, then calls
// RuntimeModel::create; Engine::unload calls shutdown() (or drops the last reference).
// Thread-safety: every LoadedModel method may be called from any thread (see serving.h).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "helexa/common/result.h"
#include "helexa/engine/runtime_text.h"
#include "helexa/engine/sampling_config.h"
#include "helexa/engine/scheduler.h"
#include "helexa/engine/serving.h"
#include "helexa/engine/step.h"

namespace helexa::engine {

struct RuntimeModelParts {
    ModelDescriptor descriptor;  // limit.context = the model's max positions (0 = unknown)
    std::unique_ptr<ModelRunner> runner;
    GenerationDefaults generation;
    SchedulerOptions scheduler;

    // Tokenizer and template; each must be callable concurrently (they read immutable state).
    std::function<Result<std::vector<int32_t>>(const std::string&, bool)> encode;
    std::function<Result<std::string>(const std::vector<int32_t>&, bool)> decode;
    std::function<Result<RenderedPrompt>(const ChatRenderInput&)> render_chat;
    TokenTextDecoderFactory text_decoder;  // required
    TextStreamFactory text_stream;         // optional; pass-through when empty
    // Fault handling, both optional (see SchedulerModel): the device's free bytes for the
    // min-free-memory gate, and the callback run once when a step reports a device fault.
    std::function<std::optional<int64_t>()> free_device_bytes;
    std::function<void(const Error&)> on_device_fault;
};

class RuntimeModel final : public LoadedModel {
public:
    // Starts the scheduler thread. The advertised limit becomes
    //   context = min(descriptor.limit.context or +inf, KV pool capacity in tokens)
    //   input   = min(descriptor.limit.input or context - 1, context - 1)
    //   output  = min(descriptor.limit.output or 8192, context - 1)
    // Errors: kConfig when the runner or the text decoder factory is missing, or the runner's
    // KV layout has no blocks.
    static Result<std::shared_ptr<RuntimeModel>> create(RuntimeModelParts parts);
    ~RuntimeModel() override;

    ModelDescriptor descriptor() const override { return descriptor_; }
    ModelLoad load() const override { return scheduler_->load(); }

    // Delegate to the injected callables; kInternal when one was not provided.
    Result<std::vector<int32_t>> encode(const std::string& text,
                                        bool add_special_tokens) const override;
    Result<std::string> decode(const std::vector<int32_t>& ids,
                               bool skip_special_tokens) const override;
    Result<RenderedPrompt> render_chat(const ChatRenderInput& input) const override;

    Result<uint64_t> submit(GenerateRequest request, EventSink sink) override;
    void cancel(uint64_t id) override;

    SchedulerStats stats() const { return scheduler_->stats(); }
    // True once a step reported a device fault (kModelRecovering); every later submit fails.
    bool poisoned() const { return scheduler_->poisoned(); }
    // Stops the scheduler; in-flight requests finish with kCancelled; later submits fail with
    // kServiceUnavailable. Idempotent.
    void shutdown();

private:
    RuntimeModel() = default;

    ModelDescriptor descriptor_;
    std::unique_ptr<ModelRunner> runner_;  // outlives scheduler_ (declared first)
    std::unique_ptr<Scheduler> scheduler_;
    std::function<Result<std::vector<int32_t>>(const std::string&, bool)> encode_;
    std::function<Result<std::string>(const std::vector<int32_t>&, bool)> decode_;
    std::function<Result<RenderedPrompt>(const ChatRenderInput&)> render_chat_;
};

}  // namespace helexa::engine
