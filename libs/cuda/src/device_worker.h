// One thread per CUDA device, alive for the daemon's life: it makes the device current once and
// runs every task that touches the device (backend creation, weight upload, steps, frees), one at
// a time, in submission order. Other threads hand it closures and wait (CONVENTIONS.md "Threads
// and ownership").
// Device faults: a sticky error (cuda_status.h) leaves the device's context unusable for every
// backend on it, not just the one that saw it. The worker records it (mark_faulted); the next
// backend created on the device first tries to reset it (cudaDeviceReset) once every backend of
// the faulted context is gone (each holds references to it: the reset cannot destroy it before),
// and starts a new generation: a backend of an older generation must never touch the device
// again (its pointers may name the new generation's memory). Where the driver does not let a
// process replace a faulted context (an H200 on driver 580 does not), creation fails with
// kCudaUnavailable and the engine asks for a process restart (docs/design/fault-recovery.md).
// Handoffs spin briefly before sleeping (device_worker.cpp says why).
// Thread-safety: for_device() and run() may be called from any thread; run() from the worker
// itself runs the task inline (a task may call back into code that also submits). The fault
// state is atomic; reset_if_faulted() runs on the worker only.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include <cuda_runtime_api.h>

#include "helexa/engine/backend.h"

namespace helexa::cuda {

class DeviceWorker final : public engine::DeviceExecutor {
public:
    // The worker of device `ordinal`, started on first use.
    static std::shared_ptr<DeviceWorker> for_device(int ordinal);

    explicit DeviceWorker(int ordinal);
    ~DeviceWorker() override;
    DeviceWorker(const DeviceWorker&) = delete;
    DeviceWorker& operator=(const DeviceWorker&) = delete;

    int ordinal() const { return ordinal_; }
    void run(const std::function<void()>& fn) override;

    // Backends living on the device (a reset must wait until every one of them is gone: each
    // holds references to the context, which then cannot be destroyed).
    void attach() { live_.fetch_add(1); }
    void detach() { live_.fetch_sub(1); }
    int live() const { return live_.load(); }

    void mark_faulted() { faulted_.store(true); }
    bool faulted() const { return faulted_.load(); }
    // Bumped by every reset.
    uint64_t generation() const { return generation_.load(); }
    // On the worker: when faulted and no backend is left on the device, cudaDeviceReset and make
    // the device current again. Returns the error that kept the device from coming back
    // (cudaErrorNotReady while backends are still attached), or cudaSuccess.
    cudaError_t reset_if_faulted();

private:
    void loop();

    int ordinal_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> tasks_;
    std::atomic<int> queued_{0};  // tasks_.size(), readable without the mutex (the idle spin)
    bool stop_ = false;
    std::atomic<bool> faulted_{false};
    std::atomic<int> live_{0};
    std::atomic<uint64_t> generation_{0};
    std::thread thread_;
};

}  // namespace helexa::cuda
