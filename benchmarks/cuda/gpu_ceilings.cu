// gpu_ceilings: the two ceilings every GPU performance figure is reported against (GPU.md
// "Measuring"), measured on the card the benchmark runs on, in the same run:
//   copy bandwidth  device-to-device cudaMemcpyAsync, bytes read + written per second
//                   (the decode roofline: bandwidth / weight bytes read per token);
//   bf16 GEMM rate  cuBLAS bf16 x bf16 -> bf16 with f32 accumulation, 2*M*N*K / time
//                   (the prefill roofline).
// Also, for the sampled-serving path (a step copies every sampled row's f32 logits to the host):
// device-to-host copies of one 32-row logits block of a 151,936-token vocabulary (19.4 MB) into
// pageable memory (what the engine does today) and into pinned memory, and a host memcpy of the
// same block (what staging through a pinned buffer would add).
// Warm-up first, then the median of several timed repetitions (CUDA events). Prints a short
// table and one JSON line (for scripts) last.
//
//   gpu_ceilings [--device N] [--copy-mib 2048] [--gemm 8192] [--reps 20]
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

#define CHECK_CUDA(expr)                                                                      \
    do {                                                                                      \
        cudaError_t err_ = (expr);                                                            \
        if (err_ != cudaSuccess) {                                                            \
            std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr,                \
                         cudaGetErrorString(err_));                                           \
            std::exit(1);                                                                     \
        }                                                                                     \
    } while (0)

#define CHECK_CUBLAS(expr)                                                                    \
    do {                                                                                      \
        cublasStatus_t st_ = (expr);                                                          \
        if (st_ != CUBLAS_STATUS_SUCCESS) {                                                   \
            std::fprintf(stderr, "%s:%d: %s: cuBLAS status %d\n", __FILE__, __LINE__, #expr,  \
                         static_cast<int>(st_));                                              \
            std::exit(1);                                                                     \
        }                                                                                     \
    } while (0)

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Times `reps` launches of `work` one by one; returns the median seconds per launch.
template <typename Work>
double time_median(cudaStream_t stream, int reps, Work work) {
    cudaEvent_t start, stop;
    CHECK_CUDA(cudaEventCreate(&start));
    CHECK_CUDA(cudaEventCreate(&stop));
    for (int i = 0; i < 3; ++i) {
        work();  // warm-up: clocks up, cuBLAS picks and loads its kernel
    }
    CHECK_CUDA(cudaStreamSynchronize(stream));
    std::vector<double> seconds;
    for (int i = 0; i < reps; ++i) {
        CHECK_CUDA(cudaEventRecord(start, stream));
        work();
        CHECK_CUDA(cudaEventRecord(stop, stream));
        CHECK_CUDA(cudaEventSynchronize(stop));
        float ms = 0;
        CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
        seconds.push_back(ms / 1e3);
    }
    CHECK_CUDA(cudaEventDestroy(start));
    CHECK_CUDA(cudaEventDestroy(stop));
    return median(seconds);
}

__global__ void fill_bf16(__nv_bfloat16* p, size_t n, uint32_t seed) {
    for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
         i += size_t{gridDim.x} * blockDim.x) {
        uint32_t x = static_cast<uint32_t>(i) * 2654435761u ^ seed;
        x ^= x >> 13;
        x *= 0x5bd1e995u;
        x ^= x >> 15;
        p[i] = __float2bfloat16((static_cast<float>(x & 0xffff) / 65536.0f - 0.5f) * 0.1f);
    }
}

}  // namespace

