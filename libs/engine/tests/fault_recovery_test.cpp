// Device-fault recovery of the LocalEngine on the CPU backend (docs/design/fault-recovery.md):
// a step failing with kModelRecovering fails every request of the model (running and queued),
// the model reports kRecovering, refuses new work with model_recovering + Retry-After, and is
// reloaded behind the same handle; a failed reload leaves it unloaded; other step errors fail
// only their requests; NEURON_DEBUG_POISON injects one such fault; NEURON_MIN_FREE_VRAM_MB gates
// request start on the device's free memory.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "fault_test_support.h"
#include "helexa/engine/random_model.h"

namespace helexa::engine {
namespace {

namespace fs = std::filesystem;
using testing::Collector;
using testing::FaultPlan;

constexpr const char* kModelId = "helexa/fault-qwen3";

class FaultRecoveryTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        model_dir_ = fs::temp_directory_path() /
                     ("helexa-fault-recovery-" + std::to_string(::getpid()));
        fs::create_directories(model_dir_);
        RandomModelSpec spec;
        spec.model_type = "qwen3";
        spec.vocab_size = 512;
        spec.num_hidden_layers = 1;
        spec.seed = 11;
        spec.eos_token_ids = {511};
        ASSERT_TRUE(write_random_model(spec, model_dir_).has_value());
        write_tiny_tokenizer(model_dir_, 512);
    }
    static void TearDownTestSuite() { fs::remove_all(model_dir_); }

    LocalEngineOptions options() {
        LocalEngineOptions o;
        o.runner.backend.n_threads = 1;
        o.runner.n_blocks = 32;
        o.runner.block_size = 16;
        o.runner_decorator = testing::faulty_runner_decorator(plan_);
        return o;
    }
    static LoadSpec spec(const fs::path& dir = model_dir_) {
        return {.model_id = kModelId, .snapshot_dir = dir.string()};
    }

    static GenerateRequest request(int64_t max_tokens, int32_t first = 100) {
        GenerateRequest r;
        r.request_id = "fault-test";
        r.prompt_tokens = {first, first + 1, first + 2, first + 3};
        r.sampling.temperature = 0.0F;
        r.sampling.max_tokens = max_tokens;
        return r;
    }

    static bool wait_health(const LoadedModel& m, ModelHealth want,
                            std::chrono::seconds timeout = std::chrono::seconds(60)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            if (m.health() == want) {
                return true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return false;
    }

    // A short greedy request that must finish normally.
    static void expect_serves(LoadedModel& m) {
        Collector c;
        auto id = m.submit(request(3), c.sink());
        ASSERT_TRUE(id.has_value()) << id.error().full_message();
        ASSERT_TRUE(c.wait());
        const EngineEvent last = c.terminal();
        ASSERT_EQ(last.kind, EngineEvent::Kind::kFinish)
            << (last.error ? last.error->full_message() : "");
        EXPECT_GT(last.usage.completion_tokens, 0);
    }

    static void expect_recovering(const EngineEvent& ev) {
        ASSERT_EQ(ev.kind, EngineEvent::Kind::kError);
        ASSERT_TRUE(ev.error.has_value());
        EXPECT_EQ(ev.error->code(), ErrorCode::kModelRecovering) << ev.error->full_message();
        EXPECT_EQ(ev.error->retry_after_secs(), 2);
    }

    static inline fs::path model_dir_;
    std::shared_ptr<FaultPlan> plan_ = std::make_shared<FaultPlan>();
};

TEST_F(FaultRecoveryTest, DeviceFaultFailsEveryRequestAndTheModelReloadsBehindTheSameHandle) {
    auto o = options();
    o.scheduler.max_batch_seqs = 2;  // the third request waits in the queue
    plan_->hold_first_step = true;   // every request is in before the first step runs
    plan_->fail_at_step = 3;         // two running requests are decoding by then
    plan_->hold_load = 2;            // the reload waits, so the recovering state is observable
    LocalEngine engine(o);
    auto loaded = engine.load(spec());
    ASSERT_TRUE(loaded.has_value()) << loaded.error().full_message();
    std::shared_ptr<LoadedModel> model = *loaded;
    EXPECT_EQ(model->health(), ModelHealth::kLoaded);
    const ModelDescriptor before = model->descriptor();

    std::vector<std::unique_ptr<Collector>> collectors;
    for (int i = 0; i < 3; ++i) {
        collectors.push_back(std::make_unique<Collector>());
        auto id = model->submit(request(64, 100 + 10 * i), collectors.back()->sink());
        ASSERT_TRUE(id.has_value()) << id.error().full_message();
    }
    plan_->release_step();
    for (auto& c : collectors) {
        ASSERT_TRUE(c->wait());
        expect_recovering(c->terminal());
        EXPECT_NE(c->terminal().error->full_message().find("device fault"), std::string::npos);
    }
    EXPECT_TRUE(collectors[0]->started());
    EXPECT_FALSE(collectors[2]->started());  // queued, never ran: failed all the same

    // Recovering: the reload is held; new work is refused with model_recovering + Retry-After.
    ASSERT_TRUE(plan_->wait_loads(2));
    EXPECT_EQ(model->health(), ModelHealth::kRecovering);
    Collector refused;
    auto id = model->submit(request(3), refused.sink());
    ASSERT_FALSE(id.has_value());
    EXPECT_EQ(id.error().code(), ErrorCode::kModelRecovering);
    EXPECT_EQ(id.error().retry_after_secs(), 2);
    EXPECT_EQ(model->encode("hi", false).error().code(), ErrorCode::kModelRecovering);
    EXPECT_EQ(model->descriptor().limit.context, before.limit.context);  // kept while recovering

    plan_->release_load();
    ASSERT_TRUE(wait_health(*model, ModelHealth::kLoaded));
    expect_serves(*model);
    EXPECT_TRUE(model->encode("hi", false).has_value());
    // The engine still knows the model under the same handle.
    auto again = engine.load(spec());
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->get(), model.get());
    std::lock_guard lock(plan_->mu);
    EXPECT_EQ(plan_->loads, 2);
}

