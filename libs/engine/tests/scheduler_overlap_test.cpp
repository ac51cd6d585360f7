// Scheduler: overlapped decoding (SchedulerOptions::overlap_decode; docs/design/overlapped-
// decode.md), driven step by step through step_once(). The scripted runner runs each launched
// step at its finish (ModelRunner's default), reading every token back from its simulated KV
// pool, so a fed row taken from the wrong step, a position off by one or a stale block table
// changes the text.
#include <gtest/gtest.h>

#include <memory>

#include "scheduler_test_support.h"

namespace helexa::engine {
namespace {

using testing::Collector;
using testing::expect_finished;
using testing::expected_greedy;
using testing::make_prompt;
using testing::pieces_text;
using testing::run_until_idle;
using testing::ScriptedRunner;

constexpr int64_t kVocab = 64;

struct Harness {
    Harness(int64_t n_blocks, GenerationDefaults gen = {}, bool overlap = true)
        : runner(kVocab, 4, n_blocks) {
        SchedulerModel model;
        model.generation = std::move(gen);
        model.text_decoder = testing::table_decoder_factory();
        SchedulerOptions options;
        options.prefill_chunk_tokens = 16;
        options.seed_source = [] { return uint64_t{7}; };
        options.overlap_decode = overlap;
        scheduler = std::make_unique<Scheduler>(runner, std::move(model), std::move(options));
    }
    uint64_t submit(GenerateRequest r, Collector& c) {
        auto id = scheduler->submit(std::move(r), c.sink());
        EXPECT_TRUE(id.has_value()) << (id ? "" : id.error().message());
        return id.value_or(0);
    }
    ScriptedRunner runner;
    std::unique_ptr<Scheduler> scheduler;
};

// Plain greedy: the argmax of the logits, nothing applied first (what overlaps).
GenerateRequest plain_greedy(std::vector<int32_t> prompt, int64_t max_tokens) {
    GenerateRequest r;
    r.prompt_tokens = std::move(prompt);
    r.sampling.temperature = 0.0F;
    r.sampling.repetition_penalty = 1.0F;
    r.sampling.max_tokens = max_tokens;
    return r;
}

// Staggered arrivals (each one runs the pipeline out: a prefill is scheduled), different
// lengths (the pipeline stops one step before each length limit), then a steady stretch.
TEST(SchedulerOverlap, StaggeredGreedyRequestsMatchTheScriptAndRunAhead) {
    Harness h(256);
    const std::vector<int64_t> prompt_lens = {1, 7, 33, 70, 3};
    const std::vector<int64_t> max_tokens = {40, 5, 12, 30, 2};
    std::vector<std::unique_ptr<Collector>> collectors;
    std::vector<std::vector<int32_t>> prompts;
    for (size_t i = 0; i < prompt_lens.size(); ++i) {
        collectors.push_back(std::make_unique<Collector>());
        prompts.push_back(make_prompt(prompt_lens[i], static_cast<int32_t>(i), kVocab));
    }
    h.submit(plain_greedy(prompts[0], max_tokens[0]), *collectors[0]);
    for (size_t i = 1; i < prompts.size(); ++i) {
        for (int s = 0; s < 6; ++s) {
            h.scheduler->step_once();
        }
        h.submit(plain_greedy(prompts[i], max_tokens[i]), *collectors[i]);
    }
    run_until_idle(*h.scheduler);
    for (size_t i = 0; i < prompts.size(); ++i) {
        SCOPED_TRACE(i);
        expect_finished(*collectors[i], FinishReason::kLength);
        EXPECT_EQ(collectors[i]->text(),
                  pieces_text(expected_greedy(prompts[i], max_tokens[i], kVocab)));
        EXPECT_EQ(collectors[i]->terminal().usage.completion_tokens, max_tokens[i]);
    }
    // Most decode tokens were launched ahead, fed from the step before.
    EXPECT_GT(h.runner.fed_slices(), 40);
    EXPECT_EQ(h.scheduler->stats().available_blocks, 256);
    EXPECT_EQ(h.scheduler->stats().in_flight, 0);
}

// A stop token while the next step is already in flight: the text ends there, the extra
// step's token is dropped, and the other stream goes on unaffected.
TEST(SchedulerOverlap, AStopTokenEndsTheStreamAndTheStepAheadIsDropped) {
    const auto prompt = make_prompt(6, 3, kVocab);
    const auto script = expected_greedy(prompt, 30, kVocab);
    GenerationDefaults gen;
    gen.eos_token_ids = {script[12]};
    Harness h(128, gen);
    Collector stops;
    Collector other;
    const auto other_prompt = make_prompt(9, 5, kVocab);
    h.submit(plain_greedy(prompt, 30), stops);
    h.submit(plain_greedy(other_prompt, 25), other);
    run_until_idle(*h.scheduler);
    expect_finished(stops, FinishReason::kStop);
    // The stop token itself is not text; everything before its first appearance is.
    size_t first = 0;
    while (script[first] != script[12]) {
        ++first;
    }
    EXPECT_EQ(stops.text(), pieces_text({script.begin(), script.begin() + first}));
    EXPECT_EQ(stops.terminal().usage.completion_tokens, static_cast<int64_t>(first) + 1);
    // The other stream's script may hold the stop token too.
    const auto other_script = expected_greedy(other_prompt, 25, kVocab);
    size_t other_end = 0;
    while (other_end < other_script.size() && other_script[other_end] != script[12]) {
        ++other_end;
    }
    expect_finished(other,
                    other_end < other_script.size() ? FinishReason::kStop : FinishReason::kLength);
    EXPECT_EQ(other.text(),
              pieces_text({other_script.begin(), other_script.begin() + other_end}));
    EXPECT_GT(h.runner.fed_slices(), 10);
    EXPECT_EQ(h.scheduler->stats().available_blocks, 128);
}

// A cancellation while a step is in flight: the stream ends cancelled, the step is read out,
// the blocks come back, and a request after it runs as it would alone.
TEST(SchedulerOverlap, CancellingDuringTheStepInFlightFreesEverything) {
    Harness h(64);
    Collector cancelled;
    const uint64_t id = h.submit(plain_greedy(make_prompt(5, 1, kVocab), 200), cancelled);
    for (int s = 0; s < 10; ++s) {
        h.scheduler->step_once();
    }
    EXPECT_GT(h.runner.fed_slices(), 0);
    h.scheduler->cancel(id);
    run_until_idle(*h.scheduler);
    expect_finished(cancelled, FinishReason::kCancelled);
    EXPECT_EQ(h.scheduler->stats().available_blocks, 64);
    Collector after;
    const auto prompt = make_prompt(8, 2, kVocab);
    h.submit(plain_greedy(prompt, 9), after);
    run_until_idle(*h.scheduler);
    expect_finished(after, FinishReason::kLength);
    EXPECT_EQ(after.text(), pieces_text(expected_greedy(prompt, 9, kVocab)));
}

// Drawn requests run ahead too (their draws planned with the token in flight, which the
// runner's feed completes): seeded sampling, the default request (greedy with a repetition
// penalty), a penalty strong enough to flip the greedy token, a bias and top-k, presence and
// frequency penalties. The runner
// raises each step's fed token nearly to the script's target, so the penalty on the token in
// flight decides most draws. Each stream's tokens must be exactly those of the same requests
// stepped synchronously.
TEST(SchedulerOverlap, DrawnRequestsRunAheadWithTheTokensOfSteppingSynchronously) {
    auto requests = [] {
        std::vector<GenerateRequest> out;
        GenerateRequest sampled = plain_greedy(make_prompt(5, 1, kVocab), 40);
        sampled.sampling.temperature = 1.0F;
        sampled.sampling.seed = 11;
        sampled.sampling.repetition_penalty = 3.0F;
        out.push_back(sampled);
        GenerateRequest by_default = plain_greedy(make_prompt(7, 2, kVocab), 30);
        by_default.sampling.repetition_penalty.reset();  // the engine's default (1.1)
        out.push_back(by_default);
        GenerateRequest flipped = plain_greedy(make_prompt(3, 3, kVocab), 35);
        flipped.sampling.repetition_penalty = 10.0F;  // a repeated target drops below the rest
        out.push_back(flipped);
        GenerateRequest biased = plain_greedy(make_prompt(9, 4, kVocab), 40);
        biased.sampling.temperature = 0.8F;
        biased.sampling.seed = 5;
        biased.sampling.top_k = 6;
        biased.sampling.repetition_penalty = 2.0F;
        biased.sampling.logit_bias = {{3, 2.0F}, {10, 1.5F}, {17, -1.0F}};
        out.push_back(biased);
        GenerateRequest counted = plain_greedy(make_prompt(6, 5, kVocab), 40);
        counted.sampling.presence_penalty = 1.5F;  // greedy: the token just generated drops
        counted.sampling.frequency_penalty = 0.5F;
        out.push_back(counted);
        return out;
    };
    std::vector<std::string> texts[2];
    for (const bool overlap : {false, true}) {
        Harness h(256, {}, overlap);
        h.runner.echo_last = 4.6F;
        std::vector<std::unique_ptr<Collector>> collectors;
        for (auto& r : requests()) {
            collectors.push_back(std::make_unique<Collector>());
            h.submit(std::move(r), *collectors.back());
        }
        run_until_idle(*h.scheduler);
        for (const auto& c : collectors) {
            expect_finished(*c, FinishReason::kLength);
            texts[overlap ? 1 : 0].push_back(c->text());
        }
        if (overlap) {
            EXPECT_GT(h.runner.fed_drawn_slices(), 100);
        } else {
            EXPECT_EQ(h.runner.fed_slices(), 0);
        }
        EXPECT_EQ(h.scheduler->stats().available_blocks, 256);
    }
    EXPECT_EQ(texts[1], texts[0]);
    // The penalty mattered: the flipped stream is not the plain greedy script.
    EXPECT_NE(texts[0][2], pieces_text(expected_greedy(make_prompt(3, 3, kVocab), 35, kVocab)));
}

// A request left to the host Sampler (top-p over the whole vocabulary, on a runner that does
// not draw it) joining greedy ones runs the pipeline out and steps synchronously (its logits
// go to the host); the greedy text is unchanged.
TEST(SchedulerOverlap, ARowForTheHostSamplerStepsWithoutRunningAhead) {
    Harness h(128);
    h.runner.whole_vocab_top_p = false;
    Collector greedy;
    Collector host;
    const auto prompt = make_prompt(4, 9, kVocab);
    h.submit(plain_greedy(prompt, 20), greedy);
    for (int s = 0; s < 5; ++s) {
        h.scheduler->step_once();
    }
    const int fed_before = h.runner.fed_slices();
    EXPECT_GT(fed_before, 0);
    GenerateRequest r = plain_greedy(make_prompt(5, 4, kVocab), 10);
    r.sampling.temperature = 1.0F;
    r.sampling.top_p = 0.9F;
    h.submit(std::move(r), host);
    for (int s = 0; s < 8; ++s) {
        h.scheduler->step_once();
    }
    EXPECT_EQ(h.runner.fed_slices(), fed_before);  // none while the host's row runs
    run_until_idle(*h.scheduler);
    expect_finished(greedy, FinishReason::kLength);
    expect_finished(host, FinishReason::kLength);
    EXPECT_EQ(greedy.text(), pieces_text(expected_greedy(prompt, 20, kVocab)));
}

}  // namespace
}  // namespace helexa::engine
