// The CUDA backend's linear (x[T, K] * w[N, K]^T) at the shapes of a Qwen3-8B decoder, for the
// batch sizes of decode, as achieved weight-read bandwidth against the card's copy bandwidth.
// Each figure is the replay of a recorded graph of 4 x 8 calls rotating over 4 weight copies
// (so L2 cannot serve the weights), median of 15 replays: the kernels' own time, no launches.
// Run by scripts/gpu/cuda_run.sh as built (CUDA-core skinny matmul up to 2 rows, cuBLASLt
// above), with HELEXA_CUDA_SKINNY_MAX_ROWS=0 (cuBLASLt everywhere) and, for MMA_AB, with
// HELEXA_CUDA_MMA_MAX_ROWS=64 (the tensor-core skinny matmul above 2 rows).
//   linear_bench --copy-gbps 4230 [--label skinny] [--shapes qkv,o_proj] [--rows 1,8,32]
//       [--trace 1]
// --trace 1 then runs each (shape, rows) twice more eagerly with the tensor-core kernel's CTA trace
// on (skinny_mma_set_trace) and prints, per launch, each CTA's SM, start, first unit landed, last
// unit done and end (microseconds from the first start): whether the same SMs finish last every
// time, and how long the range's end (its shared tile's finish) takes. For the
// chained shapes ("mlp", "layer") at 1-2 rows it prints the decode chain's trace instead
// (decode_chain_set_trace: per link, when the CTAs had x, ended their units and passed the
// barrier).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "helexa/cuda/cuda_backend.h"
#include "helexa/kernels/decode_chain.h"
#include "helexa/kernels/skinny_mma_matmul.h"

using helexa::engine::DType;
using helexa::engine::Tensor;

// --trace: runs `run` (one eager call that returns once it has finished) twice with the
// tensor-core kernel's CTA trace on, and prints each launch's CTAs as one JSON line: SM, start,
// first unit landed, last unit done, end (microseconds from the earliest start). False if the
// trace buffer could not be had.
bool print_cta_traces(const std::function<void()>& run, const std::string& label,
                      const char* shape, int64_t T) {
    constexpr size_t kWords = helexa::kernels::kSkinnyMmaTraceWords;
    int sms = 0;
    (void)cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    const size_t n = kWords * static_cast<size_t>(sms);
    const size_t trace_bytes = n * sizeof(unsigned long long);
    unsigned long long* buf = nullptr;
    if (cudaMalloc(reinterpret_cast<void**>(&buf), trace_bytes) != cudaSuccess) {
        return false;
    }
    helexa::kernels::skinny_mma_set_trace(buf);
    for (int launch = 0; launch < 2; ++launch) {
        (void)cudaMemset(buf, 0, trace_bytes);
        (void)cudaDeviceSynchronize();
        run();
        (void)cudaDeviceSynchronize();
        std::vector<unsigned long long> h(n);
        (void)cudaMemcpy(h.data(), buf, trace_bytes, cudaMemcpyDeviceToHost);
        unsigned long long t0 = ~0ull;
        for (size_t c = 0; c < n / kWords; ++c) {
            if (h[kWords * c + 1] != 0) {
                t0 = std::min(t0, h[kWords * c + 1]);
            }
        }
        std::printf("{\"kind\":\"trace\",\"label\":\"%s\",\"shape\":\"%s\",\"T\":%lld,"
                    "\"launch\":%d,\"ctas\":[",
                    label.c_str(), shape, static_cast<long long>(T), launch);
        for (size_t c = 0; c < n / kWords && h[kWords * c + 1] != 0; ++c) {
            const unsigned long long* w = &h[kWords * c];
            std::printf("%s[%llu,%.2f,%.2f,%.2f,%.2f]", c ? "," : "", w[0], (w[1] - t0) / 1e3,
                        (w[2] - t0) / 1e3, (w[3] - t0) / 1e3, (w[4] - t0) / 1e3);
        }
        std::printf("]}\n");
    }
    helexa::kernels::skinny_mma_set_trace(nullptr);
    (void)cudaFree(buf);
    return true;
}

