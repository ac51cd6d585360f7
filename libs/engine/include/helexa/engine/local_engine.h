// LocalEngine: the in-process Engine (serving.h) that neuron runs. It assembles a loaded model from
// a HuggingFace-layout snapshot: the architecture's runner on a backend (model_runner.h), the
// model's own tokenizer and chat template (libs/text), the vocabulary probes (reasoning and
// tool-call markers, EOS ids) and a scheduler thread (runtime_model.h).
// When to use: one per neuron process; node calls load/unload, then talks to LoadedModel.
// Thread-safety: load/unload may be called from any thread; they serialise on an internal mutex
// (loading is slow, the node runs it off its I/O threads).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "helexa/engine/model_runner.h"
#include "helexa/engine/scheduler.h"
#include "helexa/engine/serving.h"

namespace helexa::engine {

struct LocalEngineOptions {
    ModelRunnerOptions runner;    // backend kind and threads, KV block size and pool size
    SchedulerOptions scheduler;   // prefill chunk budget, batch and queue bounds
};

class LocalEngine final : public Engine {
public:
    explicit LocalEngine(LocalEngineOptions options);
    ~LocalEngine() override;

    // Errors: see Engine::load; a model already loaded under spec.model_id is returned as is.
    Result<std::shared_ptr<LoadedModel>> load(const LoadSpec& spec) override;
    Status unload(const std::string& model_id) override;

private:
    LocalEngineOptions options_;
    std::mutex mutex_;
    std::map<std::string, std::shared_ptr<LoadedModel>> models_;
};

// Whether a rendered prompt ends inside an open reasoning block (`open` after the last `close`),
// as templates that inject "<think>\n" after the generation prompt leave it.
bool prompt_opens_reasoning(std::string_view prompt, std::string_view open, std::string_view close);

}  // namespace helexa::engine
