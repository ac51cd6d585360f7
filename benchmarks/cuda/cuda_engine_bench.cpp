// The CUDA engine against the card's ceilings (issue 8 "Performance"): batch-1 decode tokens/s
// against the bandwidth roofline, prefill time to first token against the bf16 GEMM rate, and
// aggregate decode throughput at several concurrencies against the memory-bound step ceiling.
// Drives the model runner directly (one step = one forward over the batch; greedy argmax on the
// host), so the numbers are the engine's, not the HTTP layer's.
//
//   cuda_engine_bench --model DIR --copy-gbps 4225 --gemm-tflops 785 [--decode-steps 128]
//       [--prompts 128,4096,32768] [--concurrency 1,8,32,64] [--label qwen3-8b] [--reference]
//       [--sampling host|drawn|drawn-greedy|drawn-topk|drawn-topp [--sampling-threads N]]
//       [--concurrency-long LEN]
// --sampling: the concurrency runs sample every row instead of taking the argmax.
//   host: at a default request's settings (temperature 1, repetition penalty 1.1 over the last
//     64 tokens: SamplingConfig's defaults) by the host Sampler, as the scheduler serves settings
//     the draw rule does not cover: logits left in the runner's page-locked rows (step_in_place),
//     rows sampled on a pool of min(8, cores) threads (or N: the neuron's sampling_threads), one
//     Sampler per thread and one RNG per stream.
//   drawn: the same settings by the draw rule where the logits are (step_sample), as the
//     scheduler serves them: only ids come back.
//   drawn-greedy: step_sample greedy with the default repetition penalty: what a request that
//     sets only temperature 0 gets (serving_bench's requests over HTTP).
//   drawn-topk: step_sample at Qwen3's generation_config (temperature 0.6, top-k 20, top-p 0.95,
//     repetition penalty 1.1).
//   drawn-topp: step_sample at Llama-3.1's (temperature 0.6, top-p 0.9 over the whole vocabulary,
//     repetition penalty 1.1), drawn on the device whatever the backend tells the scheduler
//     (CudaBackend::draws_whole_vocab_top_p).
// --concurrency-long LEN: stream 0 of each concurrency run has a LEN-token prompt (one agent's
//   long context among the short ones; the step ceiling counts its K/V like the rest).
// --reference: first compare with transformers' bf16 forward written beside the weights by
// scripts/gpu/make_bench_models.py (cosine of the last position's logits, greedy continuation).
// Prints one JSON line per measurement (scripts/gpu/cuda_run.sh tabulates them). A concurrency
// line also splits a step's mean wall time: draw_plan_us (planning the draws on the host),
// step_call_us (the runner call: the device's work plus the runner's own host time; the host
// sampler's too with --sampling host) and step_us (the whole step); a CUPTI trace of the same
// step (HELEXA_KERNEL_TRACE) gives the device's share.
// Overlapped decoding (docs/design/overlapped-decode.md): batch-1 decode is also measured with
// each step launched before the last one's token is read (a decode_overlapped line), and
// HELEXA_BENCH_OVERLAP=1 runs the argmax and device-drawn concurrency that way ("sampling":
// "argmax-overlapped", "drawn-overlapped", ...).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <cuda_profiler_api.h>

#include <nlohmann/json.hpp>

#include "bench_list.h"
#include "helexa/common/logging.h"
#include "helexa/cuda/cuda_backend.h"
#include "helexa/engine/cpu_backend.h"
#include "helexa/engine/model_runner.h"
#include "helexa/engine/sampler.h"
#include "helexa/engine/row_draw.h"
#include "helexa/engine/sampling_config.h"
#include "helexa/engine/scheduler.h"
#include "kernel_trace.h"

