// The draw rule on the host (row_draw.h), for a 151,936-entry vocabulary: what the CPU backend
// pays per sampled row (draw_row), beside the host Sampler on the same row and settings, and what
// the scheduler pays per step to plan a batch's draws (plan_row_draw) before any backend runs.
// Two rows: a trained-model-like one (a heavy head over a Gaussian body, as sampler_bench) and a
// flat one (Gaussian, sd 2: what random-weight models give, where every id may still win).
//
//   draw_rule_bench [--vocab 151936] [--iterations 200] [--generated 192]
// Medians in microseconds. A program that prints numbers, not a test: no assertions on time.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "bench_flags.h"
#include "helexa/engine/row_draw.h"
#include "helexa/engine/sampler.h"

using namespace helexa::engine;  // NOLINT: a benchmark main
using helexa::bench::flag_number;

namespace {

using Clock = std::chrono::steady_clock;

std::vector<float> trained_like_row(int64_t vocab, uint64_t seed) {
    std::mt19937_64 gen(seed);
    std::normal_distribution<float> body(-2.0f, 2.0f);
    std::vector<float> l(static_cast<size_t>(vocab));
    for (auto& v : l) {
        v = body(gen);
    }
    std::uniform_int_distribution<int64_t> pick(0, vocab - 1);
    for (int i = 0; i < 40; ++i) {
        l[static_cast<size_t>(pick(gen))] = 14.0f - 0.25f * static_cast<float>(i);
    }
    return l;
}

std::vector<float> flat_row(int64_t vocab, uint64_t seed) {
    std::mt19937_64 gen(seed);
    std::normal_distribution<float> body(0.0f, 2.0f);
    std::vector<float> l(static_cast<size_t>(vocab));
    for (auto& v : l) {
        v = body(gen);
    }
    return l;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    int64_t vocab = 151936;
    int iterations = 200;
    int64_t n_generated = 192;
    for (int i = 1; i < argc; i += 2) {
        const std::string a = argv[i];
        if (i + 1 >= argc) {
            std::fprintf(stderr, "%s needs a value\n", a.c_str());
            return 2;
        }
        if (a == "--vocab") {
            vocab = flag_number("--vocab", argv[i + 1], 64);
        } else if (a == "--iterations") {
            iterations = static_cast<int>(flag_number("--iterations", argv[i + 1], 1));
        } else if (a == "--generated") {
            n_generated = flag_number("--generated", argv[i + 1], 0);
        } else {
            std::fprintf(stderr, "unknown flag %s\n", a.c_str());
            return 2;
        }
    }
    struct Case {
        const char* name;
        SamplingConfig cfg;
    };
    std::vector<Case> cases(5);
    cases[0].name = "defaults (t=1, rep 1.1)";
    cases[1].name = "qwen3 (t=0.6, top_k 20, top_p .95)";
    cases[1].cfg.temperature = 0.6f;
    cases[1].cfg.top_k = 20;
    cases[1].cfg.top_p = 0.95f;
    cases[2].name = "t=1, min_p 0.05";
    cases[2].cfg.min_p = 0.05f;
    cases[3].name = "greedy, rep 1.1";
    cases[3].cfg.temperature = 0.0f;
    cases[4].name = "llama (t=0.6, top_p .9, whole vocabulary)";
    cases[4].cfg.temperature = 0.6f;
    cases[4].cfg.top_p = 0.9f;
    std::vector<int32_t> generated(static_cast<size_t>(n_generated));
    for (int64_t i = 0; i < n_generated; ++i) {
        generated[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919) % vocab);
    }
    const std::vector<float> rows[2] = {trained_like_row(vocab, 42), flat_row(vocab, 43)};
    std::printf("vocab %lld, %lld generated tokens, %d draws per case\n",
                static_cast<long long>(vocab), static_cast<long long>(n_generated), iterations);
    std::printf("| settings | draw_row, trained-like | Sampler | draw_row, flat | Sampler |\n"
                "|---|---:|---:|---:|---:|\n");
    Sampler sampler;
    SamplerRng rng(7);
    std::vector<float> work;
    for (const Case& c : cases) {
        double result[2][2] = {};
        for (int row = 0; row < 2; ++row) {
            DrawBatch batch;
            plan_row_draw(c.cfg, generated, 11, vocab, true, batch);
            std::vector<double> drawn;
            std::vector<double> sampled;
            for (int i = 0; i < iterations; ++i) {
                work = rows[row];
                batch.rows[0].position = static_cast<uint32_t>(i);
                auto t0 = Clock::now();
                const int32_t token = draw_row(work, batch.rows[0], batch.entries);
                drawn.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
                work = rows[row];
                t0 = Clock::now();
                const auto sampled_token = sampler.sample(work, c.cfg, generated, rng);
                sampled.push_back(
                    std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
                if (token < 0 || !sampled_token) {
                    std::fprintf(stderr, "%s: no token\n", c.name);
                    return 1;
                }
            }
            result[row][0] = median(drawn);
            result[row][1] = median(sampled);
        }
        std::printf("| %s | %.1f | %.1f | %.1f | %.1f |\n", c.name, result[0][0], result[0][1],
                    result[1][0], result[1][1]);
    }
    // Planning one step's draws: 64 rows at the defaults, then with presence and frequency
    // penalties (the sorted-merge path).
    for (const bool counted : {false, true}) {
        SamplingConfig cfg;
        if (counted) {
            cfg.presence_penalty = 0.5f;
            cfg.frequency_penalty = 0.5f;
        }
        std::vector<double> us;
        DrawBatch batch;
        for (int i = 0; i < iterations; ++i) {
            const auto t0 = Clock::now();
            batch.clear();
            for (int r = 0; r < 64; ++r) {
                plan_row_draw(cfg, generated, 100 + static_cast<uint64_t>(r), vocab, true, batch);
            }
            const std::vector<int32_t> packed = batch.packed(batch.rows.size());
            us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
            if (packed.empty()) {
                return 1;
            }
        }
        std::printf("| plan + pack 64 rows, %s | %.1f per step | | | |\n",
                    counted ? "presence + frequency" : "defaults", median(us));
    }
    return 0;
}
