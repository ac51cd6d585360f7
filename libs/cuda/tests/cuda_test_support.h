// Shared helpers of the GPU tests: a CPU and a CUDA backend side by side, bf16-representable
// random inputs uploaded to both, NaN-poisoned CUDA outputs and the relative-error check of
// METHOD.md (||got - want|| / ||want||, NaN never passes).
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "helexa/cuda/cuda_backend.h"
#include "helexa/engine/backend.h"
#include "helexa/engine/cpu_backend.h"

namespace helexa::cuda::testing {

using engine::Backend;
using engine::DType;
using engine::Tensor;

inline uint16_t to_bf16_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    u += 0x7FFF + ((u >> 16) & 1);  // round to nearest even
    return static_cast<uint16_t>(u >> 16);
}

inline float from_bf16_bits(uint16_t b) {
    uint32_t u = static_cast<uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// n bf16 values uniform in [-scale, scale], for tests that drive a kernel or cuBLASLt directly.
inline std::vector<uint16_t> random_bf16(size_t n, std::mt19937& rng, float scale = 1.0f) {
    std::uniform_real_distribution<float> u(-scale, scale);
    std::vector<uint16_t> v(n);
    for (auto& e : v) {
        e = to_bf16_bits(u(rng));
    }
    return v;
}

// Device memory for the life of a test scope (tests that bypass the backend's allocator).
struct DeviceBuffer {
    void* p = nullptr;
    explicit DeviceBuffer(size_t bytes) { EXPECT_EQ(cudaMalloc(&p, bytes), cudaSuccess); }
    ~DeviceBuffer() { cudaFree(p); }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

// METHOD.md's bound on the relative L2 error of a bf16 result against the CPU backend's.
inline constexpr double kBf16Tol = 1e-2;

// ||got - want|| / ||want||; +inf when got has a NaN/inf or the sizes differ.
inline double rel_error(const std::vector<float>& got, const std::vector<float>& want) {
    if (got.size() != want.size()) {
        return INFINITY;
    }
    double num = 0;
    double den = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        if (!std::isfinite(got[i])) {
            return INFINITY;
        }
        const double d = static_cast<double>(got[i]) - want[i];
        num += d * d;
        den += static_cast<double>(want[i]) * want[i];
    }
    return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

class CudaVsCpu : public ::testing::Test {
protected:
    void SetUp() override {
        register_cuda_backend();
        if (list_devices().empty()) {
            GTEST_SKIP() << "no CUDA device (GPU tests run on the GPU host: scripts/gpu/cuda_run.sh)";
        }
        auto g = engine::make_backend({.kind = "cuda"});
        ASSERT_TRUE(g.has_value()) << g.error().full_message();
        gpu_ = std::move(*g);
        cpu_ = engine::make_cpu_backend(4);
        exec_ = gpu_->executor();
        ASSERT_TRUE(exec_);
    }
    void TearDown() override {
        if (gpu_) {
            exec_->run([&] { gpu_.reset(); });
        }
    }

    // Runs fn on the device's owner thread.
    template <typename F>
    void on_gpu(F&& fn) {
        exec_->run([&] { fn(); });
    }

    // n values uniform in [-scale, scale], rounded to bf16 so both backends see the same inputs.
    std::vector<float> random(size_t n, float scale = 1.0f) {
        std::uniform_real_distribution<float> d(-scale, scale);
        std::vector<float> v(n);
        for (auto& x : v) {
            x = from_bf16_bits(to_bf16_bits(d(rng_)));
        }
        return v;
    }

    struct Pair {
        Tensor cpu;
        Tensor gpu;
    };

    // The same values as an f32 CPU tensor and a bf16 CUDA tensor [rows, cols].
    Pair upload(const std::vector<float>& v, int64_t rows, int64_t cols) {
        Pair p;
        auto c = cpu_->alloc(DType::kF32, rows, cols);
        EXPECT_TRUE(c.has_value());
        EXPECT_TRUE(cpu_->copy_from_host(*c, v.data()).has_value());
        p.cpu = *c;
        std::vector<uint16_t> bits(v.size());
        for (size_t i = 0; i < v.size(); ++i) {
            bits[i] = to_bf16_bits(v[i]);
        }
        on_gpu([&] {
            auto g = gpu_->alloc(DType::kBF16, rows, cols);
            EXPECT_TRUE(g.has_value());
            EXPECT_TRUE(gpu_->copy_from_host(*g, bits.data()).has_value());
            p.gpu = *g;
        });
        return p;
    }

    Pair upload_i32(const std::vector<int32_t>& v) {
        Pair p;
        const auto n = static_cast<int64_t>(v.size());
        auto c = cpu_->alloc(DType::kI32, 1, n);
        EXPECT_TRUE(cpu_->copy_from_host(*c, v.data()).has_value());
        p.cpu = *c;
        on_gpu([&] {
            auto g = gpu_->alloc(DType::kI32, 1, n);
            EXPECT_TRUE(gpu_->copy_from_host(*g, v.data()).has_value());
            p.gpu = *g;
        });
        return p;
    }

    // Output tensors: CPU f32 (zeroed) and CUDA `gpu_dtype` poisoned with NaN (all bits set), so
    // an element the kernel never writes fails the comparison.
    Pair output(int64_t rows, int64_t cols, DType gpu_dtype = DType::kBF16) {
        const std::vector<float> zeros(static_cast<size_t>(rows * cols), 0.0f);
        Pair p;
        auto c = cpu_->alloc(DType::kF32, rows, cols);
        EXPECT_TRUE(cpu_->copy_from_host(*c, zeros.data()).has_value());
        p.cpu = *c;
        on_gpu([&] {
            auto g = gpu_->alloc(gpu_dtype, rows, cols);
            EXPECT_TRUE(g.has_value());
            const std::vector<uint8_t> nan_bytes(
                static_cast<size_t>(rows * cols * engine::dtype_size(gpu_dtype)), 0xFF);
            EXPECT_TRUE(gpu_->copy_from_host(*g, nan_bytes.data()).has_value());
            p.gpu = *g;
        });
        return p;
    }

    std::vector<float> read_cpu(const Tensor& t) {
        std::vector<float> v(static_cast<size_t>(t.numel()));
        EXPECT_TRUE(cpu_->copy_to_host(v.data(), t).has_value());
        return v;
    }

    std::vector<float> read_gpu(const Tensor& t) {
        std::vector<float> v(static_cast<size_t>(t.numel()));
        on_gpu([&] {
            if (t.dtype == DType::kF32) {
                auto st = gpu_->copy_to_host(v.data(), t);
                EXPECT_TRUE(st.has_value()) << st.error().full_message();
                return;
            }
            std::vector<uint16_t> bits(v.size());
            auto st = gpu_->copy_to_host(bits.data(), t);
            EXPECT_TRUE(st.has_value()) << st.error().full_message();
            for (size_t i = 0; i < v.size(); ++i) {
                v[i] = from_bf16_bits(bits[i]);
            }
        });
        return v;
    }

    std::unique_ptr<Backend> cpu_;
    std::unique_ptr<Backend> gpu_;
    std::shared_ptr<engine::DeviceExecutor> exec_;
    std::mt19937 rng_{1234};
};

}  // namespace helexa::cuda::testing