namespace {

using helexa::engine::CausalLmRunner;
using helexa::engine::StepBatch;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The batch whose middle decode step runs under cudaProfilerStart/Stop and the kernel trace
// (HELEXA_PROFILE_DECODE_STEP, 0 = none): 1 for the batch-1 decode, B for the B-stream run.
int64_t profile_batch() {
    static const int64_t batch = [] {
        const char* v = std::getenv("HELEXA_PROFILE_DECODE_STEP");
        return v != nullptr ? std::max<int64_t>(std::atoll(v), 0) : 0;
    }();
    return batch;
}

// HELEXA_KERNEL_TRACE=FILE: the profiled step's kernel timeline (kernel_trace.h) is written to
// FILE. Recording starts before any graph is captured.
const char* trace_path() {
    static const char* path = std::getenv("HELEXA_KERNEL_TRACE");
    return path;
}

// Brackets the profiled step: Nsight Compute's range and the kernel trace's window. Both ends
// run with the device idle (the step before returned its tokens; this one returns its own).
void profiled_step_begin() {
    cudaProfilerStart();
    if (trace_path() != nullptr) {
        helexa::bench::KernelTrace::clear();
    }
}

void profiled_step_end(const std::string& what) {
    cudaProfilerStop();
    if (trace_path() == nullptr) {
        return;
    }
    std::FILE* f = std::fopen(trace_path(), "a");
    if (f == nullptr) {
        std::fprintf(stderr, "cuda_engine_bench: cannot write %s\n", trace_path());
        return;
    }
    std::fprintf(f, "\n## %s\n\n", what.c_str());
    helexa::bench::KernelTrace::report(helexa::bench::KernelTrace::collect(), f);
    std::fclose(f);
}

int32_t argmax(const float* v, int64_t n) {
    return static_cast<int32_t>(std::max_element(v, v + n) - v);
}

struct Seq {
    std::vector<int32_t> tokens;
    std::vector<int32_t> table;
    int64_t pos = 0;
};

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "cuda_engine_bench: %s\n", what.c_str());
    std::exit(1);
}

void step_or_die(CausalLmRunner& r, const StepBatch& b, std::vector<float>& logits) {
    auto st = r.step(b, logits);
    if (!st) {
        die(st.error().full_message());
    }
}

// Greedy decode as the scheduler runs it: the argmax is taken on the device.
void argmax_step_or_die(CausalLmRunner& r, const StepBatch& b, std::vector<int32_t>& tokens) {
    auto st = r.step_argmax(b, tokens);
    if (!st) {
        die(st.error().full_message());
    }
    for (int32_t t : tokens) {
        if (t < 0) {
            die("non-finite logits");
        }
    }
}

// One decode step of streams sampled on the host (--sampling host).
struct HostSampling {
    HostSampling(int64_t streams, int threads)
        : pool(threads > 0 ? threads : helexa::engine::default_sampling_threads()),
          samplers(static_cast<size_t>(pool.size())) {
        for (int64_t i = 0; i < streams; ++i) {
            rngs.emplace_back(static_cast<uint64_t>(1000 + i));
        }
    }
    helexa::engine::cpu::ThreadPool pool;
    std::vector<helexa::engine::Sampler> samplers;
    std::vector<helexa::engine::SamplerRng> rngs;
    helexa::engine::SamplingConfig cfg;  // the defaults a request without settings gets
};

// One decode step of streams drawn where the logits are (--sampling drawn, drawn-topk, drawn-topp).
void drawn_step_or_die(CausalLmRunner& r, const StepBatch& b,
                       const helexa::engine::DrawBatch& draws, std::vector<int32_t>& tokens) {
    std::span<float> host_rows;
    if (auto st = r.step_sample(b, draws, tokens, host_rows); !st) {
        die(st.error().full_message());
    }
    if (!host_rows.empty()) {
        die("a drawn step left rows to the host");
    }
    for (int32_t t : tokens) {
        if (t < 0) {
            die("non-finite logits");
        }
    }
}

