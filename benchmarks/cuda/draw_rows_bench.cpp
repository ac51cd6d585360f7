// The device draw (kernels::launch_draw_rows) alone, per mode and row count, beside the argmax
// kernel it replaces on greedy steps: what a sampled step pays for drawing where the logits are.
// Also prints how many of its clusters of each size the card runs at once
// (HELEXA_DRAW_CLUSTER=1|2|4|8 forces one size for every row count: the A/B behind
// kernels::draw_rows_cluster).
//
//   draw_rows_bench [--vocab 151936] [--rows 1,8,32,64] [--iters 50]
// Prints one line per (mode, rows): mean microseconds per launch (CUDA events).
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_list.h"
#include "helexa/engine/row_draw.h"
#include "helexa/kernels/sampling.h"

namespace {

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) {
        std::fprintf(stderr, "draw_rows_bench: %s: %s\n", what, cudaGetErrorString(e));
        std::exit(1);
    }
}

}  // namespace

int main(int argc, char** argv) {
    int64_t vocab = 151936;
    std::vector<int64_t> row_counts = {1, 8, 32, 64};
    int iters = 50;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--vocab") {
            vocab = std::stoll(argv[i + 1]);
        } else if (a == "--rows") {
            row_counts = parse_list(argv[i + 1]);
        } else if (a == "--iters") {
            iters = std::stoi(argv[i + 1]);
        } else {
            std::fprintf(stderr, "unknown option %s\n", a.c_str());
            return 2;
        }
    }
    int64_t max_rows = 0;
    for (int64_t r : row_counts) {
        max_rows = std::max(max_rows, r);
    }
    // Logits like a model's: normal around 0 with a few strong candidates.
    std::mt19937 gen(1);
    std::normal_distribution<float> normal(0.0F, 2.0F);
    std::vector<float> host(static_cast<size_t>(max_rows * vocab));
    for (auto& x : host) {
        x = normal(gen);
    }
    float* logits = nullptr;
    int32_t* ids = nullptr;
    void* draws = nullptr;
    check(cudaMalloc(&logits, host.size() * sizeof(float)), "malloc");
    check(cudaMalloc(&ids, static_cast<size_t>(max_rows) * sizeof(int32_t)), "malloc");
    check(cudaMemcpy(logits, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice),
          "copy");
    cudaEvent_t t0;
    cudaEvent_t t1;
    check(cudaEventCreate(&t0), "event");
    check(cudaEventCreate(&t1), "event");

    struct Mode {
        const char* name;
        helexa::engine::SamplingConfig cfg;
    };
    std::vector<Mode> modes(5);
    modes[0].name = "greedy+penalty";
    modes[0].cfg.temperature = 0.0F;
    modes[1].name = "defaults";  // temperature 1, repetition penalty 1.1
    modes[2].name = "qwen3-topk20";
    modes[2].cfg.temperature = 0.6F;
    modes[2].cfg.top_k = 20;
    modes[2].cfg.top_p = 0.95F;
    modes[3].name = "min_p0.05";
    modes[3].cfg.min_p = 0.05F;
    modes[4].name = "llama-topp0.9";  // Llama-3.1's generation settings: top-p, no top-k
    modes[4].cfg.temperature = 0.6F;
    modes[4].cfg.top_p = 0.9F;
    std::vector<int32_t> generated(128);
    for (size_t i = 0; i < generated.size(); ++i) {
        generated[i] = static_cast<int32_t>((i * 7919) % static_cast<size_t>(vocab));
    }
    for (int64_t rows : row_counts) {
        for (int u = 0; u < iters; ++u) {  // warm-up launch sizes and attributes
            check(helexa::kernels::launch_argmax_rows(logits, rows, vocab, ids, nullptr), "argmax");
        }
        check(cudaEventRecord(t0), "record");
        for (int u = 0; u < iters; ++u) {
            check(helexa::kernels::launch_argmax_rows(logits, rows, vocab, ids, nullptr), "argmax");
        }
        check(cudaEventRecord(t1), "record");
        check(cudaEventSynchronize(t1), "sync");
        float ms = 0;
        check(cudaEventElapsedTime(&ms, t0, t1), "elapsed");
        std::printf("{\"kernel\":\"argmax\",\"rows\":%lld,\"us\":%.2f}\n",
                    static_cast<long long>(rows), 1000.0 * ms / iters);
        for (const Mode& m : modes) {
            helexa::engine::DrawBatch batch;
            for (int64_t r = 0; r < rows; ++r) {
                helexa::engine::plan_row_draw(m.cfg, generated, 1000 + static_cast<uint64_t>(r),
                                              vocab, true, batch);
            }
            const std::vector<int32_t> packed = batch.packed(batch.rows.size());
            check(cudaFree(draws), "free");
            check(cudaMalloc(&draws, packed.size() * sizeof(int32_t)), "malloc");
            check(cudaMemcpy(draws, packed.data(), packed.size() * sizeof(int32_t),
                             cudaMemcpyHostToDevice),
                  "copy");
            const int cluster = helexa::kernels::draw_rows_cluster(rows);
            check(helexa::kernels::launch_draw_rows(logits, rows, vocab, draws, ids, cluster,
                                                    nullptr),
                  "draw");
            check(cudaEventRecord(t0), "record");
            for (int u = 0; u < iters; ++u) {
                check(helexa::kernels::launch_draw_rows(logits, rows, vocab, draws, ids, cluster,
                                                        nullptr),
                      "draw");
            }
            check(cudaEventRecord(t1), "record");
            check(cudaEventSynchronize(t1), "sync");
            check(cudaEventElapsedTime(&ms, t0, t1), "elapsed");
            std::printf(
                "{\"kernel\":\"draw\",\"mode\":\"%s\",\"rows\":%lld,\"cluster\":%d,\"us\":%.2f}\n",
                m.name, static_cast<long long>(rows), cluster, 1000.0 * ms / iters);
        }
    }
    for (const int cluster : {8, 4, 2, 1}) {
        std::printf("{\"draw_cluster\":%d,\"max_active_clusters\":%d}\n", cluster,
                    helexa::kernels::draw_rows_max_clusters(cluster));
    }
    return 0;
}
