// CPU kernels: the thread pool, dtype widening, dot products and the threaded matmul.
// NOTE: the AVX2 paths are selected at run time (__builtin_cpu_supports) so one binary runs on
// any x86-64 host and still uses AVX2/FMA where present.
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "helexa/engine/cpu_backend.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define HELEXA_X86 1
#endif

namespace helexa::engine::cpu {

// ---- thread pool ----------------------------------------------------------------------------

ThreadPool::ThreadPool(int n_threads) {
    if (n_threads <= 0) {
        n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    }
    n_threads_ = std::min(n_threads, 0xffff);
    for (int i = 1; i < n_threads_; ++i) {
        workers_.emplace_back([this] { worker_loop(); });
    }
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_.store(true);
        generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& w : workers_) {
        w.join();
    }
}

namespace {

constexpr uint64_t pack_claims(uint32_t generation, uint32_t chunks, uint32_t next) {
    return (uint64_t{generation} << 32) | (uint64_t{chunks} << 16) | next;
}

}  // namespace

void ThreadPool::run_chunks(uint32_t generation) {
    for (;;) {
        uint64_t c = claims_.load(std::memory_order_acquire);
        uint32_t index = 0;
        uint32_t chunks = 0;
        do {
            chunks = static_cast<uint32_t>(c >> 16) & 0xffffu;
            index = static_cast<uint32_t>(c) & 0xffffu;
            if (static_cast<uint32_t>(c >> 32) != generation || index >= chunks) {
                return;
            }
        } while (!claims_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel));
        // A claimed chunk keeps its job alive: the caller returns only when every chunk is done,
        // so job_ and job_n_ (written before the claims were published) are this job's.
        const int64_t n = job_n_;
        (*job_)(n * index / chunks, n * (index + 1) / chunks, static_cast<int>(index));
        if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == static_cast<int>(chunks)) {
            std::lock_guard<std::mutex> lock(mutex_);
            done_cv_.notify_all();
        }
    }
}

void ThreadPool::worker_loop() {
    uint64_t seen = 0;
    for (;;) {
        // Spin briefly (decode dispatches arrive microseconds apart), then sleep: a long spin
        // takes the core from the thread that would post the next job.
        uint64_t gen = generation_.load(std::memory_order_acquire);
        for (int spin = 0; gen == seen && spin < 2000; ++spin) {
#if HELEXA_X86
            _mm_pause();
#endif
            gen = generation_.load(std::memory_order_acquire);
        }
        if (gen == seen) {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return generation_.load() != seen; });
            gen = generation_.load();
        }
        seen = gen;
        if (stop_.load()) {
            return;
        }
        run_chunks(static_cast<uint32_t>(gen));
    }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t, int)>& fn) {
    if (n <= 0) {
        return;
    }
    grain = std::max<int64_t>(1, grain);
    const int chunks = static_cast<int>(std::min<int64_t>(n_threads_, (n + grain - 1) / grain));
    if (chunks <= 1) {
        fn(0, n, 0);
        return;
    }
    uint32_t gen = 0;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        job_ = &fn;
        job_n_ = n;
        done_.store(0, std::memory_order_relaxed);
        gen = static_cast<uint32_t>(generation_.load() + 1);
        claims_.store(pack_claims(gen, static_cast<uint32_t>(chunks), 0),
                      std::memory_order_release);
        generation_.fetch_add(1, std::memory_order_acq_rel);
    }
    wake_.notify_all();
    run_chunks(gen);  // the caller works too, and takes whatever no worker has started
    for (int spin = 0; done_.load(std::memory_order_acquire) != chunks && spin < 2000; ++spin) {
#if HELEXA_X86
        _mm_pause();
#endif
    }
    if (done_.load(std::memory_order_acquire) != chunks) {
        std::unique_lock<std::mutex> lock(mutex_);
        done_cv_.wait(lock, [&] { return done_.load() == chunks; });
    }
}

// ---- conversions ----------------------------------------------------------------------------

namespace {

float half_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits = 0;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: renormalise
            exp = 127 - 15 + 1;
            while ((mant & 0x400u) == 0) {
                mant <<= 1;
                --exp;
            }
            mant &= 0x3ffu;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

const std::vector<float>& half_table() {
    static const std::vector<float> table = [] {
        std::vector<float> t(65536);
        for (uint32_t i = 0; i < 65536; ++i) {
            t[i] = half_to_float(static_cast<uint16_t>(i));
        }
        return t;
    }();
    return table;
}

#if HELEXA_X86
bool has_avx2() {
    static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return yes;
}

__attribute__((target("avx2,fma"))) void bf16_to_f32_avx2(float* dst, const uint16_t* src,
                                                           int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
        __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(w));
    }
    for (; i < n; ++i) {
        uint32_t bits = static_cast<uint32_t>(src[i]) << 16;
        std::memcpy(dst + i, &bits, 4);
    }
}