// --trace for the chained shapes (the decode chain, decode_chain_set_trace): runs `run` twice
// and prints per launch, for each link, the spread over CTAs (min / median / max microseconds
// from the earliest consumer start) of when its x was ready, when the CTA's last unit of it was
// done and when its barrier was passed, with the units each CTA took (min / max); then the
// spread of the CTAs' starts, first copies and exits.
bool print_chain_traces(const std::function<void()>& run, const std::string& label,
                        const char* shape, int64_t T, int n_links) {
    int sms = 0;
    (void)cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    const size_t words = static_cast<size_t>(helexa::kernels::decode_chain_trace_words());
    const size_t n = words * static_cast<size_t>(sms);
    unsigned long long* buf = nullptr;
    if (cudaMalloc(reinterpret_cast<void**>(&buf), n * sizeof(unsigned long long)) !=
        cudaSuccess) {
        return false;
    }
    helexa::kernels::decode_chain_set_trace(buf);
    for (int launch = 0; launch < 2; ++launch) {
        (void)cudaMemset(buf, 0, n * sizeof(unsigned long long));
        (void)cudaDeviceSynchronize();
        run();
        (void)cudaDeviceSynchronize();
        std::vector<unsigned long long> h(n);
        (void)cudaMemcpy(h.data(), buf, n * sizeof(unsigned long long), cudaMemcpyDeviceToHost);
        unsigned long long t0 = ~0ull;
        for (int c = 0; c < sms; ++c) {
            if (h[c * words + 1] != 0) {
                t0 = std::min(t0, h[c * words + 1]);
            }
        }
        // min / median / max of word w over the CTAs that wrote it, in us from t0.
        auto spread = [&](size_t w) {
            std::vector<double> v;
            for (int c = 0; c < sms; ++c) {
                if (h[c * words + w] != 0) {
                    v.push_back(static_cast<double>(h[c * words + w] - t0) / 1e3);
                }
            }
            std::sort(v.begin(), v.end());
            char out[96];
            if (v.empty()) {
                std::snprintf(out, sizeof out, "[]");
            } else {
                std::snprintf(out, sizeof out, "[%.2f,%.2f,%.2f]", v.front(), v[v.size() / 2],
                              v.back());
            }
            return std::string(out);
        };
        std::printf("{\"kind\":\"chain_trace\",\"label\":\"%s\",\"shape\":\"%s\",\"T\":%lld,"
                    "\"launch\":%d,\"start\":%s,\"first_copy\":%s,\"exit\":%s,\"links\":[",
                    label.c_str(), shape, static_cast<long long>(T), launch, spread(1).c_str(),
                    spread(2).c_str(), spread(3).c_str());
        for (int i = 0; i < n_links; ++i) {
            const size_t base = 8 + 4 * static_cast<size_t>(i);
            unsigned long long umin = ~0ull;
            unsigned long long umax = 0;
            for (int c = 0; c < sms; ++c) {
                umin = std::min(umin, h[c * words + base + 3]);
                umax = std::max(umax, h[c * words + base + 3]);
            }
            std::printf("%s{\"x_ready\":%s,\"done\":%s,\"barrier\":%s,\"units\":[%llu,%llu]}",
                        i ? "," : "", spread(base).c_str(), spread(base + 1).c_str(),
                        spread(base + 2).c_str(), umin, umax);
        }
        std::printf("]}\n");
    }
    helexa::kernels::decode_chain_set_trace(nullptr);
    (void)cudaFree(buf);
    return true;
}

