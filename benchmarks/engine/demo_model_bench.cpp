// The embedded default model (demo_model.h) at full size, through the real loader and scheduler:
// how long its turns are (greedy, Qwen3's sampling defaults, temperature 1), how fast an
// agent-sized prompt prefills and how fast it decodes on this machine.
//
//   demo_model_bench [--prompt 8192] [--turns 20] [--threads 0] [--dir PATH]
// A program that prints numbers, not a test.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "helexa/engine/demo_model.h"
#include "helexa/engine/model_runner.h"
#include "helexa/engine/scheduler.h"

namespace fs = std::filesystem;
using namespace helexa::engine;  // NOLINT: a benchmark main

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::duration d) {
    return std::chrono::duration<double>(d).count();
}

class CountingDecoder final : public TokenTextDecoder {
public:
    std::string push(int32_t /*id*/) override { return "x"; }
    std::string flush() override { return {}; }
};

struct Run {
    int64_t n_out = 0;  // tokens before EOS
    bool eos = false;
    double ttft_s = 0;    // submit -> first token
    double decode_s = 0;  // first token -> finish
};

std::vector<Run> run_all(CausalLmRunner& runner, const std::vector<GenerateRequest>& reqs) {
    SchedulerModel model;
    model.generation = runner.generation_defaults();
    model.context_limit = runner.max_context_tokens();
    model.text_decoder = [](const GenerateRequest&) {
        return std::make_unique<CountingDecoder>();
    };
    Scheduler sched(runner, model, SchedulerOptions{});
    std::vector<Run> runs;
    for (const auto& r : reqs) {  // one at a time: per-request latency, batch 1
        Run run;
        const auto t0 = Clock::now();
        Clock::time_point first{};
        auto id = sched.submit(r, [&](EngineEvent ev) {
            if (ev.kind == EngineEvent::Kind::kTextDelta && first == Clock::time_point{}) {
                first = Clock::now();
            }
            if (ev.kind == EngineEvent::Kind::kFinish) {
                run.eos = ev.finish_reason == FinishReason::kStop;
                run.n_out = ev.usage.completion_tokens - (run.eos ? 1 : 0);
            }
        });
        if (!id) {
            std::fprintf(stderr, "submit: %s\n", id.error().full_message().c_str());
            std::exit(1);
        }
        while (sched.step_once()) {
        }
        const auto t1 = Clock::now();
        if (first == Clock::time_point{}) {
            first = t1;
        }
        run.ttft_s = seconds(first - t0);
        run.decode_s = seconds(t1 - first);
        runs.push_back(run);
    }
    return runs;
}

void report(const char* label, const std::vector<Run>& runs) {
    int64_t total = 0;
    int64_t n_eos = 0;
    int64_t mn = INT64_MAX;
    int64_t mx = 0;
    double decode_s = 0;
    int64_t decoded = 0;
    for (const auto& r : runs) {
        total += r.n_out;
        n_eos += r.eos ? 1 : 0;
        mn = std::min(mn, r.n_out);
        mx = std::max(mx, r.n_out);
        decode_s += r.decode_s;
        decoded += std::max<int64_t>(r.n_out, 0);  // tokens after the first, EOS included
    }
    std::printf("%-34s turns %zu, ended by EOS %lld, output tokens mean %.1f (min %lld, max "
                "%lld), decode %.0f tok/s\n",
                label, runs.size(), static_cast<long long>(n_eos),
                static_cast<double>(total) / static_cast<double>(runs.size()),
                static_cast<long long>(mn), static_cast<long long>(mx),
                decode_s > 0 ? static_cast<double>(decoded) / decode_s : 0.0);
}

std::vector<int32_t> make_prompt(int64_t n, uint64_t salt) {
    std::vector<int32_t> p;
    uint64_t s = salt * 0x9e3779b97f4a7c15ULL + 1;
    for (int64_t i = 0; i + 1 < n; ++i) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        p.push_back(static_cast<int32_t>(s % 151643));
    }
    p.push_back(198);  // the chat template's "assistant\n"
    return p;
}

}  // namespace

