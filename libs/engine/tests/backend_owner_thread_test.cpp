// Backends registered by another library, and backends owned by one device thread: a test
// backend that wraps the CPU backend, owns an executor thread and records which thread calls it.
// load_model_runner must upload, step and destroy on that thread only (the contract the CUDA
// backend relies on), while the caller's view (step results, limits) is unchanged.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <numeric>
#include <thread>

#include "helexa/engine/backend.h"
#include "helexa/engine/cpu_backend.h"
#include "helexa/engine/model_runner.h"
#include "helexa/engine/random_model.h"
#include "forwarding_backend.h"

namespace helexa::engine {
namespace {

namespace fs = std::filesystem;

class ThreadExecutor final : public DeviceExecutor {
public:
    ThreadExecutor() : thread_([this] { loop(); }) {}
    ~ThreadExecutor() override {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    void run(const std::function<void()>& fn) override {
        std::mutex m;
        std::condition_variable done_cv;
        bool done = false;
        {
            std::lock_guard lock(mutex_);
            tasks_.push_back([&] {
                fn();
                std::lock_guard l(m);
                done = true;
                done_cv.notify_one();
            });
        }
        cv_.notify_one();
        std::unique_lock l(m);
        done_cv.wait(l, [&] { return done; });
    }
    std::thread::id id() const { return thread_.get_id(); }

private:
    void loop() {
        for (;;) {
            std::function<void()> t;
            {
                std::unique_lock lock(mutex_);
                cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
                if (tasks_.empty()) {
                    return;
                }
                t = std::move(tasks_.front());
                tasks_.pop_front();
            }
            t();
        }
    }
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> tasks_;
    bool stop_ = false;
    std::thread thread_;
};

struct CallLog {
    std::atomic<int> calls{0};
    std::atomic<int> off_thread{0};
    std::atomic<bool> destroyed_on_owner{false};
};

// Forwards to a CPU backend and counts calls made from any thread but the owner.
class OwnedBackend final : public testing::ForwardingBackend {
public:
    OwnedBackend(std::shared_ptr<ThreadExecutor> exec, CallLog& log)
        : exec_(std::move(exec)), log_(log) {}
    ~OwnedBackend() override { log_.destroyed_on_owner = on_owner(); }

    std::string_view name() const override { return "owned"; }
    std::shared_ptr<DeviceExecutor> executor() const override { return exec_; }

protected:
    void memory() override { note(); }
    Status op(std::function<Status()> fn) override {
        note();
        return fn();
    }

private:
    bool on_owner() const { return std::this_thread::get_id() == exec_->id(); }
    void note() const {
        ++log_.calls;
        if (!on_owner()) {
            ++log_.off_thread;
        }
    }
    std::shared_ptr<ThreadExecutor> exec_;
    CallLog& log_;
};

class OwnerThread : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("helexa_owner_" + std::to_string(::getpid()));
        RandomModelSpec spec;
        spec.seed = 11;
        ASSERT_TRUE(write_random_model(spec, dir_).has_value());
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    fs::path dir_;
};

TEST_F(OwnerThread, UnregisteredKindsNameWhatIsAvailable) {
    auto cuda = make_backend({.kind = "cuda"});
    ASSERT_FALSE(cuda.has_value());
    EXPECT_EQ(cuda.error().code(), ErrorCode::kCudaUnavailable);
    auto other = make_backend({.kind = "tpu"});
    ASSERT_FALSE(other.has_value());
    EXPECT_EQ(other.error().code(), ErrorCode::kInvalidRequest);
    EXPECT_NE(other.error().message().find("cpu"), std::string::npos);
}

TEST_F(OwnerThread, LoadStepAndDestroyRunOnTheOwner) {
    auto exec = std::make_shared<ThreadExecutor>();
    CallLog log;
    register_backend("owned-test", [&](const BackendOptions&) -> Result<std::unique_ptr<Backend>> {
        return std::unique_ptr<Backend>(std::make_unique<OwnedBackend>(exec, log));
    });
    ModelRunnerOptions opt;
    opt.backend.kind = "owned-test";
    opt.n_blocks = 8;
    auto owned = load_model_runner(dir_, opt);
    ASSERT_TRUE(owned.has_value()) << owned.error().full_message();
    opt.backend.kind = "cpu";
    auto plain = load_model_runner(dir_, opt);
    ASSERT_TRUE(plain.has_value());
    EXPECT_EQ((*owned)->backend_name(), "owned");

    std::vector<int32_t> tokens = {1, 2, 3, 4, 5, 6, 7};
    std::vector<int32_t> table = {0};
    StepBatch b;
    b.seqs.push_back({1, tokens, 0, table, true});
    std::vector<float> got;
    std::vector<float> want;
    // Stepped from this (non-owner) thread, as the scheduler does.
    ASSERT_TRUE((*owned)->step(b, got).has_value());
    ASSERT_TRUE((*plain)->step(b, want).has_value());
    EXPECT_EQ(got, want);
    std::vector<int32_t> greedy;
    ASSERT_TRUE((*owned)->step_argmax(b, greedy).has_value());
    std::vector<int32_t> host_greedy;
    argmax_rows(want, (*plain)->vocab_size(), host_greedy);
    EXPECT_EQ(greedy, host_greedy);
    owned->reset();
    EXPECT_GT(log.calls.load(), 10);
    EXPECT_EQ(log.off_thread.load(), 0);
    EXPECT_TRUE(log.destroyed_on_owner.load());
}

}  // namespace
}  // namespace helexa::engine