TEST_F(FaultRecoveryTest, CancelOfARequestFromBeforeTheReloadDoesNotReachANewOne) {
    plan_->fail_at_step = 1;
    LocalEngine engine(options());
    auto model = *engine.load(spec());
    Collector first;
    auto old_id = model->submit(request(8), first.sink());
    ASSERT_TRUE(old_id.has_value());
    ASSERT_TRUE(first.wait());
    expect_recovering(first.terminal());
    ASSERT_TRUE(wait_health(*model, ModelHealth::kLoaded));

    Collector second;
    auto new_id = model->submit(request(3), second.sink());
    ASSERT_TRUE(new_id.has_value());
    EXPECT_NE(*new_id, *old_id);
    model->cancel(*old_id);  // the scheduler-level ids restart at 1 after the reload
    ASSERT_TRUE(second.wait());
    EXPECT_EQ(second.terminal().kind, EngineEvent::Kind::kFinish);
    EXPECT_NE(second.terminal().finish_reason, FinishReason::kCancelled);
}

TEST_F(FaultRecoveryTest, FailedReloadLeavesTheModelUnloaded) {
    plan_->fail_at_step = 1;
    plan_->fail_load = 2;
    LocalEngine engine(options());
    auto model = *engine.load(spec());
    Collector c;
    ASSERT_TRUE(model->submit(request(4), c.sink()).has_value());
    ASSERT_TRUE(c.wait());
    expect_recovering(c.terminal());

    ASSERT_TRUE(wait_health(*model, ModelHealth::kUnloaded));
    Collector after;
    auto id = model->submit(request(3), after.sink());
    ASSERT_FALSE(id.has_value());
    EXPECT_EQ(id.error().code(), ErrorCode::kModelNotFound);
    // Gone from the engine: unload finds nothing, and a fresh load starts over.
    EXPECT_EQ(engine.unload(kModelId).error().code(), ErrorCode::kModelNotFound);
    auto reloaded = engine.load(spec());
    ASSERT_TRUE(reloaded.has_value()) << reloaded.error().full_message();
    EXPECT_NE(reloaded->get(), model.get());
    expect_serves(**reloaded);
}

// A device that does not come back (the reload fails with kCudaUnavailable, as a CUDA context
// that took a sticky error cannot be replaced in-process) asks the engine's owner for a process
// restart; the model stays recovering meanwhile. Without an owner's callback it is unloaded.
TEST_F(FaultRecoveryTest, DeviceThatDoesNotComeBackAsksForAProcessRestart) {
    plan_->fail_at_step = 1;
    plan_->fail_load = 2;
    plan_->fail_load_code = ErrorCode::kCudaUnavailable;
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> lost;
    auto o = options();
    o.on_device_lost = [&](std::vector<std::string> ids) {
        std::lock_guard lock(mu);
        lost = std::move(ids);
        cv.notify_all();
    };
    LocalEngine engine(o);
    auto model = *engine.load(spec());
    Collector c;
    ASSERT_TRUE(model->submit(request(4), c.sink()).has_value());
    ASSERT_TRUE(c.wait());
    expect_recovering(c.terminal());
    {
        std::unique_lock lock(mu);
        ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return !lost.empty(); }));
        EXPECT_EQ(lost, std::vector<std::string>{kModelId});
    }
    EXPECT_EQ(model->health(), ModelHealth::kRecovering);
    Collector after;
    auto id = model->submit(request(3), after.sink());
    ASSERT_FALSE(id.has_value());
    EXPECT_EQ(id.error().code(), ErrorCode::kModelRecovering);
    // The restart's shutdown can still unload it.
    EXPECT_TRUE(engine.unload(kModelId).has_value());
}