void sampled_step_or_die(CausalLmRunner& r, const StepBatch& b, const std::vector<Seq>& seqs,
                         int64_t prompt_len, HostSampling& hs, std::vector<int32_t>& tokens) {
    std::span<float> rows;
    if (auto st = r.step_in_place(b, rows); !st) {
        die(st.error().full_message());
    }
    const auto n = static_cast<int64_t>(b.seqs.size());
    const size_t vocab = rows.size() / static_cast<size_t>(n);
    tokens.assign(static_cast<size_t>(n), 0);
    std::vector<std::string> errors(static_cast<size_t>(n));
    hs.pool.parallel_for(n, 1, [&](int64_t r0, int64_t r1, int chunk) {
        auto& sampler = hs.samplers[static_cast<size_t>(chunk)];
        for (int64_t i = r0; i < r1; ++i) {
            const auto& s = seqs[static_cast<size_t>(i)];
            const auto generated =
                std::span<const int32_t>(s.tokens).subspan(static_cast<size_t>(prompt_len));
            auto t = sampler.sample(rows.subspan(static_cast<size_t>(i) * vocab, vocab), hs.cfg,
                                    generated, hs.rngs[static_cast<size_t>(i)]);
            if (t) {
                tokens[static_cast<size_t>(i)] = *t;
            } else {
                errors[static_cast<size_t>(i)] = t.error().full_message();
            }
        }
    });
    for (const auto& e : errors) {
        if (!e.empty()) {
            die(e);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    // HELEXA_LOG / RUST_LOG as neuron takes them (e.g. neuron::cuda=debug: the matmul tuner's
    // choices).
    helexa::init_logging(helexa::log_directives_from_env());
    if (trace_path() != nullptr && !helexa::bench::KernelTrace::enable()) {
        return 1;
    }
    std::string model;
    std::string label = "model";
    double copy_gbps = 0;
    double gemm_tflops = 0;
    int64_t decode_steps = 128;
    std::vector<int64_t> prompts = {128, 4096, 32768};
    std::vector<int64_t> concurrency = {1, 8, 32, 64};
    int64_t conc_prompt = 512;
    int64_t conc_long = 0;  // --concurrency-long: stream 0's prompt instead, when > 0
    int64_t conc_output = 256;
    std::string sampling_mode;  // empty: argmax
    int sampling_threads = 0;   // 0: the scheduler's default
    bool reference = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                die("missing value for " + a);
            }
            return argv[++i];
        };
        if (a == "--model") {
            model = next();
        } else if (a == "--label") {
            label = next();
        } else if (a == "--copy-gbps") {
            copy_gbps = std::stod(next());
        } else if (a == "--gemm-tflops") {
            gemm_tflops = std::stod(next());
        } else if (a == "--decode-steps") {
            decode_steps = std::stoll(next());
        } else if (a == "--prompts") {
            prompts = parse_list(next());
        } else if (a == "--concurrency") {
            concurrency = parse_list(next());
        } else if (a == "--reference") {
            reference = true;
        } else if (a == "--sampling") {
            sampling_mode = next();
            if (sampling_mode != "host" && sampling_mode != "drawn" &&
                sampling_mode != "drawn-greedy" && sampling_mode != "drawn-topk" &&
                sampling_mode != "drawn-topp") {
                die("--sampling takes host, drawn, drawn-greedy, drawn-topk or drawn-topp");
            }
        } else if (a == "--sampling-threads") {
            sampling_threads = static_cast<int>(std::stoll(next()));
        } else if (a == "--concurrency-long") {
            conc_long = std::stoll(next());
        } else if (a == "--concurrency-output") {
            conc_output = std::stoll(next());
        } else {
            die("unknown option " + a);
        }
    }
    if (model.empty() || copy_gbps <= 0 || gemm_tflops <= 0) {
        die("usage: --model DIR --copy-gbps X --gemm-tflops Y [...]");
    }
    helexa::cuda::register_cuda_backend();
    helexa::engine::ModelRunnerOptions opt;
    opt.backend.kind = "cuda";
    opt.block_size = 16;
    opt.memory_utilization = 0.9;
    opt.max_full_context_seqs = 0;
    const auto t_load = Clock::now();
    auto loaded = helexa::engine::load_model_runner(model, opt);
    if (!loaded) {
        die(loaded.error().full_message());
    }
    CausalLmRunner& r = **loaded;
    const double load_s = seconds_since(t_load);
    const auto& c = r.config();
    const int64_t V = r.vocab_size();
    const int64_t bs = r.kv_layout().block_size;
    // Bytes read per decoded token: every weight except the input embedding table (lm_head is
    // read; with tied embeddings the table *is* lm_head and counts once).
    const int64_t embed_bytes = c.tie_word_embeddings ? 0 : c.vocab_size * c.hidden_size * 2;
    const int64_t weight_bytes = r.weight_bytes() - embed_bytes;
    // Parameters that take part in the GEMMs (the embedding lookup does no arithmetic).
    const double params = static_cast<double>(weight_bytes) / 2.0;
    const int64_t kv_per_token = helexa::engine::kv_bytes_per_token(c, helexa::engine::DType::kBF16);
    std::printf("{\"kind\":\"load\",\"label\":\"%s\",\"seconds\":%.2f,\"weight_bytes\":%lld,"
                "\"read_bytes_per_token\":%lld,\"kv_cache_bytes\":%lld,\"kv_blocks\":%lld}\n",
                label.c_str(), load_s, static_cast<long long>(r.weight_bytes()),
                static_cast<long long>(weight_bytes), static_cast<long long>(r.kv_cache_bytes()),
                static_cast<long long>(r.kv_layout().n_blocks));
    std::fflush(stdout);

    int32_t next_block = 0;
    auto make_seq = [&](int64_t prompt_len, int64_t max_len, int32_t salt) {
        Seq s;
        s.tokens.resize(static_cast<size_t>(prompt_len));
        for (int64_t i = 0; i < prompt_len; ++i) {
            s.tokens[static_cast<size_t>(i)] =
                static_cast<int32_t>((i * 7919 + salt * 104729) % std::min<int64_t>(V, 100000));
        }
        const int64_t blocks = (max_len + bs - 1) / bs;
        if (next_block + blocks > r.kv_layout().n_blocks) {
            next_block = 0;  // reuse the pool from the start: earlier sequences are done
        }
        s.table.resize(static_cast<size_t>(blocks));
        std::iota(s.table.begin(), s.table.end(), next_block);
        next_block += static_cast<int32_t>(blocks);
        return s;
    };
    std::vector<float> logits;
    // Prefill a sequence in chunks of at most `chunk` tokens; returns seconds.
    auto prefill = [&](Seq& s, int64_t chunk) {
        const auto t0 = Clock::now();
        const auto n = static_cast<int64_t>(s.tokens.size());
        for (int64_t start = 0; start < n; start += chunk) {
            const int64_t len = std::min(chunk, n - start);
            StepBatch b;
            b.seqs.push_back({1, std::span<const int32_t>(s.tokens).subspan(
                                     static_cast<size_t>(start), static_cast<size_t>(len)),
                              start, s.table, start + len == n});
            step_or_die(r, b, logits);
        }
        s.pos = n;
        s.tokens.push_back(argmax(logits.data(), V));
        return seconds_since(t0);
    };

    // ---- correctness against transformers' bf16 forward --------------------------------------
    if (reference) {
        const std::filesystem::path dir(model);
        std::ifstream jf(dir / "reference.json");
        if (!jf) {
            die("no reference.json in " + model);
        }
        const auto ref = nlohmann::json::parse(jf);
        const auto ptoks = ref["prompt"].get<std::vector<int32_t>>();
        const auto greedy = ref["greedy"].get<std::vector<int32_t>>();
        std::vector<float> want(static_cast<size_t>(V));
        std::ifstream lf(dir / "reference_logits.bin", std::ios::binary);
        lf.read(reinterpret_cast<char*>(want.data()), static_cast<std::streamsize>(V * 4));
        if (!lf) {
            die("short reference_logits.bin");
        }
        Seq s = make_seq(static_cast<int64_t>(ptoks.size()), 256, 0);
        s.tokens = ptoks;
        prefill(s, 8192);
        double dot = 0;
        double na = 0;
        double nb = 0;
        for (int64_t i = 0; i < V; ++i) {
            dot += static_cast<double>(logits[static_cast<size_t>(i)]) * want[static_cast<size_t>(i)];
            na += static_cast<double>(logits[static_cast<size_t>(i)]) * logits[static_cast<size_t>(i)];
            nb += static_cast<double>(want[static_cast<size_t>(i)]) * want[static_cast<size_t>(i)];
        }
        const double cos = dot / std::sqrt(na * nb);
        // Against the f32 forward too, when the generator wrote it.
        double cos32 = 0;
        std::vector<float> want32(static_cast<size_t>(V));
        std::ifstream lf32(dir / "reference_logits_f32.bin", std::ios::binary);
        if (lf32.read(reinterpret_cast<char*>(want32.data()), static_cast<std::streamsize>(V * 4))) {
            double d = 0;
            double n32 = 0;
            for (int64_t i = 0; i < V; ++i) {
                d += static_cast<double>(logits[static_cast<size_t>(i)]) * want32[static_cast<size_t>(i)];
                n32 += static_cast<double>(want32[static_cast<size_t>(i)]) * want32[static_cast<size_t>(i)];
            }
            cos32 = d / std::sqrt(na * n32);
        }
        const auto greedy32 = ref.value("greedy_f32", std::vector<int32_t>{});
        std::vector<int32_t> ours = {s.tokens.back()};
        while (ours.size() < greedy.size()) {
            StepBatch b;
            b.seqs.push_back({1, std::span<const int32_t>(s.tokens).last(1), s.pos, s.table, true});
            step_or_die(r, b, logits);
            s.pos += 1;
            s.tokens.push_back(argmax(logits.data(), V));
            ours.push_back(s.tokens.back());
        }
        auto agree = [&](const std::vector<int32_t>& expected) {
            size_t same = 0;
            while (same < expected.size() && same < ours.size() && ours[same] == expected[same]) {
                ++same;
            }
            return same;
        };
        std::printf("{\"kind\":\"reference\",\"label\":\"%s\",\"cosine\":%.6f,"
                    "\"cosine_f32\":%.6f,\"transformers_bf16_vs_f32\":%.6f,"
                    "\"greedy_match\":%zu,\"greedy_match_f32\":%zu,\"greedy_len\":%zu}\n",
                    label.c_str(), cos, cos32, ref.value("bf16_vs_f32_cosine", 0.0),
                    agree(greedy), agree(greedy32), greedy.size());
        std::fflush(stdout);
    }

    // ---- batch-1 decode (--decode-steps 0 skips it) ----------------------------------------
    if (decode_steps > 0) {
        Seq s = make_seq(128, 128 + decode_steps + 16, 1);
        prefill(s, 8192);
        std::vector<int32_t> next;
        for (int w = 0; w < 8; ++w) {  // warm-up (plans, workspaces, graphs)
            StepBatch b;
            b.seqs.push_back({1, std::span<const int32_t>(s.tokens).last(1), s.pos, s.table, true});
            argmax_step_or_die(r, b, next);
            s.pos += 1;
            s.tokens.push_back(next[0]);
        }
        std::vector<double> per_step;
        const auto t0 = Clock::now();
        // HELEXA_PROFILE_DECODE_STEP=1: the middle step runs between cudaProfilerStart/Stop, so
        // `ncu --profile-from-start off` sees exactly one decode step (scripts/gpu/decode_breakdown.sh).
        const bool profile = profile_batch() == 1;
        for (int64_t i = 0; i < decode_steps; ++i) {
            const auto ts = Clock::now();
            StepBatch b;
            b.seqs.push_back({1, std::span<const int32_t>(s.tokens).last(1), s.pos, s.table, true});
            const bool profiled = profile && i == decode_steps / 2;
            if (profiled) {
                profiled_step_begin();
            }
            argmax_step_or_die(r, b, next);
            if (profiled) {
                profiled_step_end(label + ": batch-1 decode step at " + std::to_string(s.pos + 1) +
                                  " keys");
            }
            s.pos += 1;
            s.tokens.push_back(next[0]);
            per_step.push_back(seconds_since(ts));
        }
        const double total = seconds_since(t0);
        std::sort(per_step.begin(), per_step.end());
        const double median = per_step[per_step.size() / 2];
        const double tok_s = 1.0 / median;
        const double roofline = copy_gbps * 1e9 / static_cast<double>(weight_bytes);
        std::printf("{\"kind\":\"decode\",\"label\":\"%s\",\"batch\":1,\"tokens_per_s\":%.1f,"
                    "\"mean_tokens_per_s\":%.1f,\"roofline_tokens_per_s\":%.1f,\"ratio\":%.3f}\n",
                    label.c_str(), tok_s, static_cast<double>(decode_steps) / total, roofline,
                    tok_s / roofline);
        std::fflush(stdout);

        // The same decode with each step launched before the last one's token is read
        // (ModelRunner::launch_argmax, the token fed on the device): the host's time between
        // steps off the device's critical path (docs/design/overlapped-decode.md). The time of
        // a step is the interval between two finishes.
        Seq o = make_seq(128, 128 + decode_steps + 16, 1);
        prefill(o, 8192);
        const std::vector<int32_t> placeholder = {0};
        auto launch = [&](bool fed) {
            StepBatch b;
            helexa::engine::SequenceSlice slice{
                1, fed ? std::span<const int32_t>(placeholder)
                       : std::span<const int32_t>(o.tokens).last(1),
                o.pos, o.table, true};
            slice.fed_row = fed ? 0 : -1;
            b.seqs.push_back(slice);
            o.pos += 1;
            if (auto st = r.launch_argmax(b); !st) {
                die(st.error().full_message());
            }
        };
        auto finish = [&] {
            std::vector<int32_t> t;
            if (auto st = r.finish_launched(t); !st) {
                die(st.error().full_message());
            }
            if (t.size() != 1 || t[0] < 0) {
                die("overlapped decode: no token");
            }
            o.tokens.push_back(t[0]);
        };
        launch(false);
        for (int w = 0; w < 8; ++w) {
            launch(true);
            finish();
        }
        std::vector<double> intervals;
        const auto o0 = Clock::now();
        auto last = o0;
        for (int64_t i = 0; i < decode_steps; ++i) {
            launch(true);
            finish();
            const auto now = Clock::now();
            intervals.push_back(std::chrono::duration<double>(now - last).count());
            last = now;
        }
        const double o_total = seconds_since(o0);
        finish();
        std::sort(intervals.begin(), intervals.end());
        const double o_tok_s = 1.0 / intervals[intervals.size() / 2];
        std::printf("{\"kind\":\"decode_overlapped\",\"label\":\"%s\",\"batch\":1,"
                    "\"tokens_per_s\":%.1f,\"mean_tokens_per_s\":%.1f,"
                    "\"roofline_tokens_per_s\":%.1f,\"ratio\":%.3f}\n",
                    label.c_str(), o_tok_s, static_cast<double>(decode_steps) / o_total, roofline,
                    o_tok_s / roofline);
        std::fflush(stdout);
    }

    // ---- prefill / time to first token ------------------------------------------------------
    for (int64_t L : prompts) {
        if (L + 16 > r.max_context_tokens()) {
            continue;
        }
        std::vector<double> times;
        for (int rep = 0; rep < 3; ++rep) {
            Seq s = make_seq(L, L + 16, 2 + rep);
            times.push_back(prefill(s, 8192));
        }
        // The first prompt of a length also pays its matmuls' first-use tuning (first_ttft_ms);
        // the ratio is the median of the three.
        const double first = times.front();
        std::sort(times.begin(), times.end());
        const double t = times[1];
        const double flops = 2.0 * params * static_cast<double>(L);
        const double rate = flops / t / 1e12;
        std::printf("{\"kind\":\"prefill\",\"label\":\"%s\",\"tokens\":%lld,\"ttft_ms\":%.2f,"
                    "\"first_ttft_ms\":%.2f,\"tflops\":%.1f,\"ratio\":%.3f}\n",
                    label.c_str(), static_cast<long long>(L), t * 1e3, first * 1e3, rate,
                    rate / gemm_tflops);
        std::fflush(stdout);
    }

    // ---- concurrency: B streams, 512-token prompts, 256 output tokens each -------------------
    for (int64_t B : concurrency) {
        if (conc_output < 2) {
            break;  // one untimed step, at least one timed
        }
        const int64_t max_len = conc_prompt + conc_output + 16;
        // Stream 0's prompt (--concurrency-long), the rest conc_prompt tokens.
        auto prompt_of = [&](size_t i) { return i == 0 && conc_long > 0 ? conc_long : conc_prompt; };
        const int64_t long_len = prompt_of(0) + conc_output + 16;
        if ((max_len + bs - 1) / bs * (B - 1) + (long_len + bs - 1) / bs >
            r.kv_layout().n_blocks) {
            std::printf("{\"kind\":\"skip\",\"label\":\"%s\",\"batch\":%lld,\"why\":\"KV pool\"}\n",
                        label.c_str(), static_cast<long long>(B));
            continue;
        }
        next_block = 0;
        std::vector<Seq> seqs;
        for (int64_t i = 0; i < B; ++i) {
            const int64_t p = prompt_of(static_cast<size_t>(i));
            seqs.push_back(make_seq(p, p + conc_output + 16, static_cast<int32_t>(10 + i)));
        }
        // Prefill all prompts together in chunks of up to 8192 tokens (not timed here); a long
        // stream 0 alone, in chunks.
        {
            StepBatch b;
            int64_t in_batch = 0;
            for (auto& s : seqs) {
                if (&s == &seqs.front() && conc_long > 0) {
                    continue;
                }
                b.seqs.push_back({0, s.tokens, 0, s.table, true});
                in_batch += conc_prompt;
                if (in_batch >= 8192) {
                    step_or_die(r, b, logits);
                    b.seqs.clear();
                    in_batch = 0;
                }
            }
            if (!b.seqs.empty()) {
                step_or_die(r, b, logits);
            }
            for (auto& s : seqs) {
                if (&s == &seqs.front() && conc_long > 0) {
                    prefill(s, 8192);  // its position, and its first token
                    continue;
                }
                s.pos = conc_prompt;
                s.tokens.push_back(1);
            }
        }
        double kv_read = 0;
        std::vector<int32_t> next;
        std::unique_ptr<HostSampling> sampling;
        if (sampling_mode == "host") {
            sampling = std::make_unique<HostSampling>(B, sampling_threads);
        }
        helexa::engine::SamplingConfig draw_cfg;  // the defaults, Qwen3's or Llama's
        if (sampling_mode == "drawn-greedy") {
            draw_cfg.temperature = 0.0F;
        } else if (sampling_mode == "drawn-topk") {
            draw_cfg.temperature = 0.6F;
            draw_cfg.top_k = 20;
            draw_cfg.top_p = 0.95F;
        } else if (sampling_mode == "drawn-topp") {
            draw_cfg.temperature = 0.6F;
            draw_cfg.top_p = 0.9F;
        }
        helexa::engine::DrawBatch draws;
        double plan_seconds = 0;  // host time planning the draws (on the step's critical path)
        // HELEXA_BENCH_OVERLAP=1: argmax and device-drawn steps overlapped (each launched
        // before the last one's tokens are read, a drawn row planned with its token in flight,
        // as the scheduler's overlap_decode runs them; an A/B of the same binary through
        // concurrency_ab.sh). The time of a step is then from one finish to the next.
        static const bool overlap_env = [] {
            const char* v = std::getenv("HELEXA_BENCH_OVERLAP");
            return v != nullptr && std::string_view(v) == "1";
        }();
        const bool overlapped = overlap_env && !sampling;
        // The step call itself (the runner, or the runner and the host sampler): the rest of a
        // step's wall time is this loop's own bookkeeping.
        double runner_seconds = 0;
        // Step 0 is untimed (its wall time is reported as first_step_us): it pays what a serving
        // process pays once in its life for a batch shape, the recording of its decode graph at
        // this block-table width (and cuBLASLt's tuning of its row count, where the load's
        // warm-up did not cover it). The rest are timed; per_step keeps each one's wall time
        // (median_step_us).
        std::vector<double> per_step;
        double first_step = 0;
        auto t0 = Clock::now();
        for (int64_t step = 0; step < conc_output; ++step) {
            if (step == 1) {
                first_step = per_step.front();
                per_step.clear();
                kv_read = 0;
                plan_seconds = 0;
                runner_seconds = 0;
                t0 = Clock::now();
            }
            StepBatch b;
            for (size_t i = 0; i < seqs.size(); ++i) {
                auto& s = seqs[i];
                b.seqs.push_back({i, std::span<const int32_t>(s.tokens).last(1), s.pos, s.table,
                                  true});
                kv_read += static_cast<double>(s.pos + 1) * static_cast<double>(kv_per_token);
            }
            // HELEXA_PROFILE_DECODE_STEP=B (B > 1): the middle step of the B-stream run, as above.
            const bool profiled = profile_batch() == B && step == conc_output / 2;
            if (profiled) {
                profiled_step_begin();
            }
            const auto step_start = Clock::now();
            auto runner_start = Clock::now();
            const bool drawn = !sampling && !sampling_mode.empty();
            if (drawn) {
                const auto plan_start = Clock::now();
                draws.clear();
                for (size_t i = 0; i < seqs.size(); ++i) {
                    helexa::engine::plan_row_draw(
                        draw_cfg,
                        std::span<const int32_t>(seqs[i].tokens)
                            .subspan(static_cast<size_t>(prompt_of(i))),
                        1000 + i, V, true, draws, overlapped && step > 0);
                }
                plan_seconds += seconds_since(plan_start);
                runner_start = Clock::now();
            }
            if (sampling) {
                sampled_step_or_die(r, b, seqs, conc_prompt, *sampling, next);
            } else if (overlapped) {
                // This step launched fed from the one in flight, then that one's tokens read.
                if (step > 0) {
                    for (size_t i = 0; i < b.seqs.size(); ++i) {
                        b.seqs[i].fed_row = static_cast<int32_t>(i);
                    }
                }
                if (auto st = drawn ? r.launch_sample(b, draws) : r.launch_argmax(b); !st) {
                    die(st.error().full_message());
                }
                next.clear();
                if (step > 0 && !r.finish_launched(next)) {
                    die("overlapped step failed");
                }
            } else if (drawn) {
                drawn_step_or_die(r, b, draws, next);
            } else {
                argmax_step_or_die(r, b, next);
            }
            runner_seconds += seconds_since(runner_start);
            if (profiled) {
                profiled_step_end(label + ": " + std::to_string(B) + "-stream decode step");
            }
            per_step.push_back(seconds_since(step_start));
            for (size_t i = 0; i < seqs.size(); ++i) {
                seqs[i].pos += 1;
                if (!next.empty()) {  // (overlapped: the step before this one's tokens)
                    seqs[i].tokens.push_back(next[i]);
                }
            }
        }
        const double total = seconds_since(t0);
        if (overlapped && !r.finish_launched(next)) {  // the last step's tokens, untimed
            die("overlapped step failed");
        }
        const int64_t timed_steps = conc_output - 1;
        const double tok_s = static_cast<double>(B * timed_steps) / total;
        std::nth_element(per_step.begin(), per_step.begin() + per_step.size() / 2, per_step.end());
        const double median_step = per_step[per_step.size() / 2];
        // Ceiling: every step reads the weights once plus the batch's KV.
        const double bytes = static_cast<double>(weight_bytes) * static_cast<double>(timed_steps) +
                             kv_read;
        const double ceiling_s = bytes / (copy_gbps * 1e9);
        const double ceiling_tok_s = static_cast<double>(B * timed_steps) / ceiling_s;
        std::printf("{\"kind\":\"concurrent\",\"label\":\"%s\",\"batch\":%lld,"
                    "\"sampling\":\"%s\",\"sampling_threads\":%d,\"tokens_per_s\":%.1f,"
                    "\"ceiling_tokens_per_s\":%.1f,\"ratio\":%.3f,\"draw_plan_us\":%.1f,"
                    "\"step_call_us\":%.1f,\"step_us\":%.1f,\"median_step_us\":%.1f,"
                    "\"first_step_us\":%.1f,\"long_prompt\":%lld}\n",
                    label.c_str(), static_cast<long long>(B),
                    ((sampling_mode.empty() ? std::string("argmax") : sampling_mode) +
                     (overlapped ? "-overlapped" : ""))
                        .c_str(),
                    sampling ? sampling->pool.size() : 0, tok_s, ceiling_tok_s,
                    tok_s / ceiling_tok_s,
                    1e6 * plan_seconds / static_cast<double>(timed_steps),
                    1e6 * runner_seconds / static_cast<double>(timed_steps),
                    1e6 * total / static_cast<double>(timed_steps), 1e6 * median_step,
                    1e6 * first_step, static_cast<long long>(conc_long));
        std::fflush(stdout);
    }
    return 0;
}
