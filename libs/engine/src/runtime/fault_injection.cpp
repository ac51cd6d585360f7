#include "fault_injection.h"

#include <utility>

namespace helexa::engine {
namespace {

class FaultInjectingRunner final : public CausalLmRunner {
public:
    FaultInjectingRunner(std::unique_ptr<CausalLmRunner> inner,
                         std::shared_ptr<std::atomic<bool>> armed)
        : inner_(std::move(inner)), armed_(std::move(armed)) {}

    int64_t vocab_size() const override { return inner_->vocab_size(); }
    const KvLayout& kv_layout() const override { return inner_->kv_layout(); }
    Status step(const StepBatch& batch, std::vector<float>& logits) override {
        if (armed_->exchange(false)) {
            return fail(ErrorCode::kModelRecovering, kInjectedFaultMessage);
        }
        return inner_->step(batch, logits);
    }
    Status step_in_place(const StepBatch& batch, std::span<float>& rows) override {
        if (armed_->exchange(false)) {
            return fail(ErrorCode::kModelRecovering, kInjectedFaultMessage);
        }
        return inner_->step_in_place(batch, rows);
    }
    Status step_argmax(const StepBatch& batch, std::vector<int32_t>& tokens) override {
        if (armed_->exchange(false)) {
            return fail(ErrorCode::kModelRecovering, kInjectedFaultMessage);
        }
        return inner_->step_argmax(batch, tokens);
    }
    Status launch_argmax(const StepBatch& batch) override { return inner_->launch_argmax(batch); }
    Status launch_sample(const StepBatch& batch, const DrawBatch& draws) override {
        return inner_->launch_sample(batch, draws);
    }
    // The injected fault comes with the step's result, as a real one would.
    Status finish_launched(std::vector<int32_t>& tokens) override {
        const Status st = inner_->finish_launched(tokens);
        if (armed_->exchange(false)) {
            return fail(ErrorCode::kModelRecovering, kInjectedFaultMessage);
        }
        return st;
    }
    Status step_sample(const StepBatch& batch, const DrawBatch& draws,
                       std::vector<int32_t>& tokens, std::span<float>& host_rows) override {
        if (armed_->exchange(false)) {
            return fail(ErrorCode::kModelRecovering, kInjectedFaultMessage);
        }
        return inner_->step_sample(batch, draws, tokens, host_rows);
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
    void set_activation_hook(ActivationHook hook) override {
        inner_->set_activation_hook(std::move(hook));
    }
    std::optional<Backend::MemoryInfo> device_memory() const override {
        return inner_->device_memory();
    }

private:
    std::unique_ptr<CausalLmRunner> inner_;
    std::shared_ptr<std::atomic<bool>> armed_;
};

}  // namespace

std::unique_ptr<CausalLmRunner> inject_device_fault(std::unique_ptr<CausalLmRunner> runner,
                                                   std::shared_ptr<std::atomic<bool>> armed) {
    return std::make_unique<FaultInjectingRunner>(std::move(runner), std::move(armed));
}

}  // namespace helexa::engine
