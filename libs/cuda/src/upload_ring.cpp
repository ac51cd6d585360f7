#include "upload_ring.h"

#include <cstring>

namespace helexa::cuda {

namespace {

constexpr size_t kAlign = 256;  // each region starts where a DMA likes it

}  // namespace

UploadRing::~UploadRing() {
    for (const InFlight& f : in_flight_) {
        cudaEventSynchronize(f.done);
        cudaEventDestroy(f.done);
    }
    for (cudaEvent_t e : spare_events_) {
        cudaEventDestroy(e);
    }
    if (ring_ != nullptr) {
        cudaFreeHost(ring_);
    }
}

cudaError_t UploadRing::copy(void* dst, const void* host, size_t bytes, cudaStream_t stream) {
    if (bytes == 0) {
        return cudaSuccess;
    }
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    if (const cudaError_t e = cudaStreamIsCapturing(stream, &capturing); e != cudaSuccess) {
        return e;
    }
    if (bytes > kMaxCopyBytes || capturing != cudaStreamCaptureStatusNone) {
        return cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, stream);
    }
    if (ring_ == nullptr) {
        void* p = nullptr;
        if (const cudaError_t e = cudaMallocHost(&p, kRingBytes); e != cudaSuccess) {
            return e;
        }
        ring_ = static_cast<std::byte*>(p);
    }
    // The copies already done give their events back (the oldest first: one stream), so only
    // the last step or two's stay in flight.
    while (!in_flight_.empty() && cudaEventQuery(in_flight_.front().done) == cudaSuccess) {
        spare_events_.push_back(in_flight_.front().done);
        in_flight_.pop_front();
    }
    const size_t n = (bytes + kAlign - 1) / kAlign * kAlign;
    if (head_ + n > kRingBytes) {
        head_ = 0;
    }
    const size_t begin = head_;
    if (const cudaError_t e = reclaim(begin, begin + n); e != cudaSuccess) {
        return e;
    }
    std::memcpy(ring_ + begin, host, bytes);
    if (const cudaError_t e =
            cudaMemcpyAsync(dst, ring_ + begin, bytes, cudaMemcpyHostToDevice, stream);
        e != cudaSuccess) {
        return e;
    }
    cudaEvent_t done = nullptr;
    if (const cudaError_t e = event(done); e != cudaSuccess) {
        return e;
    }
    if (const cudaError_t e = cudaEventRecord(done, stream); e != cudaSuccess) {
        spare_events_.push_back(done);
        return e;
    }
    in_flight_.push_back(InFlight{begin, begin + n, done});
    head_ = begin + n;
    return cudaSuccess;
}

cudaError_t UploadRing::reclaim(size_t begin, size_t end) {
    // The newest overlapping copy: once it is done, so is every older one (one stream).
    size_t newest = in_flight_.size();
    for (size_t i = in_flight_.size(); i-- > 0;) {
        if (in_flight_[i].begin < end && begin < in_flight_[i].end) {
            newest = i;
            break;
        }
    }
    if (newest == in_flight_.size()) {
        return cudaSuccess;
    }
    if (const cudaError_t e = cudaEventSynchronize(in_flight_[newest].done); e != cudaSuccess) {
        return e;
    }
    for (size_t i = 0; i <= newest; ++i) {
        spare_events_.push_back(in_flight_.front().done);
        in_flight_.pop_front();
    }
    return cudaSuccess;
}

cudaError_t UploadRing::event(cudaEvent_t& e) {
    if (!spare_events_.empty()) {
        e = spare_events_.back();
        spare_events_.pop_back();
        return cudaSuccess;
    }
    return cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
}

}  // namespace helexa::cuda
