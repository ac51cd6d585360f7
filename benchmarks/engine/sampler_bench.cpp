// Host sampling cost per token for a 151,936-entry vocabulary (Qwen3's): what a request that
// is not plain greedy pays on the host every step, besides copying its logits row off the
// device. One row of trained-model-like logits (a heavy head over a Gaussian body) is sampled
// under the settings clients actually send; each figure is the median over many draws of
// Sampler::sample on a fresh copy of the row (the copy is timed apart and not included), with the
// widest vector passes the CPU has and with four-wide ones (the same bits; sampler_simd.h).
//
//   sampler_bench [--vocab 151936] [--iterations 400] [--generated 256]
// A program that prints numbers, not a test: no assertions on time.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench_flags.h"
#include "helexa/engine/cpu_backend.h"
#include "helexa/engine/sampler.h"
#include "helexa/engine/sampling_config.h"
#include "helexa/engine/scheduler.h"

using namespace helexa::engine;  // NOLINT: a benchmark main
using helexa::bench::flag_number;

namespace {

using Clock = std::chrono::steady_clock;

std::vector<float> trained_like_logits(int64_t vocab, uint64_t seed) {
    std::mt19937_64 gen(seed);
    std::normal_distribution<float> body(-2.0f, 2.0f);
    std::vector<float> l(static_cast<size_t>(vocab));
    for (auto& v : l) {
        v = body(gen);
    }
    // A few dozen plausible next tokens well above the body, as a trained model's row has.
    std::uniform_int_distribution<int64_t> pick(0, vocab - 1);
    for (int i = 0; i < 40; ++i) {
        l[static_cast<size_t>(pick(gen))] = 14.0f - 0.25f * static_cast<float>(i);
    }
    return l;
}

struct Case {
    std::string name;
    SamplingConfig cfg;
};

}  // namespace

int main(int argc, char** argv) {
    int64_t vocab = 151936;
    int iterations = 400;
    int64_t n_generated = 256;
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
    const std::vector<float> row = trained_like_logits(vocab, 42);
    std::vector<int32_t> generated(static_cast<size_t>(n_generated));
    for (int64_t i = 0; i < n_generated; ++i) {
        generated[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919) % vocab);
    }

    std::vector<Case> cases;
    {
        SamplingConfig c;  // greedy, no penalty: what the device argmax path also serves
        c.temperature = 0.0f;
        c.repetition_penalty = 1.0f;
        cases.push_back({"greedy", c});
    }
    cases.push_back({"openai-defaults (t=1, rep 1.1)", SamplingConfig{}});
    {
        SamplingConfig c;  // Qwen3's generation_config.json
        c.temperature = 0.6f;
        c.top_p = 0.95f;
        c.top_k = 20;
        c.repetition_penalty = 1.0f;
        cases.push_back({"qwen3 (t=0.6, top_p .95, top_k 20)", c});
    }
    {
        SamplingConfig c;
        c.temperature = 0.7f;
        c.top_p = 0.9f;
        c.repetition_penalty = 1.0f;
        cases.push_back({"t=0.7, top_p 0.9", c});
    }
    {
        SamplingConfig c;
        c.min_p = 0.05f;
        c.repetition_penalty = 1.0f;
        cases.push_back({"t=1, min_p 0.05", c});
    }
    {
        SamplingConfig c;
        c.presence_penalty = 0.5f;
        c.frequency_penalty = 0.5f;
        c.repetition_penalty = 1.0f;
        cases.push_back({"t=1, presence+frequency 0.5", c});
    }

    // The widest vector passes this CPU has (AVX2: eight floats) against four-wide ones, draw
    // for draw interleaved so both see the same machine state.
    Sampler widest(true);
    Sampler four_wide(false);
    SamplerRng rng(7);
    std::vector<float> work(row.size());
    // The copy every timed draw starts from, timed alone for reference.
    std::vector<double> copy_us;
    for (int i = 0; i < iterations; ++i) {
        const auto t0 = Clock::now();
        std::copy(row.begin(), row.end(), work.begin());
        copy_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    std::sort(copy_us.begin(), copy_us.end());
    std::printf("vocab %lld, %lld generated tokens, %d draws per case; row copy %.1f us\n",
                static_cast<long long>(vocab), static_cast<long long>(n_generated), iterations,
                copy_us[copy_us.size() / 2]);
    std::printf("| settings | median us/token (widest) | p90 | median us/token (four-wide) | p90 "
                "|\n|---|---:|---:|---:|---:|\n");
    for (const auto& c : cases) {
        std::vector<double> us[2];
        for (int i = 0; i < iterations; ++i) {
            for (int w = 0; w < 2; ++w) {
                Sampler& sampler = w == 0 ? widest : four_wide;
                std::copy(row.begin(), row.end(), work.begin());
                const auto t0 = Clock::now();
                auto tok = sampler.sample(work, c.cfg, generated, rng);
                us[w].push_back(
                    std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
                if (!tok) {
                    std::fprintf(stderr, "%s: %s\n", c.name.c_str(),
                                 tok.error().full_message().c_str());
                    return 1;
                }
            }
        }
        for (auto& v : us) {
            std::sort(v.begin(), v.end());
        }
        std::printf("| %s | %.1f | %.1f | %.1f | %.1f |\n", c.name.c_str(), us[0][us[0].size() / 2],
                    us[0][us[0].size() * 9 / 10], us[1][us[1].size() / 2],
                    us[1][us[1].size() * 9 / 10]);
    }

    // A step of 32 sampled streams, rows spread over the scheduler's sampling threads (a
    // cpu::ThreadPool of min(8, hardware threads), one Sampler per chunk) as Scheduler does.
    const int threads = default_sampling_threads();
    const std::pair<int, bool> setups[] = {
        {1, true}, {1, false}, {threads, true}, {threads, false}};
    for (const auto& [n_threads, wide] : setups) {
        constexpr int kRows = 32;
        cpu::ThreadPool pool(n_threads);
        std::vector<Sampler> samplers(static_cast<size_t>(pool.size()), Sampler(wide));
        std::vector<SamplerRng> rngs;
        for (int r = 0; r < kRows; ++r) {
            rngs.emplace_back(static_cast<uint64_t>(r));
        }
        std::vector<float> rows(static_cast<size_t>(kRows) * row.size());
        std::vector<double> us;
        const SamplingConfig cfg;  // OpenAI defaults
        for (int i = 0; i < std::max(iterations / 20, 5); ++i) {
            for (int r = 0; r < kRows; ++r) {
                std::copy(row.begin(), row.end(), rows.begin() + r * static_cast<ptrdiff_t>(vocab));
            }
            const auto t0 = Clock::now();
            pool.parallel_for(kRows, 1, [&](int64_t r0, int64_t r1, int chunk) {
                for (int64_t r = r0; r < r1; ++r) {
                    std::span<float> l(rows.data() + r * vocab, static_cast<size_t>(vocab));
                    (void)samplers[static_cast<size_t>(chunk)].sample(
                        l, cfg, generated, rngs[static_cast<size_t>(r)]);
                }
            });
            us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        }
        std::sort(us.begin(), us.end());
        std::printf("| 32 rows, OpenAI defaults, %d thread(s), %s | %.1f per step | |\n",
                    n_threads, wide ? "widest" : "four-wide", us[us.size() / 2]);
    }
    return 0;
}
