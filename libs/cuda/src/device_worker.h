// One thread per CUDA device, alive for the daemon's life: it makes the device current once and
// runs every task that touches the device (backend creation, weight upload, steps, frees), one at
// a time, in submission order. Other threads hand it closures and wait (CONVENTIONS.md "Threads
// and ownership").
// Thread-safety: for_device() and run() may be called from any thread; run() from the worker
// itself runs the task inline (a task may call back into code that also submits).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

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

private:
    void loop();

    int ordinal_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> tasks_;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace helexa::cuda
