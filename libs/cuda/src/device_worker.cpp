#include "device_worker.h"

#include <cuda_runtime_api.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

namespace helexa::cuda {

std::shared_ptr<DeviceWorker> DeviceWorker::for_device(int ordinal) {
    static std::mutex mutex;
    // Never destroyed before exit: a device's worker outlives every model loaded on it.
    static auto* workers = new std::map<int, std::shared_ptr<DeviceWorker>>();
    std::lock_guard lock(mutex);
    auto& w = (*workers)[ordinal];
    if (!w) {
        w = std::make_shared<DeviceWorker>(ordinal);
    }
    return w;
}

DeviceWorker::DeviceWorker(int ordinal) : ordinal_(ordinal) {
    thread_ = std::thread([this] { loop(); });
}

DeviceWorker::~DeviceWorker() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
}

namespace {

// The handoff latency is on every decode step's path (a step is submitted, runs for 1-5 ms, and
// its caller submits the next within microseconds), and a futex wake-up costs tens of
// microseconds on the GPU hosts' sandboxed kernel (gVisor): a measured 60-150 us per step, 3-6%
// of a small model's step. So both sides spin (yielding) before they sleep: the caller for up to
// kCallerSpin while its task runs, the worker for up to kWorkerSpin for the next task.
// HELEXA_DEVICE_WORKER_SPIN=0 makes both block at once (A/B measurements, hosts short of cores).
constexpr auto kCallerSpin = std::chrono::milliseconds(20);
constexpr auto kWorkerSpin = std::chrono::microseconds(500);

bool spin_enabled() {
    static const bool enabled = [] {
        const char* env = std::getenv("HELEXA_DEVICE_WORKER_SPIN");
        return env == nullptr || std::strcmp(env, "0") != 0;
    }();
    return enabled;
}

// Spins (yielding) until ready() or the time is up; true when ready() held.
template <typename Ready>
bool spin_until(Ready ready, std::chrono::steady_clock::duration limit) {
    if (!spin_enabled()) {
        return ready();
    }
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!ready()) {
        if (std::chrono::steady_clock::now() >= until) {
            return false;
        }
        std::this_thread::yield();
    }
    return true;
}

// One run() call's completion, shared by the caller and the queued task (the task may finish
// after a spinning caller has already returned, so it must not live on the caller's stack).
struct Completion {
    std::atomic<bool> done{false};
    std::mutex mutex;
    std::condition_variable cv;
};

}  // namespace

void DeviceWorker::run(const std::function<void()>& fn) {
    if (std::this_thread::get_id() == thread_.get_id()) {
        fn();
        return;
    }
    auto completion = std::make_shared<Completion>();
    {
        std::lock_guard lock(mutex_);
        tasks_.emplace_back([&fn, completion] {
            fn();
            std::lock_guard done_lock(completion->mutex);
            completion->done.store(true, std::memory_order_release);
            completion->cv.notify_one();
        });
        queued_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_one();
    const auto done = [&] { return completion->done.load(std::memory_order_acquire); };
    if (spin_until(done, kCallerSpin)) {
        return;
    }
    std::unique_lock done_lock(completion->mutex);
    completion->cv.wait(done_lock, done);
}

cudaError_t DeviceWorker::reset_if_faulted() {
    if (!faulted_.load()) {
        return cudaSuccess;
    }
    if (live_.load() > 0) {
        return cudaErrorNotReady;  // the caller says which backends must go first
    }
    // Destroys the context and every allocation, stream, graph and handle made in it. Its own
    // return value may repeat the fault that got us here, so success is judged by whether a new
    // context comes up and answers.
    (void)cudaDeviceReset();
    (void)cudaGetLastError();
    generation_.fetch_add(1);
    // On the H200 (driver 580) the new context never comes up after a sticky error
    // (cudaErrorDevicesUnavailable, retried for 3 s, compute mode default), as NVIDIA documents:
    // only the owning process exiting gives the device back. The engine then asks for a process
    // restart (LocalEngineOptions::on_device_lost); a driver that can reset in-process still
    // gets the device back here.
    cudaError_t err = cudaSetDevice(ordinal_);
    if (err == cudaSuccess) {
        err = cudaFree(nullptr);  // creates the new context
    }
    if (err == cudaSuccess) {
        err = cudaDeviceSynchronize();
    }
    if (err == cudaSuccess) {
        faulted_.store(false);
    } else {
        (void)cudaGetLastError();
    }
    return err;
}

void DeviceWorker::loop() {
    // The device is current on this thread for its whole life; the result is checked by the
    // first task that uses the device (backend creation reports an unusable ordinal).
    (void)cudaSetDevice(ordinal_);
    for (;;) {
        std::function<void()> task;
        (void)spin_until([&] { return queued_.load(std::memory_order_acquire) > 0; },
                         kWorkerSpin);
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
            if (tasks_.empty()) {
                return;
            }
            task = std::move(tasks_.front());
            tasks_.pop_front();
            queued_.fetch_sub(1, std::memory_order_relaxed);
        }
        task();
    }
}

}  // namespace helexa::cuda
