// cuBLASLt's decode GEMMs one way against the other: each Qwen3-8B projection as one GEMM into
// bf16 (CublasLtMatmul::run, with whatever split-K cuBLASLt picks inside), and as the batched
// GEMM over K slices into f32 partials that the backend's K split runs (run_k_split, its part
// count chosen as the backend chooses it, and again capped at 1, 2 and 4 parts). Whether a
// projection's consumer should sum K-split partials (as the norm after o_proj and down does)
// is decided by these times against what the partials cost that consumer to read.
// Each figure is the replay of a recorded graph of 8 rounds over 4 weight copies (L2 cannot
// serve the weights), median of 15 replays, as linear_bench measures.
// --candidates: instead, every algorithm cuBLASLt's heuristic offers for each plain GEMM, timed
// two ways: as CublasLtMatmul's tuner times it (one call from an emptied L2, mean of three), and
// in the decode graph's context (the replayed graph above with a kernel of ours before each
// GEMM: the RMSNorm that feeds it in the model, launched as our kernels are). Whether the tuner
// ranks the candidates as they rank in the model.
//   cublaslt_decode_bench --copy-gbps 4250 [--rows 8,16,32,64] [--shapes qkv,o_proj,gate_up,down]
//       [--candidates]
// Prints one JSON line per (shape, rows, way) or (shape, rows, candidate).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "bench_list.h"
#include "cublaslt_matmul.h"
#include "helexa/kernels/l2_cache.h"
#include "helexa/kernels/norm.h"

namespace {

using helexa::cuda::CublasLtMatmul;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "cublaslt_decode_bench: %s\n", what.c_str());
    std::exit(1);
}

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) {
        die(std::string(what) + ": " + cudaGetErrorString(e));
    }
}

