// Fused q/k/v epilogue (libs/kernels qkv_epilogue.h) against the five launchers it replaces
// (rms_norm_heads q/k, rope q/k, kv_write): on random inputs the fused launch must give
// bit-identical q/k in place, K and V pools and bad-slot flag (pools are pre-filled with random
// bits, so an unwritten or stray element shows as a difference). Cases cover bf16/f16/f32, head_dim
// 16..256, T = 1..300 (and one past the 65535 grid limit), partial rotary, positions up to 40000,
// no norm / no rotary, and the unaligned fallbacks (odd stride, misaligned weights or pools, a bad
// slot). Then times a Qwen3-8B-shaped layer (32 q heads, 8 kv heads, head_dim 128, bf16) for
// T = 1 and 64, the separate launchers against the fused one, plain and CUDA-graph replayed.
// Prints one line per case and "ALL OK" (exit 0) or "FAILED" (exit 1).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "helexa/kernels/norm.h"
#include "helexa/kernels/paged_kv.h"
#include "helexa/kernels/pointwise.h"
#include "helexa/kernels/qkv_epilogue.h"

#include "cuda_check.cuh"

using namespace helexa::kernels;


namespace {

constexpr float kEps = 1e-6f;
constexpr int kBlockSize = 16;

const char* type_name(ElemType t) {
    return t == ElemType::kBF16 ? "bf16" : (t == ElemType::kF16 ? "f16" : "f32");
}

// Host bytes of n random values of type t, uniform in [lo, hi).
std::vector<uint8_t> random_elems(ElemType t, int64_t n, float lo, float hi, std::mt19937& rng) {
    std::uniform_real_distribution<float> dist(lo, hi);
    const int64_t es = elem_size(t);
    std::vector<uint8_t> out(static_cast<size_t>(n * es));
    for (int64_t i = 0; i < n; ++i) {
        const float f = dist(rng);
        if (t == ElemType::kF32) {
            std::memcpy(&out[i * es], &f, 4);
        } else if (t == ElemType::kBF16) {
            const __nv_bfloat16 b = __float2bfloat16_rn(f);
            std::memcpy(&out[i * es], &b, 2);
        } else {
            const __half h = __float2half_rn(f);
            std::memcpy(&out[i * es], &h, 2);
        }
    }
    return out;
}

std::vector<uint8_t> random_bits(int64_t bytes, std::mt19937& rng) {
    std::vector<uint8_t> out(static_cast<size_t>(bytes));
    for (auto& b : out) {
        b = static_cast<uint8_t>(rng());  // pool contents are only compared, never computed on
    }
    return out;
}

// A device buffer whose returned pointer sits `off` bytes past a 256-byte boundary.
struct DevBuf {
    void* base = nullptr;
    uint8_t* ptr = nullptr;
    DevBuf(size_t bytes, size_t off) {
        CK(cudaMalloc(&base, bytes + off + 16));
        ptr = static_cast<uint8_t*>(base) + off;
    }
    ~DevBuf() { cudaFree(base); }
    DevBuf(const DevBuf&) = delete;
    DevBuf& operator=(const DevBuf&) = delete;
};

struct Case {
    const char* name;
    ElemType type;
    int hd, nh, nkv, n_tokens, rotary;
    bool norm;
    int stride_pad = 0;  // extra elements per qkv row (odd: the scalar path)
    int qw_off = 0;      // q norm weight this many elements past a 16-byte boundary
    int kw_off = 0;      // k norm weight
    int pool_off = 0;    // pools
    bool bad_slot = false;
    float scaling = 1.0f;
};

// Everything one layer's epilogue reads and writes, on the device.
struct Setup {
    ElemType type;
    int64_t es, hd, nh, nkv, n_tokens, rotary, width, stride;
    PagedKvLayout layout;
    std::vector<uint8_t> h_qkv, h_qw, h_kw, h_pool_k, h_pool_v;
    std::vector<int32_t> h_pos, h_slots;
    std::vector<float> h_inv_freq;
    DevBuf qkv, qw, kw, pos, inv_freq, slots, pool_k, pool_v, bad;
    const void* qw_ptr;  // null when the case has no norm
    const void* kw_ptr;