int main(int argc, char** argv) {
    double copy_gbps = 0;
    std::string label = "default";
    std::set<std::string> only_shapes;  // empty: all
    std::vector<int64_t> rows = {1, 2, 4, 8, 16, 32, 64};
    bool trace = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--copy-gbps") {
            copy_gbps = std::stod(argv[i + 1]);
        } else if (a == "--label") {
            label = argv[i + 1];
        } else if (a == "--shapes") {
            std::stringstream list(argv[i + 1]);
            for (std::string item; std::getline(list, item, ',');) {
                only_shapes.insert(item);
            }
        } else if (a == "--trace") {
            trace = std::string(argv[i + 1]) == "1";
        } else if (a == "--rows") {
            rows.clear();
            std::stringstream list(argv[i + 1]);
            for (std::string item; std::getline(list, item, ',');) {
                rows.push_back(std::stoll(item));
            }
        }
    }
    helexa::cuda::register_cuda_backend();
    auto made = helexa::engine::make_backend({.kind = "cuda"});
    if (!made) {
        std::fprintf(stderr, "%s\n", made.error().full_message().c_str());
        return 1;
    }
    auto backend = std::move(*made);
    auto exec = backend->executor();
    // Each shape plain (out = x w^T) and, as "+fused", with the fusion the decoder runs it with
    // (input norm, residual add, SwiGLU): the fused epilogues change the kernels' shapes (the
    // SwiGLU one reads two rows per warp) and prologues (the norm's reduction).
    using Out = helexa::engine::LinearFusion::Output;
    // "mlp": the decoder's MLP block as the model runs it (run_chain: norm, gate_up +
    // SwiGLU, down + residual; chained in one launch where the backend chains them), N and K
    // gate_up's, F the intermediate size (down is [K, F]); its bytes are both matrices'.
    // "layer": the chain the decoder runs between two attentions: o_proj + residual (A = the
    // attention width), the MLP, the next layer's norm + q/k/v (Q rows); its bytes are all four.
    struct Shape {
        const char* name;
        int64_t N, K;
        bool norm;
        Out output;
        int64_t F = 0;
        int64_t Q = 0;
        int64_t A = 0;
    };
    const std::vector<Shape> shapes = {{"qkv", 6144, 4096, false, Out::kStore},
                                       {"o_proj", 4096, 4096, false, Out::kStore},
                                       {"gate_up", 24576, 4096, false, Out::kStore},
                                       {"down", 4096, 12288, false, Out::kStore},
                                       {"lm_head", 151936, 4096, false, Out::kStore},
                                       {"qkv+norm", 6144, 4096, true, Out::kStore},
                                       {"o_proj+residual", 4096, 4096, false, Out::kAccumulate},
                                       {"gate_up+norm+swiglu", 24576, 4096, true, Out::kSwiGlu},
                                       {"down+residual", 4096, 12288, false, Out::kAccumulate},
                                       {"mlp", 24576, 4096, true, Out::kSwiGlu, 12288},
                                       {"layer", 24576, 4096, true, Out::kSwiGlu, 12288, 6144,
                                        4096}};
    int status = 0;
    exec->run([&] {
        auto& b = *backend;
        std::mt19937 rng(3);
        auto random_tensor = [&](int64_t r, int64_t c) {
            std::vector<uint16_t> host(static_cast<size_t>(r * c));
            std::uniform_int_distribution<int> d(0x3c00, 0x3d00);  // bf16 in [0.0078, 0.031]
            for (auto& h : host) {
                h = static_cast<uint16_t>(d(rng)) ^ static_cast<uint16_t>((rng() & 1) << 15);
            }
            auto t = b.alloc(DType::kBF16, r, c);
            if (!t || !b.copy_from_host(*t, host.data())) {
                std::fprintf(stderr, "allocation failed\n");
                std::exit(1);
            }
            return *t;
        };
        for (const auto& s : shapes) {
            if (!only_shapes.empty() && only_shapes.count(s.name) == 0) {
                continue;
            }
            std::vector<Tensor> ws;
            std::vector<Tensor> downs;   // mlp and layer
            std::vector<Tensor> os;      // layer only
            std::vector<Tensor> qkvs;    // layer only
            for (int i = 0; i < 4; ++i) {
                ws.push_back(random_tensor(s.N, s.K));
                if (s.F > 0) {
                    downs.push_back(random_tensor(s.K, s.F));
                }
                if (s.Q > 0) {
                    os.push_back(random_tensor(s.K, s.A));
                    qkvs.push_back(random_tensor(s.Q, s.K));
                }
            }
            for (int64_t T : rows) {
                Tensor x = random_tensor(T, s.K);
                const int64_t out_cols = s.output == Out::kSwiGlu ? s.N / 2 : s.N;
                auto proj = b.alloc(DType::kBF16, T, s.K);
                auto out = b.alloc(DType::kBF16, T, out_cols);
                Tensor norm_w = s.norm ? random_tensor(1, s.K) : Tensor{};
                auto normed = b.alloc(DType::kBF16, T, s.K);
                auto product = b.alloc(DType::kBF16, T, s.N);
                const helexa::engine::LinearFusion fusion{norm_w, 1e-6f, s.output};
                const helexa::engine::LinearScratch scratch{*normed, *product};
                // layer: the attention output o_proj reads, and the q/k/v the chain ends in.
                Tensor attn = s.Q > 0 ? random_tensor(T, s.A) : Tensor{};
                auto qkv_out = b.alloc(DType::kBF16, T, std::max<int64_t>(s.Q, 1));
                // Copy i of the weights (the mlp and the layer: x is the residual they add into).
                auto call = [&](size_t i) {
                    using helexa::engine::LinearLink;
                    if (s.F == 0) {
                        return b.fused_linear(*out, x, ws[i], Tensor{}, fusion, scratch);
                    }
                    std::vector<helexa::engine::ChainLink> links;
                    if (s.Q > 0) {
                        links.push_back(LinearLink{x, attn, os[i], Tensor{}, {Tensor{}, 0.0f,
                                                   Out::kAccumulate}, {Tensor{}, *proj}});
                    }
                    links.push_back(LinearLink{*out, x, ws[i], Tensor{}, fusion, scratch});
                    links.push_back(LinearLink{x, *out, downs[i], Tensor{}, {Tensor{}, 0.0f,
                                               Out::kAccumulate}, {Tensor{}, *proj}});
                    if (s.Q > 0) {
                        links.push_back(LinearLink{*qkv_out, x, qkvs[i], Tensor{}, {norm_w, 1e-6f,
                                                   Out::kStore}, {*normed, Tensor{}}});
                    }
                    return b.run_chain(links);
                };
                // Eager once per weight (plans, tuning), then record 8 rounds over the 4 copies.
                for (size_t i = 0; i < ws.size(); ++i) {
                    (void)call(i);
                }
                auto graph = b.capture_graph([&]() -> helexa::Status {
                    for (int r = 0; r < 8; ++r) {
                        for (size_t i = 0; i < ws.size(); ++i) {
                            HELEXA_TRY_STATUS(call(i));
                        }
                    }
                    return helexa::ok();
                });
                if (!graph) {
                    std::fprintf(stderr, "%s\n", graph.error().full_message().c_str());
                    status = 1;
                    return;
                }
                uint16_t sink = 0;
                std::vector<double> times;
                for (int rep = 0; rep < 16; ++rep) {
                    const auto t0 = std::chrono::steady_clock::now();
                    (void)b.replay_graph(*graph);
                    (void)b.copy_to_host(&sink, out->row_slice(0, 1).col_slice(0, 1));
                    const double s_el =
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                    if (rep > 0) {
                        times.push_back(s_el / 32.0);
                    }
                }
                std::sort(times.begin(), times.end());
                const double t = times[times.size() / 2];
                const double bytes =
                    static_cast<double>(s.N * s.K * 2 + T * s.K * 2 + T * out_cols * 2 +
                                        s.K * s.F * 2 + s.K * s.A * 2 + s.Q * s.K * 2);
                const double gbps = bytes / t / 1e9;
                std::printf("{\"kind\":\"linear\",\"label\":\"%s\",\"shape\":\"%s\",\"N\":%lld,"
                            "\"K\":%lld,\"T\":%lld,\"us\":%.2f,\"gb_per_s\":%.0f,\"ratio\":%.3f}\n",
                            label.c_str(), s.name, static_cast<long long>(s.N),
                            static_cast<long long>(s.K), static_cast<long long>(T), t * 1e6, gbps,
                            copy_gbps > 0 ? gbps / copy_gbps : 0.0);
                std::fflush(stdout);
                auto call_and_wait = [&] {
                    (void)call(0);
                    (void)b.copy_to_host(&sink, out->row_slice(0, 1).col_slice(0, 1));
                };
                const int n_links = s.Q > 0 ? 4 : 2;
                if (trace && s.F > 0 && T <= helexa::kernels::kDecodeChainMaxRows &&
                    !print_chain_traces(call_and_wait, label, s.name, T, n_links)) {
                    status = 1;
                    return;
                }
                if (trace && !(s.F > 0 && T <= helexa::kernels::kDecodeChainMaxRows) &&
                    !print_cta_traces(call_and_wait, label, s.name, T)) {
                    status = 1;
                    return;
                }
                b.free(x);
                b.free(*out);
                b.free(*normed);
                b.free(*product);
                b.free(*proj);
                b.free(*qkv_out);
                if (s.Q > 0) {
                    b.free(attn);
                }
                if (s.norm) {
                    b.free(norm_w);
                }
            }
            for (const auto& w : ws) {
                b.free(w);
            }
            for (const auto& group : {&downs, &os, &qkvs}) {
                for (const auto& w : *group) {
                    b.free(w);
                }
            }
            b.drop_graphs();
        }
    });
    exec->run([&] { backend.reset(); });
    return status;
}
