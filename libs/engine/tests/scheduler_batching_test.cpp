// Scheduler: batching, chunked prefill, pool pressure and the prefix cache, driven step by step
// on the test thread through step_once() so every interleaving is deterministic.
#include <gtest/gtest.h>

#include <memory>
#include <set>

#include "scheduler_test_support.h"

namespace helexa::engine {
namespace {

using testing::Collector;
using testing::expect_finished;
using testing::expected_greedy;
using testing::greedy_request;
using testing::make_prompt;
using testing::pieces_text;
using testing::run_until_idle;
using testing::ScriptedRunner;
using testing::SliceRecord;

constexpr int64_t kVocab = 64;

struct Harness {
    Harness(int64_t block_size, int64_t n_blocks, int64_t chunk, bool prefix_cache = true,
            GenerationDefaults gen = {}, int sampling_threads = 0)
        : runner(kVocab, block_size, n_blocks) {
        SchedulerModel model;
        model.generation = std::move(gen);
        model.text_decoder = testing::table_decoder_factory();
        SchedulerOptions options;
        options.prefill_chunk_tokens = chunk;
        options.prefix_cache.enabled = prefix_cache;
        options.seed_source = [] { return uint64_t{7}; };
        options.sampling_threads = sampling_threads;
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

TEST(SchedulerBatching, SingleRequestGreedyMatchesScript) {
    Harness h(4, 64, 512);
    Collector c;
    const auto prompt = make_prompt(5, 1, kVocab);
    h.submit(greedy_request(prompt, 10), c);
    run_until_idle(*h.scheduler);

    expect_finished(c, FinishReason::kLength);
    EXPECT_EQ(c.text(), pieces_text(expected_greedy(prompt, 10, kVocab)));
    const auto events = c.events();
    EXPECT_EQ(events.front().kind, EngineEvent::Kind::kStarted);
    const Usage u = c.terminal().usage;
    EXPECT_EQ(u.prompt_tokens, 5);
    EXPECT_EQ(u.completion_tokens, 10);
    EXPECT_EQ(u.cached_tokens, 0);
    // One prefill step then one decode step per further token.
    EXPECT_EQ(h.runner.steps().size(), 10U);
    // The default repetition penalty (1.1, the original's) changes the logits first: full rows.
    EXPECT_EQ(h.runner.argmax_steps(), 0);
}

TEST(SchedulerBatching, PlainGreedyTakesOnlyTheArgmax) {
    Harness h(4, 64, 512);
    Collector c;
    const auto prompt = make_prompt(5, 1, kVocab);
    auto r = greedy_request(prompt, 10);
    r.sampling.repetition_penalty = 1.0F;
    h.submit(std::move(r), c);
    run_until_idle(*h.scheduler);
    expect_finished(c, FinishReason::kLength);
    EXPECT_EQ(c.text(), pieces_text(expected_greedy(prompt, 10, kVocab)));
    // Every step asked the runner for the argmax only (no penalty, no bias, greedy).
    EXPECT_EQ(h.runner.argmax_steps(), 10);
}

TEST(SchedulerBatching, PenaltiesOrSamplingTakeFullLogits) {
    Harness h(4, 64, 512);
    Collector greedy_penalised;
    auto r = greedy_request(make_prompt(5, 1, kVocab), 4);
    r.sampling.repetition_penalty = 1.3F;
    h.submit(std::move(r), greedy_penalised);
    run_until_idle(*h.scheduler);
    expect_finished(greedy_penalised, FinishReason::kLength);
    EXPECT_EQ(h.runner.argmax_steps(), 0);
    EXPECT_EQ(h.runner.steps().size(), 4U);
}

TEST(SchedulerBatching, InterleavedRequestsMatchRunAlone) {
    Harness h(4, 256, 16);
    const std::vector<int64_t> prompt_lens = {1, 7, 33, 70, 130, 3};
    const std::vector<int64_t> max_tokens = {20, 5, 12, 9, 4, 30};
    std::vector<std::unique_ptr<Collector>> collectors;
    std::vector<std::vector<int32_t>> prompts;
    for (size_t i = 0; i < prompt_lens.size(); ++i) {
        collectors.push_back(std::make_unique<Collector>());
        prompts.push_back(make_prompt(prompt_lens[i], static_cast<int32_t>(i), kVocab));
    }
    // Staggered arrivals: two at once, the rest every few steps.
    h.submit(greedy_request(prompts[0], max_tokens[0]), *collectors[0]);
    h.submit(greedy_request(prompts[1], max_tokens[1]), *collectors[1]);
    for (size_t i = 2; i < prompts.size(); ++i) {
        for (int s = 0; s < 3; ++s) {
            h.scheduler->step_once();
        }
        h.submit(greedy_request(prompts[i], max_tokens[i]), *collectors[i]);
    }
    run_until_idle(*h.scheduler);

    for (size_t i = 0; i < prompts.size(); ++i) {
        SCOPED_TRACE(i);
        expect_finished(*collectors[i], FinishReason::kLength);
        EXPECT_EQ(collectors[i]->text(),
                  pieces_text(expected_greedy(prompts[i], max_tokens[i], kVocab)));
    }
    size_t max_batch = 0;
    for (const auto& step : h.runner.steps()) {
        max_batch = std::max(max_batch, step.size());
        int64_t tokens = 0;
        for (const auto& slice : step) {
            tokens += slice.n_tokens;
        }
        EXPECT_LE(tokens, 16);
    }
    EXPECT_GE(max_batch, 3U);
    EXPECT_EQ(h.scheduler->stats().available_blocks, 256);
}

TEST(SchedulerBatching, LongPrefillIsChunkedWhileDecodesContinue) {
    Harness h(4, 128, 16);
    Collector a;
    Collector b;
    const auto prompt_a = make_prompt(3, 1, kVocab);
    const uint64_t id_a = h.submit(greedy_request(prompt_a, 40), a);
    h.scheduler->step_once();  // A's prefill
    h.scheduler->step_once();  // A decodes
    const auto prompt_b = make_prompt(50, 2, kVocab);
    const uint64_t id_b = h.submit(greedy_request(prompt_b, 3), b);
    run_until_idle(*h.scheduler);

    int64_t b_prefilled = 0;
    int64_t b_chunks = 0;
    for (const auto& step : h.runner.steps()) {
        const SliceRecord* sa = nullptr;
        const SliceRecord* sb = nullptr;
        for (const auto& s : step) {
            if (s.seq_id == id_a) {
                sa = &s;
            }
            if (s.seq_id == id_b) {
                sb = &s;
            }
        }
        if (sb == nullptr || b_prefilled >= 50) {
            continue;
        }
        // While B prefills, A still decodes one token in the same step, and B's chunk fills
        // the rest of the 16-token budget.
        ASSERT_NE(sa, nullptr);
        EXPECT_EQ(sa->n_tokens, 1);
        EXPECT_EQ(sb->start_pos, b_prefilled);
        EXPECT_LE(sb->n_tokens, 15);
        b_prefilled += sb->n_tokens;
        ++b_chunks;
        EXPECT_EQ(sb->need_logits, b_prefilled == 50);
    }
    EXPECT_EQ(b_prefilled, 50);
    EXPECT_EQ(b_chunks, 4);  // 15 + 15 + 15 + 5
    EXPECT_EQ(a.text(), pieces_text(expected_greedy(prompt_a, 40, kVocab)));
    EXPECT_EQ(b.text(), pieces_text(expected_greedy(prompt_b, 3, kVocab)));
}

TEST(SchedulerBatching, PoolExhaustionQueuesThenCompletes) {
    // 8 blocks of 4 = 32 tokens; each request needs 10 + 12 = 22 tokens (6 blocks) alone.
    Harness h(4, 8, 64, /*prefix_cache=*/false);
    std::vector<std::unique_ptr<Collector>> cs;
    std::vector<std::vector<int32_t>> prompts;
    for (int i = 0; i < 4; ++i) {
        cs.push_back(std::make_unique<Collector>());
        prompts.push_back(make_prompt(10, i + 3, kVocab));
        h.submit(greedy_request(prompts.back(), 12), *cs.back());
    }
    h.scheduler->step_once();
    EXPECT_GE(h.scheduler->load().queue_depth, 1);
    run_until_idle(*h.scheduler);
    for (int i = 0; i < 4; ++i) {
        SCOPED_TRACE(i);
        expect_finished(*cs[static_cast<size_t>(i)], FinishReason::kLength);
        EXPECT_EQ(cs[static_cast<size_t>(i)]->text(),
                  pieces_text(expected_greedy(prompts[static_cast<size_t>(i)], 12, kVocab)));
    }
    EXPECT_EQ(h.scheduler->stats().available_blocks, 8);
    EXPECT_EQ(h.scheduler->load().in_flight, 0);
    EXPECT_EQ(h.scheduler->load().queue_depth, 0);
}

TEST(SchedulerBatching, DecodeGrowthPreemptsNewestAndRecomputes) {
    // Two requests that each fit alone but not together once they grow: the newest is
    // preempted, recomputed later, and both still match the script exactly.
    Harness h(4, 6, 64, /*prefix_cache=*/false);
    Collector a;
    Collector b;
    const auto pa = make_prompt(4, 1, kVocab);
    const auto pb = make_prompt(4, 2, kVocab);
    h.submit(greedy_request(pa, 16), a);
    h.submit(greedy_request(pb, 16), b);
    run_until_idle(*h.scheduler);
    expect_finished(a, FinishReason::kLength);
    expect_finished(b, FinishReason::kLength);
    EXPECT_EQ(a.text(), pieces_text(expected_greedy(pa, 16, kVocab)));
    EXPECT_EQ(b.text(), pieces_text(expected_greedy(pb, 16, kVocab)));
    EXPECT_GE(h.scheduler->stats().preemptions, 1);
    EXPECT_EQ(h.scheduler->stats().available_blocks, 6);
}

TEST(SchedulerBatching, PromptThatCanNeverFitFailsAtSubmit) {
    Harness h(4, 8, 64);
    Collector c;
    auto r = h.scheduler->submit(greedy_request(make_prompt(32, 1, kVocab), 4), c.sink());
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), ErrorCode::kContextLengthExceeded);
    EXPECT_EQ(r.error().extras().at("max_context"), 32);
    // One token short of the pool fits, and max_tokens is clipped to the one token left.
    auto ok = h.scheduler->submit(greedy_request(make_prompt(31, 1, kVocab), 100), c.sink());
    ASSERT_TRUE(ok.has_value());
    run_until_idle(*h.scheduler);
    expect_finished(c, FinishReason::kLength);
    EXPECT_EQ(c.terminal().usage.completion_tokens, 1);
}

TEST(SchedulerBatching, PrefixCacheHitReportsCachedTokensAndSharesBlocks) {
    Harness h(4, 64, 512);
    const auto shared = make_prompt(16, 5, kVocab);
    auto prompt_a = shared;
    prompt_a.push_back(1);
    prompt_a.push_back(2);
    auto prompt_b = shared;
    prompt_b.push_back(3);

    Collector a;
    const uint64_t id_a = h.submit(greedy_request(prompt_a, 6), a);
    run_until_idle(*h.scheduler);
    expect_finished(a, FinishReason::kLength);
    EXPECT_EQ(a.terminal().usage.cached_tokens, 0);
    std::vector<int32_t> table_a;
    for (const auto& step : h.runner.steps()) {
        for (const auto& s : step) {
            if (s.seq_id == id_a) {
                table_a = s.block_table;
            }
        }
    }

    Collector b;
    const uint64_t id_b = h.submit(greedy_request(prompt_b, 6), b);
    run_until_idle(*h.scheduler);
    expect_finished(b, FinishReason::kLength);
    EXPECT_EQ(b.terminal().usage.cached_tokens, 16);
    EXPECT_EQ(b.text(), pieces_text(expected_greedy(prompt_b, 6, kVocab)));

    // B's first step computes only its 17th token, over A's four cached blocks.
    bool checked = false;
    for (const auto& step : h.runner.steps()) {
        for (const auto& s : step) {
            if (s.seq_id == id_b && !checked) {
                EXPECT_EQ(s.start_pos, 16);
                EXPECT_EQ(s.n_tokens, 1);
                ASSERT_GE(s.block_table.size(), 4U);
                ASSERT_GE(table_a.size(), 4U);
                for (size_t i = 0; i < 4; ++i) {
                    EXPECT_EQ(s.block_table[i], table_a[i]);
                }
                checked = true;
            }
        }
    }
    EXPECT_TRUE(checked);
    EXPECT_EQ(h.scheduler->stats().available_blocks, 64);
}

TEST(SchedulerBatching, IdenticalPromptKeepsOneTokenToCompute) {
    Harness h(4, 64, 512);
    const auto prompt = make_prompt(12, 9, kVocab);
    Collector a;
    Collector b;
    h.submit(greedy_request(prompt, 3), a);
    run_until_idle(*h.scheduler);
    h.submit(greedy_request(prompt, 3), b);
    run_until_idle(*h.scheduler);
    // 12 tokens = 3 full blocks, but the last token must be computed for logits: 2 blocks.
    EXPECT_EQ(b.terminal().usage.cached_tokens, 8);
    EXPECT_EQ(b.text(), a.text());
}

TEST(SchedulerBatching, EvictsCachedBlocksWhenThePoolIsShort) {
    Harness h(4, 8, 64);
    Collector a;
    h.submit(greedy_request(make_prompt(20, 1, kVocab), 2), a);
    run_until_idle(*h.scheduler);
    // A's blocks stay cached but count as available.
    EXPECT_EQ(h.scheduler->stats().available_blocks, 8);
    Collector b;
    const auto pb = make_prompt(24, 2, kVocab);
    h.submit(greedy_request(pb, 6), b);
    run_until_idle(*h.scheduler);
    expect_finished(b, FinishReason::kLength);
    EXPECT_EQ(b.text(), pieces_text(expected_greedy(pb, 6, kVocab)));
    EXPECT_EQ(b.terminal().usage.cached_tokens, 0);
}

// A seeded request gets the same tokens alone, beside rows the draw rule takes, and beside rows
// it leaves to the host Sampler (top-p over the whole vocabulary), whichever way it goes itself.
TEST(SchedulerBatching, SeededSamplingIgnoresBatchComposition) {
    // device_top_p: whether the runner draws top-p over the whole vocabulary itself (else the
    // host Sampler takes those rows).
    bool device_top_p = true;
    auto run = [&device_top_p](float target_top_p, int n_others, float others_top_p) {
        Harness h(4, 256, 32);
        h.runner.whole_vocab_top_p = device_top_p;
        Collector target;
        GenerateRequest r;
        r.prompt_tokens = make_prompt(9, 4, kVocab);
        r.sampling.temperature = 1.0F;
        r.sampling.top_p = target_top_p;
        r.sampling.seed = 1234;
        r.sampling.max_tokens = 24;
        std::vector<std::unique_ptr<Collector>> others;
        for (int i = 0; i < n_others; ++i) {
            others.push_back(std::make_unique<Collector>());
            GenerateRequest o;
            o.prompt_tokens = make_prompt(5 + i * 11, 20 + i, kVocab);
            o.sampling.temperature = 0.9F;
            o.sampling.top_p = others_top_p;
            o.sampling.max_tokens = 10 + i;
            h.submit(std::move(o), *others.back());
        }
        h.scheduler->step_once();
        h.submit(std::move(r), target);
        run_until_idle(*h.scheduler);
        return std::make_pair(target.text(), h.runner.host_rows_per_sample_step());
    };
    for (const bool device : {true, false}) {
        device_top_p = device;
        for (float target_top_p : {1.0F, 0.9F}) {
            const auto [alone, alone_steps] = run(target_top_p, 0, 1.0F);
            EXPECT_EQ(run(target_top_p, 3, 1.0F).first, alone) << target_top_p << device;
            EXPECT_EQ(run(target_top_p, 1, 1.0F).first, alone) << target_top_p << device;
            EXPECT_EQ(run(target_top_p, 3, 0.8F).first, alone) << target_top_p << device;
            // Sampling actually sampled: temperature 1 over the script's logits leaves the argmax.
            EXPECT_NE(alone, pieces_text(expected_greedy(make_prompt(9, 4, kVocab), 24, kVocab)));
            // Alone, the request's rows went where its settings and the runner say: drawn, or to
            // the host (top-p over the whole vocabulary on a runner that does not draw it).
            ASSERT_EQ(alone_steps.size(), 24U);
            for (int host : alone_steps) {
                EXPECT_EQ(host, target_top_p < 1.0F && !device ? 1 : 0) << device;
            }
        }
    }
    // The nucleus cuts: with the same seed, top-p 0.9 and no cut draw different texts (drawn
    // both), and the drawn and the host-sampled top-p differ too: two rules, not one.
    device_top_p = true;
    const std::string drawn_full = run(1.0F, 0, 1.0F).first;
    const std::string drawn_nucleus = run(0.9F, 0, 1.0F).first;
    device_top_p = false;
    EXPECT_NE(drawn_full, drawn_nucleus);
    EXPECT_NE(drawn_nucleus, run(0.9F, 0, 1.0F).first);
}

// Rows left to the host Sampler (top-p over the whole vocabulary) are sampled several at a time
// on the sampling threads: each row must still be drawn from its own logits with its own
// sequence's RNG, whatever thread takes it.
TEST(SchedulerBatching, SampledRowsAreTheSameOnAnyNumberOfSamplingThreads) {
    auto run = [](int threads) {
        Harness h(4, 256, 32, true, {}, threads);
        h.runner.whole_vocab_top_p = false;  // the host Sampler's rows, on `threads` threads
        std::vector<std::unique_ptr<Collector>> out;
        for (int i = 0; i < 6; ++i) {
            out.push_back(std::make_unique<Collector>());
            GenerateRequest r;
            r.prompt_tokens = make_prompt(7 + i * 5, 3 + i, kVocab);
            r.sampling.temperature = 0.8F + 0.1F * static_cast<float>(i % 3);
            r.sampling.top_p = 0.95F;
            r.sampling.seed = 100 + static_cast<uint64_t>(i);
            r.sampling.max_tokens = 16;
            h.submit(std::move(r), *out.back());
        }
        run_until_idle(*h.scheduler);
        std::vector<std::string> texts;
        for (const auto& c : out) {
            expect_finished(*c, FinishReason::kLength);
            texts.push_back(c->text());
        }
        return texts;
    };
    const auto one = run(1);
    EXPECT_EQ(run(4), one);
    EXPECT_EQ(run(3), one);
    // Six different streams: rows were not mixed up into the same draws.
    EXPECT_EQ(std::set<std::string>(one.begin(), one.end()).size(), one.size());
}

}  // namespace
}  // namespace helexa::engine