int main(int argc, char** argv) {
    int device = 0;
    size_t copy_mib = 2048;
    int gemm = 8192;
    int reps = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--device") {
            device = std::atoi(argv[i + 1]);
        } else if (a == "--copy-mib") {
            copy_mib = std::strtoull(argv[i + 1], nullptr, 10);
        } else if (a == "--gemm") {
            gemm = std::atoi(argv[i + 1]);
        } else if (a == "--reps") {
            reps = std::max(1, std::atoi(argv[i + 1]));
        } else {
            std::fprintf(stderr, "unknown option %s\n", a.c_str());
            return 2;
        }
    }
    CHECK_CUDA(cudaSetDevice(device));
    cudaDeviceProp prop{};
    CHECK_CUDA(cudaGetDeviceProperties(&prop, device));
    cudaStream_t stream;
    CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));

    // Copy bandwidth: large enough to stream past the L2 (50-60 MB on Hopper) many times over.
    const size_t bytes = copy_mib << 20;
    void* src = nullptr;
    void* dst = nullptr;
    CHECK_CUDA(cudaMalloc(&src, bytes));
    CHECK_CUDA(cudaMalloc(&dst, bytes));
    CHECK_CUDA(cudaMemsetAsync(src, 1, bytes, stream));
    const double copy_s = time_median(stream, reps, [&] {
        CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
    });
    const double copy_gbs = 2.0 * static_cast<double>(bytes) / copy_s / 1e9;
    CHECK_CUDA(cudaFree(src));
    CHECK_CUDA(cudaFree(dst));

    // bf16 GEMM rate, square M = N = K, f32 accumulation, tensor cores.
    const size_t n = static_cast<size_t>(gemm);
    __nv_bfloat16 *a = nullptr, *b = nullptr, *c = nullptr;
    CHECK_CUDA(cudaMalloc(&a, n * n * sizeof(__nv_bfloat16)));
    CHECK_CUDA(cudaMalloc(&b, n * n * sizeof(__nv_bfloat16)));
    CHECK_CUDA(cudaMalloc(&c, n * n * sizeof(__nv_bfloat16)));
    fill_bf16<<<1024, 256, 0, stream>>>(a, n * n, 1u);
    fill_bf16<<<1024, 256, 0, stream>>>(b, n * n, 2u);
    CHECK_CUDA(cudaGetLastError());
    cublasHandle_t handle;
    CHECK_CUBLAS(cublasCreate(&handle));
    CHECK_CUBLAS(cublasSetStream(handle, stream));
    const float alpha = 1.0f;
    const float beta = 0.0f;
    const double gemm_s = time_median(stream, reps, [&] {
        CHECK_CUBLAS(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, gemm, gemm, gemm, &alpha, a,
                                  CUDA_R_16BF, gemm, b, CUDA_R_16BF, gemm, &beta, c, CUDA_R_16BF,
                                  gemm, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    });
    const double tflops = 2.0 * static_cast<double>(n) * n * n / gemm_s / 1e12;
    CHECK_CUBLAS(cublasDestroy(handle));
    CHECK_CUDA(cudaFree(a));
    CHECK_CUDA(cudaFree(b));
    CHECK_CUDA(cudaFree(c));
    // Logits to the host: 32 rows x 151,936 f32.
    const size_t logits_bytes = size_t{32} * 151936 * sizeof(float);
    void* dev_logits = nullptr;
    void* pinned = nullptr;
    CHECK_CUDA(cudaMalloc(&dev_logits, logits_bytes));
    CHECK_CUDA(cudaMemsetAsync(dev_logits, 0, logits_bytes, stream));
    CHECK_CUDA(cudaMallocHost(&pinned, logits_bytes));
    std::vector<char> pageable(logits_bytes, 1);  // touched, as a reused step buffer is
    const double pageable_s = time_median(stream, reps, [&] {
        CHECK_CUDA(cudaMemcpyAsync(pageable.data(), dev_logits, logits_bytes,
                                   cudaMemcpyDeviceToHost, stream));
    });
    const double pinned_s = time_median(stream, reps, [&] {
        CHECK_CUDA(cudaMemcpyAsync(pinned, dev_logits, logits_bytes, cudaMemcpyDeviceToHost,
                                   stream));
    });
    std::vector<double> memcpy_s;
    for (int i = 0; i < reps; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        std::memcpy(pageable.data(), pinned, logits_bytes);
        memcpy_s.push_back(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const double host_memcpy_s = median(memcpy_s);
    CHECK_CUDA(cudaFreeHost(pinned));
    CHECK_CUDA(cudaFree(dev_logits));
    CHECK_CUDA(cudaStreamDestroy(stream));
    auto gbs = [](size_t b, double sec) { return static_cast<double>(b) / sec / 1e9; };

    std::printf("card            %s (sm_%d%d, %d SMs, %.1f GiB)\n", prop.name, prop.major,
                prop.minor, prop.multiProcessorCount,
                static_cast<double>(prop.totalGlobalMem) / (1 << 30));
    std::printf("copy bandwidth  %.0f GB/s  (D2D %zu MiB, read + written, median of %d)\n",
                copy_gbs, copy_mib, reps);
    std::printf("bf16 GEMM       %.0f TFLOP/s  (%d^3, f32 accumulation, median of %d)\n", tflops,
                gemm, reps);
    std::printf("logits to host  %.2f ms pageable (%.1f GB/s), %.2f ms pinned (%.1f GB/s), "
                "host memcpy %.2f ms  (32 x 151,936 f32, median of %d)\n",
                pageable_s * 1e3, gbs(logits_bytes, pageable_s), pinned_s * 1e3,
                gbs(logits_bytes, pinned_s), host_memcpy_s * 1e3, reps);
    std::printf("{\"card\": \"%s\", \"copy_gb_per_s\": %.1f, \"bf16_gemm_tflops\": %.1f, "
                "\"gemm_n\": %d, \"copy_mib\": %zu, \"d2h_pageable_gb_per_s\": %.1f, "
                "\"d2h_pinned_gb_per_s\": %.1f, \"host_memcpy_gb_per_s\": %.1f}\n",
                prop.name, copy_gbs, tflops, gemm, copy_mib, gbs(logits_bytes, pageable_s),
                gbs(logits_bytes, pinned_s), gbs(logits_bytes, host_memcpy_s));
    return 0;
}