void* device_bf16(int64_t n, std::mt19937& rng) {
    std::vector<uint16_t> host(static_cast<size_t>(n));
    std::uniform_int_distribution<int> d(0x3c00, 0x3d00);  // bf16 in [0.0078, 0.031]
    for (auto& h : host) {
        h = static_cast<uint16_t>(d(rng)) ^ static_cast<uint16_t>((rng() & 1) << 15);
    }
    void* p = nullptr;
    check(cudaMalloc(&p, host.size() * 2), "cudaMalloc");
    check(cudaMemcpy(p, host.data(), host.size() * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
    return p;
}

// Median time of one call over 15 replays of a graph of 32 calls (8 rounds x 4 copies).
double replay_us(cudaStream_t stream, const std::function<void(int)>& call) {
    for (int i = 0; i < 4; ++i) {
        call(i);  // eager first: plans and tuning stay out of the capture
    }
    check(cudaStreamSynchronize(stream), "eager calls");
    cudaGraph_t graph = nullptr;
    check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "begin capture");
    for (int r = 0; r < 8; ++r) {
        for (int i = 0; i < 4; ++i) {
            call(i);
        }
    }
    check(cudaStreamEndCapture(stream, &graph), "end capture");
    cudaGraphExec_t exec = nullptr;
    check(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
    std::vector<double> times;
    for (int rep = 0; rep < 16; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        check(cudaGraphLaunch(exec, stream), "launch");
        check(cudaStreamSynchronize(stream), "replay");
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (rep > 0) {
            times.push_back(s / 32.0 * 1e6);
        }
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

void check_blas(cublasStatus_t st, const char* what) {
    if (st != CUBLAS_STATUS_SUCCESS) {
        die(std::string(what) + ": cuBLAS status " + std::to_string(static_cast<int>(st)));
    }
}

// Every candidate of the heuristic for out[T, N] = x[T, K] w[N, K]^T in bf16 (CublasLtMatmul's
// plain plan: W as [K, N] column-major transposed, x as [K, T], out as [N, T]), each timed as
// the tuner does and in the decode graph's context; one JSON line each.
void time_candidates(const char* name, int64_t N, int64_t K, int64_t T,
                     const std::vector<void*>& ws, void* x, void* out, void* workspace,
                     size_t workspace_bytes, cudaStream_t stream, double copy_gbps) {
    cublasLtHandle_t handle = nullptr;
    check_blas(cublasLtCreate(&handle), "cublasLtCreate");
    cublasLtMatmulDesc_t desc = nullptr;
    check_blas(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "desc");
    const cublasOperation_t ta = CUBLAS_OP_T;
    const cublasOperation_t tb = CUBLAS_OP_N;
    check_blas(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)),
               "transa");
    check_blas(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)),
               "transb");
    cublasLtMatrixLayout_t a = nullptr;
    cublasLtMatrixLayout_t b = nullptr;
    cublasLtMatrixLayout_t d = nullptr;
    check_blas(cublasLtMatrixLayoutCreate(&a, CUDA_R_16BF, static_cast<uint64_t>(K),
                                          static_cast<uint64_t>(N), K), "layout w");
    check_blas(cublasLtMatrixLayoutCreate(&b, CUDA_R_16BF, static_cast<uint64_t>(K),
                                          static_cast<uint64_t>(T), K), "layout x");
    check_blas(cublasLtMatrixLayoutCreate(&d, CUDA_R_16BF, static_cast<uint64_t>(N),
                                          static_cast<uint64_t>(T), N), "layout out");
    cublasLtMatmulPreference_t pref = nullptr;
    check_blas(cublasLtMatmulPreferenceCreate(&pref), "preference");
    const uint64_t wsb = workspace_bytes;
    check_blas(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &wsb, sizeof(wsb)), "workspace");
    constexpr int kCandidates = 16;  // as the tuner asks
    cublasLtMatmulHeuristicResult_t results[kCandidates] = {};
    int found = 0;
    check_blas(cublasLtMatmulAlgoGetHeuristic(handle, desc, a, b, d, d, pref, kCandidates, results,
                                              &found), "heuristic");
    int l2 = 0;
    check(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0), "L2 size");
    const size_t evict_bytes = 2 * static_cast<size_t>(l2);
    void* evict = nullptr;
    check(cudaMalloc(&evict, evict_bytes), "cudaMalloc");
    void* normed = nullptr;
    check(cudaMalloc(&normed, static_cast<size_t>(T * K) * 2), "cudaMalloc");
    std::mt19937 rng(7);
    void* norm_w = device_bf16(K, rng);
    cudaEvent_t start = nullptr;
    cudaEvent_t stop = nullptr;
    check(cudaEventCreate(&start), "event");
    check(cudaEventCreate(&stop), "event");
    const float alpha = 1.0F;
    const float beta = 0.0F;
    for (int c = 0; c < found; ++c) {
        const cublasLtMatmulAlgo_t& algo = results[c].algo;
        auto gemm = [&](const void* w, const void* in) {
            return cublasLtMatmul(handle, desc, &alpha, w, a, in, b, &beta, out, d, out, d, &algo,
                                  workspace, workspace_bytes, stream);
        };
        // As the tuner: one warm-up, then three calls each from an emptied L2.
        float tuner_ms = 0;
        bool usable = true;
        for (int rep = 0; rep < 4 && usable; ++rep) {
            check(helexa::kernels::launch_l2_evict(evict, evict_bytes, stream), "evict");
            check(cudaEventRecord(start, stream), "event");
            usable = gemm(ws[0], x) == CUBLAS_STATUS_SUCCESS;
            check(cudaEventRecord(stop, stream), "event");
            check(cudaEventSynchronize(stop), "tuning run");
            float ms = 0;
            check(cudaEventElapsedTime(&ms, start, stop), "elapsed");
            if (rep > 0) {
                tuner_ms += ms / 3;
            }
        }
        if (!usable) {
            continue;
        }
        // In context: the norm that feeds it, then the GEMM, over the rotating copies.
        const double context_us = replay_us(stream, [&](int i) {
            check(helexa::kernels::launch_rms_norm(normed, K, x, K, norm_w, T, K, 1e-6F,
                                                   helexa::kernels::ElemType::kBF16, stream),
                  "rms_norm");
            if (gemm(ws[static_cast<size_t>(i)], normed) != CUBLAS_STATUS_SUCCESS) {
                die("candidate failed in context");
            }
        });
        const double norm_only_us = c == 0 ? replay_us(stream, [&](int) {
            check(helexa::kernels::launch_rms_norm(normed, K, x, K, norm_w, T, K, 1e-6F,
                                                   helexa::kernels::ElemType::kBF16, stream),
                  "rms_norm");
        }) : 0.0;
        int tile = 0;
        int stages = 0;
        int splits = 0;
        size_t written = 0;
        cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile,
                                             sizeof(tile), &written);
        cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages,
                                             sizeof(stages), &written);
        cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splits,
                                             sizeof(splits), &written);
        const double bytes = static_cast<double>(N * K * 2);
        std::printf("{\"kind\":\"candidate\",\"shape\":\"%s\",\"T\":%lld,\"candidate\":%d,"
                    "\"tile\":%d,\"stages\":%d,\"split_k\":%d,\"waves\":%.2f,"
                    "\"tuner_us\":%.2f,\"context_us\":%.2f,\"norm_alone_us\":%.2f,"
                    "\"tuner_ratio\":%.3f}\n",
                    name, static_cast<long long>(T), c, tile, stages, splits,
                    static_cast<double>(results[c].wavesCount), tuner_ms * 1e3, context_us,
                    norm_only_us,
                    copy_gbps > 0 ? bytes / (tuner_ms * 1e-3) / 1e9 / copy_gbps : 0.0);
        std::fflush(stdout);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaFree(evict);
    cudaFree(normed);
    cudaFree(norm_w);
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(d);
    cublasLtMatrixLayoutDestroy(b);
    cublasLtMatrixLayoutDestroy(a);
    cublasLtMatmulDescDestroy(desc);
    cublasLtDestroy(handle);
}

}  // namespace

