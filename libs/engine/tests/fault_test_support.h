// Test doubles for the fault-recovery tests: a runner decorator (installed through
// LocalEngineOptions::runner_decorator) that fails the Nth step with a chosen error, writes NaN
// logits, reports fake device memory, holds a step or a reload until released, and fails a
// chosen load; an event collector; and a tiny tokenizer.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "event_collector.h"
#include "helexa/engine/local_engine.h"

namespace helexa::engine::testing {

struct FaultPlan {
    std::mutex mu;
    std::condition_variable cv;
    // Counters (read under mu).
    int64_t steps = 0;  // across every load
    int loads = 0;
    // Step behaviour; steps are numbered from 1 across loads.
    int64_t fail_at_step = 0;  // 0 = never
    ErrorCode fail_code = ErrorCode::kModelRecovering;
    std::string fail_message = "device fault: an illegal memory access was encountered (test)";
    int64_t nan_at_step = 0;  // 0 = never: that step's logits are all NaN
    bool hold_first_step = false;  // the first step waits for release_step()
    bool step_released = false;
    // Load behaviour; loads are numbered from 1.
    int hold_load = 0;  // that load waits for release_load()
    bool load_released = false;
    int fail_load = 0;  // that load fails with fail_load_code
    ErrorCode fail_load_code = ErrorCode::kIo;
    // Reported device memory; nullopt = host memory (as the CPU backend).
    std::optional<int64_t> free_bytes;

    void release_step() {
        std::lock_guard lock(mu);
        step_released = true;
        cv.notify_all();
    }
    void release_load() {
        std::lock_guard lock(mu);
        load_released = true;
        cv.notify_all();
    }
    // Waits until `loads` reaches n (the decorator runs at the start of a load).
    bool wait_loads(int n, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
        std::unique_lock lock(mu);
        return cv.wait_for(lock, timeout, [&] { return loads >= n; });
    }
};

class FaultyRunner final : public CausalLmRunner {
public:
    FaultyRunner(std::unique_ptr<CausalLmRunner> inner, std::shared_ptr<FaultPlan> plan)
        : inner_(std::move(inner)), plan_(std::move(plan)) {}

    int64_t vocab_size() const override { return inner_->vocab_size(); }
    const KvLayout& kv_layout() const override { return inner_->kv_layout(); }
    Status step(const StepBatch& batch, std::vector<float>& logits) override {
        int64_t n = 0;
        bool nan = false;
        {
            std::unique_lock lock(plan_->mu);
            n = ++plan_->steps;
            if (n == 1 && plan_->hold_first_step) {
                plan_->cv.wait(lock, [&] { return plan_->step_released; });
            }
            if (n == plan_->fail_at_step) {
                return fail(plan_->fail_code, plan_->fail_message);
            }
            nan = n == plan_->nan_at_step;
        }
        auto st = inner_->step(batch, logits);
        if (st && nan) {
            std::fill(logits.begin(), logits.end(), std::numeric_limits<float>::quiet_NaN());
        }
        return st;
    }
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
        std::lock_guard lock(plan_->mu);
        if (!plan_->free_bytes) {
            return std::nullopt;
        }
        return Backend::MemoryInfo{*plan_->free_bytes, int64_t{80} << 30};
    }

private:
    std::unique_ptr<CausalLmRunner> inner_;
    std::shared_ptr<FaultPlan> plan_;
};

inline RunnerDecorator faulty_runner_decorator(std::shared_ptr<FaultPlan> plan) {
    return [plan](const LoadSpec&, std::unique_ptr<CausalLmRunner> runner)
               -> Result<std::unique_ptr<CausalLmRunner>> {
        std::unique_lock lock(plan->mu);
        const int n = ++plan->loads;
        plan->cv.notify_all();
        if (n == plan->hold_load) {
            plan->cv.wait(lock, [&] { return plan->load_released; });
        }
        if (n == plan->fail_load) {
            return fail(plan->fail_load_code, "injected load failure (test)");
        }
        return std::unique_ptr<CausalLmRunner>(
            std::make_unique<FaultyRunner>(std::move(runner), plan));
    };
}

}  // namespace helexa::engine::testing