__attribute__((target("avx2,fma"))) float dot_avx2(const float* a, const float* b, int64_t n) {
    __m256 acc0 = _mm256_setzero_ps();
    __m256 acc1 = _mm256_setzero_ps();
    __m256 acc2 = _mm256_setzero_ps();
    __m256 acc3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    }
    __m256 acc = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
    __m128 lo = _mm256_castps256_ps128(acc);
    __m128 hi = _mm256_extractf128_ps(acc, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_hadd_ps(lo, lo);
    lo = _mm_hadd_ps(lo, lo);
    float sum = _mm_cvtss_f32(lo);
    for (; i < n; ++i) {
        sum += a[i] * b[i];
    }
    return sum;
}
#endif

}  // namespace

void to_f32(float* dst, const void* src, DType dtype, int64_t n) {
    switch (dtype) {
        case DType::kF32:
            std::memcpy(dst, src, static_cast<size_t>(n) * 4);
            return;
        case DType::kBF16: {
            const auto* s = static_cast<const uint16_t*>(src);
#if HELEXA_X86
            if (has_avx2()) {
                bf16_to_f32_avx2(dst, s, n);
                return;
            }
#endif
            for (int64_t i = 0; i < n; ++i) {
                uint32_t bits = static_cast<uint32_t>(s[i]) << 16;
                std::memcpy(dst + i, &bits, 4);
            }
            return;
        }
        case DType::kF16: {
            const auto* s = static_cast<const uint16_t*>(src);
            const float* table = half_table().data();
            for (int64_t i = 0; i < n; ++i) {
                dst[i] = table[s[i]];
            }
            return;
        }
        case DType::kI32: {
            const auto* s = static_cast<const int32_t*>(src);
            for (int64_t i = 0; i < n; ++i) {
                dst[i] = static_cast<float>(s[i]);
            }
            return;
        }
    }
}

float dot_f32(const float* a, const float* b, int64_t n) {
#if HELEXA_X86
    if (has_avx2()) {
        return dot_avx2(a, b, n);
    }
#endif
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; ++j) {
            acc[j] += a[i + j] * b[i + j];
        }
    }
    float sum = 0;
    for (float v : acc) {
        sum += v;
    }
    for (; i < n; ++i) {
        sum += a[i] * b[i];
    }
    return sum;
}

// ---- matmul ---------------------------------------------------------------------------------

namespace {

// Batches of at least this many rows go through sgemm; below it a row-dot kernel streams the
// weights once (decode is bandwidth bound, and sgemm's packing does not pay for a few rows).
constexpr int64_t kGemmMinRows = 6;
// Output columns widened per sgemm call on the non-f32 path (tile = kTileN x K floats).
constexpr int64_t kTileN = 64;

void ensure_blas_single_threaded() {
    static const bool once = [] {
        openblas_set_num_threads(1);
        return true;
    }();
    (void)once;
}

}  // namespace

void matmul(ThreadPool& pool, float* out, int64_t ldo, const float* x, int64_t ldx,
            const void* w, DType w_dtype, int64_t T, int64_t N, int64_t K) {
    if (T <= 0 || N <= 0) {
        return;
    }
    const int64_t esize = dtype_size(w_dtype);
    const auto* wbytes = static_cast<const std::byte*>(w);
    if (T >= kGemmMinRows) {
        ensure_blas_single_threaded();
        pool.parallel_for(N, 16, [&](int64_t n0, int64_t n1, int) {
            if (w_dtype == DType::kF32) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(T),
                            static_cast<int>(n1 - n0), static_cast<int>(K), 1.0f, x,
                            static_cast<int>(ldx),
                            reinterpret_cast<const float*>(wbytes + n0 * K * esize),
                            static_cast<int>(K), 0.0f, out + n0, static_cast<int>(ldo));
                return;
            }
            std::vector<float> tile(static_cast<size_t>(std::min(kTileN, n1 - n0) * K));
            for (int64_t t0 = n0; t0 < n1; t0 += kTileN) {
                const int64_t nb = std::min(kTileN, n1 - t0);
                to_f32(tile.data(), wbytes + t0 * K * esize, w_dtype, nb * K);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(T),
                            static_cast<int>(nb), static_cast<int>(K), 1.0f, x,
                            static_cast<int>(ldx), tile.data(), static_cast<int>(K), 0.0f,
                            out + t0, static_cast<int>(ldo));
            }
        });
        return;
    }
    pool.parallel_for(N, 8, [&](int64_t n0, int64_t n1, int) {
        std::vector<float> row(w_dtype == DType::kF32 ? 0 : static_cast<size_t>(K));
        for (int64_t n = n0; n < n1; ++n) {
            const float* wr = nullptr;
            if (w_dtype == DType::kF32) {
                wr = reinterpret_cast<const float*>(wbytes + n * K * esize);
            } else {
                to_f32(row.data(), wbytes + n * K * esize, w_dtype, K);
                wr = row.data();
            }
            for (int64_t t = 0; t < T; ++t) {
                out[t * ldo + n] = dot_f32(x + t * ldx, wr, K);
            }
        }
    });
}

}  // namespace helexa::engine::cpu