int main(int argc, char** argv) {
    double copy_gbps = 0;
    std::vector<int64_t> rows = {8, 16, 32, 64};
    std::set<std::string> only;
    bool candidates = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                die(a + " needs a value");
            }
            return argv[++i];
        };
        if (a == "--copy-gbps") {
            copy_gbps = std::stod(next());
        } else if (a == "--rows") {
            rows = parse_list(next());
        } else if (a == "--candidates") {
            candidates = true;
        } else if (a == "--shapes") {
            std::stringstream ss(next());
            std::string item;
            while (std::getline(ss, item, ',')) {
                only.insert(item);
            }
        } else {
            die("unknown argument " + a);
        }
    }
    check(cudaSetDevice(0), "cudaSetDevice");
    cudaStream_t stream = nullptr;
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    constexpr size_t kWorkspace = size_t{32} << 20;  // the backend's
    void* workspace = nullptr;
    check(cudaMalloc(&workspace, kWorkspace), "cudaMalloc");
    struct Shape {
        const char* name;
        int64_t N, K;
    };
    const std::vector<Shape> shapes = {
        {"qkv", 6144, 4096}, {"o_proj", 4096, 4096}, {"gate_up", 24576, 4096},
        {"down", 4096, 12288}};
    constexpr int64_t kMaxParts = 8;
    std::mt19937 rng(3);
    for (const Shape& s : shapes) {
        if (!only.empty() && only.count(s.name) == 0) {
            continue;
        }
        std::vector<void*> ws;
        for (int i = 0; i < 4; ++i) {
            ws.push_back(device_bf16(s.N * s.K, rng));
        }
        for (const int64_t T : rows) {
            void* x = device_bf16(T * s.K, rng);
            void* out = nullptr;
            check(cudaMalloc(&out, static_cast<size_t>(T * s.N) * 2), "cudaMalloc");
            float* partials = nullptr;
            check(cudaMalloc(reinterpret_cast<void**>(&partials),
                             static_cast<size_t>(kMaxParts * T * s.N) * sizeof(float)),
                  "cudaMalloc");
            if (candidates) {
                time_candidates(s.name, s.N, s.K, T, ws, x, out, workspace, kWorkspace, stream,
                                copy_gbps);
                check(cudaFree(x), "cudaFree");
                check(cudaFree(out), "cudaFree");
                check(cudaFree(partials), "cudaFree");
                continue;
            }
            const double bytes = static_cast<double>(s.N * s.K * 2);
            auto report = [&](const char* way, int64_t parts, double us) {
                const double gbps = bytes / (us * 1e-6) / 1e9;
                std::printf("{\"kind\":\"k_split\",\"shape\":\"%s\",\"N\":%lld,\"K\":%lld,"
                            "\"T\":%lld,\"way\":\"%s\",\"parts\":%lld,\"us\":%.2f,"
                            "\"ratio\":%.3f}\n",
                            s.name, static_cast<long long>(s.N), static_cast<long long>(s.K),
                            static_cast<long long>(T), way, static_cast<long long>(parts), us,
                            copy_gbps > 0 ? gbps / copy_gbps : 0.0);
                std::fflush(stdout);
            };
            {
                auto mm = CublasLtMatmul::create(workspace, kWorkspace);
                if (!mm) {
                    die(mm.error().full_message());
                }
                const double us = replay_us(stream, [&](int i) {
                    auto st = (*mm)->run(out, s.N, CUDA_R_16BF, x, s.K, ws[i], nullptr, T, s.N,
                                         s.K, CUDA_R_16BF, false, stream);
                    if (!st) {
                        die(st.error().full_message());
                    }
                });
                report("one_gemm", 1, us);
            }
            for (const int64_t cap : {int64_t{1}, int64_t{2}, int64_t{4}, kMaxParts}) {
                // A fresh matmul per cap: each tunes its own count among those up to the cap.
                auto mm = CublasLtMatmul::create(workspace, kWorkspace);
                if (!mm) {
                    die(mm.error().full_message());
                }
                int64_t parts = 0;
                const double us = replay_us(stream, [&](int i) {
                    auto got = (*mm)->run_k_split(partials, cap, x, s.K, ws[i], T, s.N, s.K,
                                                  CUDA_R_16BF, stream);
                    if (!got) {
                        die(got.error().full_message());
                    }
                    parts = *got;
                });
                report(cap == kMaxParts ? "k_split" : "k_split_capped", parts, us);
            }
            check(cudaFree(x), "cudaFree");
            check(cudaFree(out), "cudaFree");
            check(cudaFree(partials), "cudaFree");
        }
        for (void* w : ws) {
            check(cudaFree(w), "cudaFree");
        }
    }
    return 0;
}