TEST_F(FaultRecoveryTest, DeviceThatDoesNotComeBackWithoutAnOwnerUnloadsTheModel) {
    plan_->fail_at_step = 1;
    plan_->fail_load = 2;
    plan_->fail_load_code = ErrorCode::kCudaUnavailable;
    LocalEngine engine(options());
    auto model = *engine.load(spec());
    Collector c;
    ASSERT_TRUE(model->submit(request(4), c.sink()).has_value());
    ASSERT_TRUE(c.wait());
    ASSERT_TRUE(wait_health(*model, ModelHealth::kUnloaded));
}

// NEURON_DEBUG_DEVICE_LOST: the reload after the injected fault fails as a lost device.
TEST_F(FaultRecoveryTest, DebugDeviceLostRehearsesTheRestart) {
    std::atomic<int> calls{0};
    auto o = options();
    o.debug_poison_model = kModelId;
    o.debug_device_lost = true;
    o.on_device_lost = [&](std::vector<std::string> ids) {
        EXPECT_EQ(ids, std::vector<std::string>{kModelId});
        calls.fetch_add(1);
    };
    LocalEngine engine(o);
    auto model = *engine.load(spec());
    Collector c;
    ASSERT_TRUE(model->submit(request(4), c.sink()).has_value());
    ASSERT_TRUE(c.wait());
    expect_recovering(c.terminal());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (calls.load() == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_EQ(calls.load(), 1);
    EXPECT_EQ(plan_->loads, 1);  // no real reload was tried
    EXPECT_EQ(model->health(), ModelHealth::kRecovering);
}

TEST_F(FaultRecoveryTest, ReloadFromAVanishedSnapshotLeavesTheModelUnloaded) {
    const fs::path copy = model_dir_.string() + "-copy";
    fs::remove_all(copy);
    fs::copy(model_dir_, copy);
    auto o = options();
    o.debug_poison_model = kModelId;
    LocalEngine engine(o);
    auto model = *engine.load(spec(copy));
    fs::remove(copy / "model.safetensors");  // the reload cannot find its weights
    Collector c;
    ASSERT_TRUE(model->submit(request(4), c.sink()).has_value());
    ASSERT_TRUE(c.wait());
    expect_recovering(c.terminal());
    EXPECT_TRUE(wait_health(*model, ModelHealth::kUnloaded));
    EXPECT_FALSE(engine.unload(kModelId).has_value());
    fs::remove_all(copy);
}

TEST_F(FaultRecoveryTest, DebugPoisonInjectsOneFaultPerEngine) {
    auto o = options();
    o.debug_poison_model = kModelId;
    LocalEngine engine(o);
    auto model = *engine.load(spec());
    Collector c;
    ASSERT_TRUE(model->submit(request(4), c.sink()).has_value());
    ASSERT_TRUE(c.wait());
    expect_recovering(c.terminal());
    EXPECT_NE(c.terminal().error->full_message().find("device fault (injected by NEURON_DEBUG_POISON)"),
              std::string::npos)
        << c.terminal().error->full_message();
    ASSERT_TRUE(wait_health(*model, ModelHealth::kLoaded));
    expect_serves(*model);  // the latch survived the reload: no second fault
    expect_serves(*model);
    std::lock_guard lock(plan_->mu);
    EXPECT_EQ(plan_->loads, 2);
}

TEST_F(FaultRecoveryTest, DebugPoisonOfAnotherModelLeavesThisOneAlone) {
    auto o = options();
    o.debug_poison_model = "someone/else";
    LocalEngine engine(o);
    auto model = *engine.load(spec());
    expect_serves(*model);
    EXPECT_EQ(model->health(), ModelHealth::kLoaded);
}

TEST_F(FaultRecoveryTest, OtherStepErrorsFailTheirRequestsAndPoisonNothing) {
    plan_->fail_at_step = 2;
    plan_->fail_code = ErrorCode::kInvalidRequest;
    plan_->fail_message = "shape mismatch (test)";
    plan_->nan_at_step = 4;
    LocalEngine engine(options());
    auto model = *engine.load(spec());
    for (ErrorCode want : {ErrorCode::kInvalidRequest, ErrorCode::kInternal}) {
        Collector c;
        ASSERT_TRUE(model->submit(request(16), c.sink()).has_value());
        ASSERT_TRUE(c.wait());
        ASSERT_EQ(c.terminal().kind, EngineEvent::Kind::kError);
        EXPECT_EQ(c.terminal().error->code(), want) << c.terminal().error->full_message();
        EXPECT_EQ(model->health(), ModelHealth::kLoaded);
    }
    expect_serves(*model);
    std::lock_guard lock(plan_->mu);
    EXPECT_EQ(plan_->loads, 1);  // nothing was reloaded
}

TEST_F(FaultRecoveryTest, LowFreeDeviceMemoryRefusesToStartARequest) {
    auto o = options();
    o.scheduler.min_free_device_bytes = int64_t{1500} << 20;
    plan_->free_bytes = int64_t{1000} << 20;
    LocalEngine engine(o);
    auto model = *engine.load(spec());
    Collector c;
    ASSERT_TRUE(model->submit(request(4), c.sink()).has_value());
    ASSERT_TRUE(c.wait());
    const EngineEvent ev = c.terminal();
    ASSERT_EQ(ev.kind, EngineEvent::Kind::kError);
    EXPECT_EQ(ev.error->code(), ErrorCode::kInsufficientVram);
    EXPECT_EQ(ev.error->retry_after_secs(), 5);
    EXPECT_NE(ev.error->message().find("1000 MiB free"), std::string::npos) << ev.error->message();
    EXPECT_FALSE(c.started());
    {
        std::lock_guard lock(plan_->mu);
        EXPECT_EQ(plan_->steps, 0);  // never reached the device
        plan_->free_bytes = int64_t{2000} << 20;
    }
    expect_serves(*model);
    EXPECT_EQ(model->health(), ModelHealth::kLoaded);
}

TEST_F(FaultRecoveryTest, HostMemoryIsNeverGated) {
    auto o = options();
    o.scheduler.min_free_device_bytes = int64_t{1} << 50;  // more than any device has
    LocalEngine engine(o);  // the plan reports no device memory, as the CPU backend
    auto model = *engine.load(spec());
    expect_serves(*model);
}

TEST_F(FaultRecoveryTest, UnloadDuringRecoveryWins) {
    plan_->fail_at_step = 1;
    plan_->hold_load = 2;
    LocalEngine engine(options());
    auto model = *engine.load(spec());
    Collector c;
    ASSERT_TRUE(model->submit(request(4), c.sink()).has_value());
    ASSERT_TRUE(c.wait());
    ASSERT_TRUE(plan_->wait_loads(2));
    std::thread unloader([&] { EXPECT_TRUE(engine.unload(kModelId).has_value()); });
    plan_->release_load();
    unloader.join();
    EXPECT_EQ(model->health(), ModelHealth::kUnloaded);
    EXPECT_EQ(engine.unload(kModelId).error().code(), ErrorCode::kModelNotFound);
}

// A device fault kills the device's context for every model on it (and a CUDA device can be
// reset only once all of them have let go): the models sharing a device with the faulted one
// are stopped and reloaded with it; a model on another device is left alone.
TEST_F(FaultRecoveryTest, ModelsSharingTheFaultedDeviceReloadWithIt) {
    std::mutex mu;
    std::map<std::string, int> loads;
    auto faulty = testing::faulty_runner_decorator(plan_);  // faults the first model only
    auto o = options();
    o.runner_decorator = [&](const LoadSpec& s, std::unique_ptr<CausalLmRunner> runner)
        -> Result<std::unique_ptr<CausalLmRunner>> {
        {
            std::lock_guard lock(mu);
            ++loads[s.model_id];
        }
        if (s.model_id == kModelId) {
            return faulty(s, std::move(runner));
        }
        return runner;
    };
    plan_->fail_at_step = 1;
    LocalEngine engine(o);
    LoadSpec a = spec();
    a.devices = {0};
    LoadSpec b = spec();
    b.model_id = "helexa/fault-sibling";
    b.devices = {0, 1};
    LoadSpec c = spec();
    c.model_id = "helexa/fault-elsewhere";
    c.devices = {2};
    auto ma = *engine.load(a);
    auto mb = *engine.load(b);
    auto mc = *engine.load(c);

    Collector faulted;
    ASSERT_TRUE(ma->submit(request(4), faulted.sink()).has_value());
    ASSERT_TRUE(faulted.wait());
    expect_recovering(faulted.terminal());
    // The sibling is reloaded after the faulted model, in the same recovery.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    auto sibling_loads = [&] {
        std::lock_guard lock(mu);
        return loads["helexa/fault-sibling"];
    };
    while (sibling_loads() < 2 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_TRUE(wait_health(*ma, ModelHealth::kLoaded));
    ASSERT_TRUE(wait_health(*mb, ModelHealth::kLoaded));
    expect_serves(*ma);
    expect_serves(*mb);
    expect_serves(*mc);
    std::lock_guard lock(mu);
    EXPECT_EQ(loads[kModelId], 2);
    EXPECT_EQ(loads["helexa/fault-sibling"], 2);  // shares device 0: reloaded with it
    EXPECT_EQ(loads["helexa/fault-elsewhere"], 1);
}

}  // namespace
}  // namespace helexa::engine
