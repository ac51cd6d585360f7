#include "device_worker.h"

#include <cuda_runtime_api.h>

#include <map>

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

void DeviceWorker::run(const std::function<void()>& fn) {
    if (std::this_thread::get_id() == thread_.get_id()) {
        fn();
        return;
    }
    std::mutex done_mutex;
    std::condition_variable done_cv;
    bool done = false;
    {
        std::lock_guard lock(mutex_);
        tasks_.emplace_back([&] {
            fn();
            std::lock_guard done_lock(done_mutex);
            done = true;
            done_cv.notify_one();
        });
    }
    cv_.notify_one();
    std::unique_lock done_lock(done_mutex);
    done_cv.wait(done_lock, [&] { return done; });
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
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
            if (tasks_.empty()) {
                return;
            }
            task = std::move(tasks_.front());
            tasks_.pop_front();
        }
        task();
    }
}

}  // namespace helexa::cuda