int main(int argc, char** argv) {
    int64_t prompt_len = 8192;
    int turns = 20;
    int threads = 0;
    std::string dir_arg;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--prompt") {
            prompt_len = std::stoll(argv[i + 1]);
        } else if (a == "--turns") {
            turns = std::stoi(argv[i + 1]);
        } else if (a == "--threads") {
            threads = std::stoi(argv[i + 1]);
        } else if (a == "--dir") {
            dir_arg = argv[i + 1];
        }
    }
    const fs::path dir = dir_arg.empty() ? fs::temp_directory_path() / "helexa_demo_model_bench"
                                         : fs::path(dir_arg);
    const DemoModelSpec spec;
    auto t0 = Clock::now();
    if (auto st = write_demo_model(spec, dir); !st) {
        std::fprintf(stderr, "write: %s\n", st.error().full_message().c_str());
        return 1;
    }
    std::printf("demo model: vocab %lld, hidden %lld, %lld layers, %d phases; written in %.2f s, "
                "%.1f MiB\n",
                static_cast<long long>(spec.vocab_size), static_cast<long long>(spec.hidden_size),
                static_cast<long long>(spec.num_hidden_layers), spec.n_phases,
                seconds(Clock::now() - t0),
                static_cast<double>(fs::file_size(dir / "model.safetensors")) / 1048576.0);
    ModelRunnerOptions opt;
    opt.backend.n_threads = threads;
    t0 = Clock::now();
    auto runner = load_model_runner(dir, opt);
    if (!runner) {
        std::fprintf(stderr, "load: %s\n", runner.error().full_message().c_str());
        return 1;
    }
    std::printf("load %.2f s; context %lld tokens; kv pool %.0f MiB\n", seconds(Clock::now() - t0),
                static_cast<long long>((*runner)->max_context_tokens()),
                static_cast<double>((*runner)->kv_cache_bytes()) / 1048576.0);

    // An agent-sized prompt, greedy: time to first token is the prefill.
    GenerateRequest big;
    big.prompt_tokens = make_prompt(prompt_len, 99);
    big.sampling.temperature = 0.0F;
    const auto long_runs = run_all(**runner, {big});
    std::printf("prefill %lld tokens: %.2f s (%.0f tok/s, chunks of %lld); then %lld tokens, "
                "EOS %s, in %.3f s\n",
                static_cast<long long>(prompt_len), long_runs[0].ttft_s,
                static_cast<double>(prompt_len) / long_runs[0].ttft_s,
                static_cast<long long>(kDefaultPrefillChunkTokens),
                static_cast<long long>(long_runs[0].n_out), long_runs[0].eos ? "yes" : "no",
                long_runs[0].decode_s);

    std::vector<GenerateRequest> greedy;
    std::vector<GenerateRequest> defaults;
    std::vector<GenerateRequest> temp1;
    for (int i = 0; i < turns; ++i) {
        GenerateRequest r;
        r.prompt_tokens = make_prompt(64 + 17 * i, static_cast<uint64_t>(i));
        r.sampling.max_tokens = 32000;  // what Claude Code asks for
        r.sampling.seed = static_cast<uint64_t>(i + 1);
        defaults.push_back(r);  // generation_config.json: temperature 0.6, top_k 20, top_p 0.95
        r.sampling.temperature = 0.0F;
        greedy.push_back(r);
        r.sampling.temperature = 1.0F;
        r.sampling.top_k = 0;
        r.sampling.top_p = 1.0F;
        temp1.push_back(r);
    }
    report("greedy:", run_all(**runner, greedy));
    report("generation_config defaults:", run_all(**runner, defaults));
    report("temperature 1, no top-k/top-p:", run_all(**runner, temp1));
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    std::printf("peak rss %ld MiB\n", ru.ru_maxrss / 1024);
    return 0;
}
