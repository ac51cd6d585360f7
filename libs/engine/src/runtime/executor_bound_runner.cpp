#include "executor_bound_runner.h"

#include <utility>

namespace helexa::engine {
namespace {

class ExecutorBoundRunner final : public CausalLmRunner {
public:
    ExecutorBoundRunner(std::unique_ptr<CausalLmRunner> inner,
                        std::shared_ptr<DeviceExecutor> executor)
        : inner_(std::move(inner)), executor_(std::move(executor)) {}

    ~ExecutorBoundRunner() override {
        // Weights, KV pool and handles are freed on the thread that owns them.
        executor_->run([this] { inner_.reset(); });
    }

    int64_t vocab_size() const override { return inner_->vocab_size(); }
    const KvLayout& kv_layout() const override { return inner_->kv_layout(); }
    Status step(const StepBatch& batch, std::vector<float>& logits) override {
        Status result = ok();
        executor_->run([&] { result = inner_->step(batch, logits); });
        return result;
    }
    Status step_argmax(const StepBatch& batch, std::vector<int32_t>& tokens) override {
        Status result = ok();
        executor_->run([&] { result = inner_->step_argmax(batch, tokens); });
        return result;
    }
    Status launch_argmax(const StepBatch& batch) override {
        Status result = ok();
        executor_->run([&] { result = inner_->launch_argmax(batch); });
        return result;
    }
    Status launch_sample(const StepBatch& batch, const DrawBatch& draws) override {
        Status result = ok();
        executor_->run([&] { result = inner_->launch_sample(batch, draws); });
        return result;
    }
    Status finish_launched(std::vector<int32_t>& tokens) override {
        Status result = ok();
        executor_->run([&] { result = inner_->finish_launched(tokens); });
        return result;
    }
    Status step_in_place(const StepBatch& batch, std::span<float>& rows) override {
        Status result = ok();
        executor_->run([&] { result = inner_->step_in_place(batch, rows); });
        return result;
    }
    Status step_sample(const StepBatch& batch, const DrawBatch& draws,
                       std::vector<int32_t>& tokens, std::span<float>& host_rows) override {
        Status result = ok();
        executor_->run([&] { result = inner_->step_sample(batch, draws, tokens, host_rows); });
        return result;
    }
    bool draws_whole_vocab_top_p() const override { return inner_->draws_whole_vocab_top_p(); }
    const ModelConfig& config() const override { return inner_->config(); }
    const GenerationDefaults& generation_defaults() const override {
        return inner_->generation_defaults();
    }
    int64_t max_context_tokens() const override { return inner_->max_context_tokens(); }
    int64_t weight_bytes() const override { return inner_->weight_bytes(); }
    int64_t kv_cache_bytes() const override { return inner_->kv_cache_bytes(); }
    std::string_view backend_name() const override { return inner_->backend_name(); }
    std::optional<Backend::MemoryInfo> device_memory() const override {
        std::optional<Backend::MemoryInfo> m;
        executor_->run([&] { m = inner_->device_memory(); });
        return m;
    }
    void set_activation_hook(ActivationHook hook) override {
        executor_->run([&] { inner_->set_activation_hook(std::move(hook)); });
    }

private:
    std::unique_ptr<CausalLmRunner> inner_;
    std::shared_ptr<DeviceExecutor> executor_;
};

}  // namespace

std::unique_ptr<CausalLmRunner> bind_to_executor(std::unique_ptr<CausalLmRunner> runner,
                                                 std::shared_ptr<DeviceExecutor> executor) {
    return std::make_unique<ExecutorBoundRunner>(std::move(runner), std::move(executor));
}

}  // namespace helexa::engine
