// Small host-to-device copies (a step's metadata, its feed maps, its packed draws) from
// page-locked memory, so that enqueueing them never waits for the device.
//
// Why: cudaMemcpyAsync from pageable memory must first stage the bytes into pinned memory, and
// the driver may synchronise with the stream to do so (CUDA's "API synchronization behavior").
// With overlapped decoding the next step is launched while the last one still runs; a copy that
// waits for the stream holds the host until the device is idle, and the device then waits for
// the rest of the launch. Each copy here is the caller's bytes copied into a region of one
// page-locked ring, then an asynchronous copy from there; an event after it marks when the
// region may be written again.
//
// Regions are handed out in ring order and the copies run in stream order, so before a region
// is reused the newest earlier copy that overlaps it is waited for (in practice long done: the
// ring holds many steps' uploads). Not for use while the stream is capturing a graph (a captured
// copy would read the region again at every replay, after it was reused).
// Thread-safety: owned and driven by the device's worker thread.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <deque>
#include <vector>

namespace helexa::cuda {

class UploadRing {
public:
    // Copies larger than this go straight from the caller's memory (weights at load time).
    static constexpr size_t kMaxCopyBytes = size_t{2} << 20;
    static constexpr size_t kRingBytes = size_t{8} << 20;

    UploadRing() = default;
    ~UploadRing();
    UploadRing(const UploadRing&) = delete;
    UploadRing& operator=(const UploadRing&) = delete;

    // dst (device) <- host[0, bytes) on `stream`; the caller may reuse `host` on return.
    // Copies above kMaxCopyBytes, and every copy while `stream` captures a graph, go straight
    // from `host` as pageable copies.
    cudaError_t copy(void* dst, const void* host, size_t bytes, cudaStream_t stream);

private:
    struct InFlight {
        size_t begin;
        size_t end;
        cudaEvent_t done;
    };
    // Waits for every in-flight copy that overlaps [begin, end) and forgets those and all older.
    cudaError_t reclaim(size_t begin, size_t end);
    cudaError_t event(cudaEvent_t& e);

    std::byte* ring_ = nullptr;  // kRingBytes page-locked, on first use
    size_t head_ = 0;            // where the next region starts
    std::deque<InFlight> in_flight_;
    std::vector<cudaEvent_t> spare_events_;
};

}  // namespace helexa::cuda