    Setup(const Case& c, std::mt19937& rng)
        : type(c.type),
          es(elem_size(c.type)),
          hd(c.hd),
          nh(c.nh),
          nkv(c.nkv),
          n_tokens(c.n_tokens),
          rotary(c.rotary),
          width(static_cast<int64_t>(c.nh + 2 * c.nkv) * c.hd),
          stride(width + c.stride_pad),
          layout{(c.n_tokens + 5 + kBlockSize - 1) / kBlockSize + 2, c.nkv, kBlockSize, c.hd},
          qkv(static_cast<size_t>(n_tokens * stride * es), 0),
          qw(static_cast<size_t>(hd * es), static_cast<size_t>(c.qw_off * es)),
          kw(static_cast<size_t>(hd * es), static_cast<size_t>(c.kw_off * es)),
          pos(static_cast<size_t>(n_tokens * 4), 0),
          inv_freq(static_cast<size_t>(std::max<int64_t>(rotary / 2, 1) * 4), 0),
          slots(static_cast<size_t>(n_tokens * 4), 0),
          pool_k(static_cast<size_t>(layout.layer_elems() * es),
                 static_cast<size_t>(c.pool_off * es)),
          pool_v(static_cast<size_t>(layout.layer_elems() * es),
                 static_cast<size_t>(c.pool_off * es)),
          bad(4, 0) {
        h_qkv = random_elems(type, n_tokens * stride, -3.0f, 3.0f, rng);
        h_qw = random_elems(type, hd, 0.5f, 1.5f, rng);
        h_kw = random_elems(type, hd, 0.5f, 1.5f, rng);
        h_pool_k = random_bits(layout.layer_elems() * es, rng);
        h_pool_v = random_bits(layout.layer_elems() * es, rng);
        h_pos.resize(static_cast<size_t>(n_tokens));
        std::uniform_int_distribution<int32_t> pd(0, 40000);
        for (auto& p : h_pos) {
            p = pd(rng);
        }
        h_pos[0] = 40000;
        const int64_t half = rotary / 2;
        h_inv_freq.resize(static_cast<size_t>(std::max<int64_t>(half, 1)));
        for (int64_t i = 0; i < half; ++i) {
            h_inv_freq[i] = static_cast<float>(
                1.0 / std::pow(1e6, static_cast<double>(2 * i) / static_cast<double>(rotary)));
        }
        const int64_t n_slots = layout.n_blocks * layout.block_size;
        std::vector<int32_t> perm(static_cast<size_t>(n_slots));
        std::iota(perm.begin(), perm.end(), 0);
        std::shuffle(perm.begin(), perm.end(), rng);
        h_slots.assign(perm.begin(), perm.begin() + n_tokens);
        if (c.bad_slot) {
            h_slots[n_tokens / 2] = static_cast<int32_t>(n_slots);
            h_slots[0] = -1;
        }
        qw_ptr = c.norm ? qw.ptr : nullptr;
        kw_ptr = c.norm ? kw.ptr : nullptr;
        CK(cudaMemcpy(qw.ptr, h_qw.data(), h_qw.size(), cudaMemcpyHostToDevice));
        CK(cudaMemcpy(kw.ptr, h_kw.data(), h_kw.size(), cudaMemcpyHostToDevice));
        CK(cudaMemcpy(pos.ptr, h_pos.data(), h_pos.size() * 4, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(inv_freq.ptr, h_inv_freq.data(), h_inv_freq.size() * 4,
                      cudaMemcpyHostToDevice));
        CK(cudaMemcpy(slots.ptr, h_slots.data(), h_slots.size() * 4, cudaMemcpyHostToDevice));
        reset();
    }

    // Restores the inputs (qkv, pools, flag) to their initial random contents.
    void reset() {
        CK(cudaMemcpy(qkv.ptr, h_qkv.data(), h_qkv.size(), cudaMemcpyHostToDevice));
        CK(cudaMemcpy(pool_k.ptr, h_pool_k.data(), h_pool_k.size(), cudaMemcpyHostToDevice));
        CK(cudaMemcpy(pool_v.ptr, h_pool_v.data(), h_pool_v.size(), cudaMemcpyHostToDevice));
        CK(cudaMemset(bad.ptr, 0, 4));
    }

    uint8_t* k_ptr() const { return qkv.ptr + nh * hd * es; }
    uint8_t* v_ptr() const { return qkv.ptr + (nh + nkv) * hd * es; }
    int32_t* bad_ptr() const { return reinterpret_cast<int32_t*>(bad.ptr); }

    cudaError_t run_separate(float scaling, cudaStream_t s) const {
        cudaError_t e = cudaSuccess;
        if (qw_ptr != nullptr) {
            e = launch_rms_norm_heads(qkv.ptr, stride, qw_ptr, n_tokens, nh, hd, kEps, type, s);
            if (e != cudaSuccess) return e;
            e = launch_rms_norm_heads(k_ptr(), stride, kw_ptr, n_tokens, nkv, hd, kEps, type, s);
            if (e != cudaSuccess) return e;
        }
        const auto* p = reinterpret_cast<const int32_t*>(pos.ptr);
        const auto* f = reinterpret_cast<const float*>(inv_freq.ptr);
        e = launch_rope(qkv.ptr, stride, p, f, n_tokens, nh, hd, rotary, scaling, type, s);
        if (e != cudaSuccess) return e;
        e = launch_rope(k_ptr(), stride, p, f, n_tokens, nkv, hd, rotary, scaling, type, s);
        if (e != cudaSuccess) return e;
        return launch_kv_write(pool_k.ptr, pool_v.ptr, layout, k_ptr(), stride, v_ptr(), stride,
                               reinterpret_cast<const int32_t*>(slots.ptr), n_tokens, bad_ptr(),
                               type, s);
    }

    cudaError_t run_fused(float scaling, cudaStream_t s) const {
        return launch_qkv_epilogue(
            qkv.ptr, stride, n_tokens, nh, nkv, hd, qw_ptr, kw_ptr, kEps,
            reinterpret_cast<const int32_t*>(pos.ptr), reinterpret_cast<const float*>(inv_freq.ptr),
            rotary, scaling, pool_k.ptr, pool_v.ptr, layout,
            reinterpret_cast<const int32_t*>(slots.ptr), bad_ptr(), type, s);
    }

    struct Result {
        std::vector<uint8_t> qkv, pool_k, pool_v;
        int32_t bad = 0;
    };
    Result fetch() const {
        Result r;
        r.qkv.resize(h_qkv.size());
        r.pool_k.resize(h_pool_k.size());
        r.pool_v.resize(h_pool_v.size());
        CK(cudaMemcpy(r.qkv.data(), qkv.ptr, r.qkv.size(), cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(r.pool_k.data(), pool_k.ptr, r.pool_k.size(), cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(r.pool_v.data(), pool_v.ptr, r.pool_v.size(), cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(&r.bad, bad.ptr, 4, cudaMemcpyDeviceToHost));
        return r;
    }
};

// Elements whose bytes differ; prints the first few.
int64_t count_diffs(const char* what, const std::vector<uint8_t>& ref,
                    const std::vector<uint8_t>& got, int64_t es) {
    int64_t diffs = 0;
    for (size_t i = 0; i < ref.size(); i += static_cast<size_t>(es)) {
        if (std::memcmp(&ref[i], &got[i], static_cast<size_t>(es)) != 0) {
            if (diffs < 3) {
                uint32_t a = 0;
                uint32_t b = 0;
                std::memcpy(&a, &ref[i], static_cast<size_t>(es));
                std::memcpy(&b, &got[i], static_cast<size_t>(es));
                std::printf("    %s element %zu: separate 0x%x fused 0x%x\n", what,
                            i / static_cast<size_t>(es), a, b);
            }
            ++diffs;
        }
    }
    return diffs;
}

bool run_case(const Case& c, std::mt19937& rng) {
    Setup s(c, rng);
    CK(s.run_separate(c.scaling, nullptr));
    CK(cudaDeviceSynchronize());
    const Setup::Result ref = s.fetch();
    s.reset();
    CK(s.run_fused(c.scaling, nullptr));
    CK(cudaDeviceSynchronize());
    const Setup::Result got = s.fetch();
    const int64_t dq = count_diffs("qkv", ref.qkv, got.qkv, s.es);
    const int64_t dk = count_diffs("k_pool", ref.pool_k, got.pool_k, s.es);
    const int64_t dv = count_diffs("v_pool", ref.pool_v, got.pool_v, s.es);
    const bool ok = dq == 0 && dk == 0 && dv == 0 && ref.bad == got.bad &&
                    ref.bad == (c.bad_slot ? 1 : 0) &&
                    // the case must exercise something: q/k change unless there is no work
                    ((c.norm || c.rotary > 0) == (ref.qkv != s.h_qkv));
    std::printf("%-4s %-34s hd=%-3d heads=%d/%d T=%-5d rot=%-3d norm=%d: qkv diffs %lld, "
                "K %lld, V %lld, bad %d/%d  %s\n",
                type_name(c.type), c.name, c.hd, c.nh, c.nkv, c.n_tokens, c.rotary, c.norm ? 1 : 0,
                static_cast<long long>(dq), static_cast<long long>(dk),
                static_cast<long long>(dv), ref.bad, got.bad, ok ? "OK" : "FAIL");
    return ok;
}

// Argument checks that need no data.
bool run_api_checks() {
    PagedKvLayout layout{4, 2, 16, 64};
    int32_t* dummy = nullptr;
    CK(cudaMalloc(&dummy, 1 << 20));
    void* d = dummy;
    const auto* di = reinterpret_cast<const int32_t*>(dummy);
    const auto* df = reinterpret_cast<const float*>(dummy);
    bool ok = true;
    auto expect = [&](const char* what, cudaError_t got, cudaError_t want) {
        if (got != want) {
            std::printf("api %s: got %s, want %s  FAIL\n", what, cudaGetErrorString(got),
                        cudaGetErrorString(want));
            ok = false;
        }
    };
    const auto bf = ElemType::kBF16;
    expect("T=0", launch_qkv_epilogue(d, 512, 0, 4, 2, 64, d, d, kEps, di, df, 64, 1.0f, d, d,
                                      layout, di, nullptr, bf, nullptr),
           cudaSuccess);
    expect("head_dim 8", launch_qkv_epilogue(d, 512, 1, 4, 2, 8, d, d, kEps, di, df, 8, 1.0f, d,
                                             d, PagedKvLayout{4, 2, 16, 8}, di, nullptr, bf,
                                             nullptr),
           cudaErrorInvalidValue);
    expect("head_dim 264", launch_qkv_epilogue(d, 4096, 1, 4, 2, 264, d, d, kEps, di, df, 8,
                                               1.0f, d, d, PagedKvLayout{4, 2, 16, 264}, di,
                                               nullptr, bf, nullptr),
           cudaErrorInvalidValue);
    expect("one norm weight", launch_qkv_epilogue(d, 512, 1, 4, 2, 64, d, nullptr, kEps, di, df,
                                                  64, 1.0f, d, d, layout, di, nullptr, bf,
                                                  nullptr),
           cudaErrorInvalidValue);
    expect("odd rotary", launch_qkv_epilogue(d, 512, 1, 4, 2, 64, d, d, kEps, di, df, 63, 1.0f,
                                             d, d, layout, di, nullptr, bf, nullptr),
           cudaErrorInvalidValue);
    expect("short stride", launch_qkv_epilogue(d, 511, 1, 4, 2, 64, d, d, kEps, di, df, 64, 1.0f,
                                               d, d, layout, di, nullptr, bf, nullptr),
           cudaErrorInvalidValue);
    expect("layout heads", launch_qkv_epilogue(d, 512, 1, 4, 1, 64, d, d, kEps, di, df, 64,
                                               1.0f, d, d, layout, di, nullptr, bf, nullptr),
           cudaErrorInvalidValue);
    expect("null positions", launch_qkv_epilogue(d, 512, 1, 4, 2, 64, d, d, kEps, nullptr, df,
                                                 64, 1.0f, d, d, layout, di, nullptr, bf,
                                                 nullptr),
           cudaErrorInvalidValue);
    CK(cudaDeviceSynchronize());
    CK(cudaFree(dummy));
    std::printf("api argument checks: %s\n", ok ? "OK" : "FAIL");
    return ok;
}

// Microseconds per layer step of `fn`, replayed `reps` times per graph launch (graph) or launched
// directly on the stream (plain). Median of several timed repetitions.
template <typename Fn>
double time_steps(Fn fn, bool graph, cudaStream_t stream) {
    constexpr int kReps = 100;
    constexpr int kRounds = 7;
    cudaGraphExec_t exec = nullptr;
    if (graph) {
        cudaGraph_t g = nullptr;
        CK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
        for (int i = 0; i < kReps; ++i) {
            CK(fn(stream));
        }
        CK(cudaStreamEndCapture(stream, &g));
        CK(cudaGraphInstantiate(&exec, g, 0));
        CK(cudaGraphDestroy(g));
    }
    auto launch_round = [&] {
        if (graph) {
            CK(cudaGraphLaunch(exec, stream));
        } else {
            for (int i = 0; i < kReps; ++i) {
                CK(fn(stream));
            }
        }
    };
    launch_round();  // warm-up
    launch_round();
    CK(cudaStreamSynchronize(stream));
    cudaEvent_t a;
    cudaEvent_t b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    std::vector<double> us;
    for (int r = 0; r < kRounds; ++r) {
        CK(cudaEventRecord(a, stream));
        launch_round();
        CK(cudaEventRecord(b, stream));
        CK(cudaEventSynchronize(b));
        float ms = 0.0f;
        CK(cudaEventElapsedTime(&ms, a, b));
        us.push_back(static_cast<double>(ms) * 1000.0 / kReps);
    }
    CK(cudaEventDestroy(a));
    CK(cudaEventDestroy(b));
    if (exec != nullptr) {
        CK(cudaGraphExecDestroy(exec));
    }
    std::sort(us.begin(), us.end());
    return us[us.size() / 2];
}

void time_case(int n_tokens, std::mt19937& rng) {
    const Case c{"Qwen3-8B layer", ElemType::kBF16, 128, 32, 8, n_tokens, 128, true};
    Setup s(c, rng);
    cudaStream_t stream;
    CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    auto sep = [&](cudaStream_t st) { return s.run_separate(1.0f, st); };
    auto fus = [&](cudaStream_t st) { return s.run_fused(1.0f, st); };
    const double sep_plain = time_steps(sep, false, stream);
    const double fus_plain = time_steps(fus, false, stream);
    const double sep_graph = time_steps(sep, true, stream);
    const double fus_graph = time_steps(fus, true, stream);
    // Fused traffic: read q/k/v, write q/k back, write k/v into the pools.
    const double bytes = static_cast<double>(n_tokens) * s.es *
                         static_cast<double>(s.width + (s.nh + s.nkv) * s.hd + 2 * s.nkv * s.hd);
    std::printf("time bf16 %s T=%-3d: separate %.2f us (graph %.2f us), fused %.2f us "
                "(graph %.2f us), graph speedup %.2fx, fused %.1f GB/s\n",
                c.name, n_tokens, sep_plain, sep_graph, fus_plain, fus_graph,
                sep_graph / fus_graph, bytes / (fus_graph * 1e-6) / 1e9);
    CK(cudaStreamDestroy(stream));
}

}  // namespace

int main() {
    std::mt19937 rng(1234);
    bool ok = run_api_checks();
    std::vector<Case> cases;
    for (ElemType t : {ElemType::kBF16, ElemType::kF16}) {
        cases.push_back({"full rotary", t, 16, 4, 2, 1, 16, true});
        cases.push_back({"partial rotary (half 4 < pack)", t, 16, 4, 2, 7, 8, true});
        cases.push_back({"gqa full rotary", t, 64, 8, 2, 7, 64, true});
        cases.push_back({"rot 24 (half 12), no norm", t, 64, 8, 2, 300, 24, false});
        cases.push_back({"rot 16 (half 8), pass-through", t, 64, 8, 2, 7, 16, true});
        cases.push_back({"decode", t, 128, 32, 8, 1, 128, true});
        cases.push_back({"prefill", t, 128, 32, 8, 300, 128, true});
        cases.push_back({"rot 64, scaling 0.75", t, 128, 16, 4, 7, 64, true, 0, 0, 0, 0, false,
                         0.75f});
        cases.push_back({"odd stride (scalar path)", t, 128, 16, 4, 7, 128, true, 1});
        cases.push_back({"odd stride, rot 24", t, 64, 8, 2, 7, 24, true, 3});
        cases.push_back({"both weights misaligned", t, 128, 16, 4, 7, 128, true, 0, 1, 1});
        cases.push_back({"k weight misaligned", t, 64, 8, 2, 7, 64, true, 0, 0, 3});
        cases.push_back({"pools misaligned", t, 128, 16, 4, 7, 128, true, 0, 0, 0, 1});
        cases.push_back({"bad slots", t, 128, 16, 4, 7, 128, true, 0, 0, 0, 0, true});
        cases.push_back({"head_dim 256", t, 256, 4, 1, 7, 256, true});
        cases.push_back({"head_dim 256 odd stride", t, 256, 4, 1, 7, 128, true, 1});
        cases.push_back({"norm, no rotary", t, 64, 8, 2, 7, 0, true});
        cases.push_back({"no norm, no rotary (kv write)", t, 64, 8, 2, 7, 0, false});
        cases.push_back({"llama-like (no norm)", t, 128, 32, 8, 7, 128, false});
    }
    cases.push_back({"grid-stride tokens", ElemType::kBF16, 16, 1, 1, 70000, 16, true});
    cases.push_back({"f32", ElemType::kF32, 128, 16, 4, 7, 128, true});
    cases.push_back({"f32 head_dim 256", ElemType::kF32, 256, 4, 2, 7, 256, true});
    cases.push_back({"f32 odd stride rot 24", ElemType::kF32, 64, 8, 2, 7, 24, true, 1});
    cases.push_back({"f32 weights misaligned", ElemType::kF32, 64, 8, 2, 7, 64, true, 0, 1, 2});
    for (const Case& c : cases) {
        ok = run_case(c, rng) && ok;
    }
    time_case(1, rng);
    time_case(64, rng);
    std::printf("%s\n", ok ? "ALL OK" : "FAILED");
    return ok ? 0 : 1;
}
