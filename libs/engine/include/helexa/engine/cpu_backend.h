// The `cpu` backend: reference numerics and CPU-only hosts. f32 compute; weights stay in their
// file dtype (bf16/f16/f32) and are widened to f32 on the fly, a row or a tile at a time, so
// decode reads half the bytes of an f32 copy; 1-row tensors (norm weights, biases) are widened
// at upload. Every big operation is split over a fixed thread pool (all cores by default);
// large-batch linears run OpenBLAS sgemm per thread on column tiles (OpenBLAS itself is pinned
// to one thread so the two pools never oversubscribe).
//
// The raw kernels (cpu::matmul and friends) are public so benchmarks can build a plain loop over
// the same math and show the engine structure's overhead.
// Thread-safety: a CpuBackend / ThreadPool is driven by one thread at a time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "helexa/engine/backend.h"

namespace helexa::engine {

namespace cpu {

// A fixed pool of worker threads; parallel_for splits [0, n) into at most size() contiguous
// chunks that the caller and the workers claim one at a time, and returns when all are done.
// Workers spin briefly before sleeping so the hundreds of small dispatches of a decode step stay
// cheap; the caller never waits on a chunk nobody has started.
class ThreadPool {
public:
    explicit ThreadPool(int n_threads);  // 0 = std::thread::hardware_concurrency()
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }
    // fn(begin, end, chunk_index); chunks hold at least `grain` items (except the last).
    void parallel_for(int64_t n, int64_t grain,
                      const std::function<void(int64_t, int64_t, int)>& fn);

private:
    void worker_loop();
    // Claims and runs chunks of job `generation` until none is left (or a newer job started).
    void run_chunks(uint32_t generation);

    int n_threads_ = 1;
    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_cv_;
    std::atomic<uint64_t> generation_{0};
    std::atomic<bool> stop_{false};
    // Chunk claims of the current job: generation (32 bits) | chunk count (16) | next index (16).
    // The caller and any worker that is actually running take chunks from it, so a worker the
    // OS has not scheduled never holds the caller up (a 2-core machine shared with the client,
    // cortex and neuron's own I/O threads is the normal case, not the exception).
    std::atomic<uint64_t> claims_{0};
    std::atomic<int> done_{0};  // chunks of the current job finished
    const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
    int64_t job_n_ = 0;
};

// Widens n elements of `dtype` (f32/f16/bf16) at src to f32.
void to_f32(float* dst, const void* src, DType dtype, int64_t n);
float dot_f32(const float* a, const float* b, int64_t n);

// out[t * ldo + n] = sum_k x[t * ldx + k] * w[n, k] for t < T, n < N; w is [N, K] contiguous in
// `w_dtype`. Splits N over the pool; T >= a small threshold goes through sgemm on f32 tiles.
void matmul(ThreadPool& pool, float* out, int64_t ldo, const float* x, int64_t ldx,
            const void* w, DType w_dtype, int64_t T, int64_t N, int64_t K);

}  // namespace cpu

std::unique_ptr<Backend> make_cpu_backend(int n_threads = 0);

}  // namespace helexa::engine
