// Scheduler: request lifecycle — stops, cancellation, failures, shutdown, load figures, and the
// RuntimeModel facade running its own scheduler thread.
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <thread>

#include "helexa/engine/runtime_model.h"
#include "scheduler_test_support.h"

namespace helexa::engine {
namespace {

using testing::Collector;
using testing::expected_greedy;
using testing::greedy_request;
using testing::make_prompt;
using testing::pieces_text;
using testing::run_until_idle;
using testing::ScriptedRunner;

constexpr int64_t kVocab = 64;

std::unique_ptr<Scheduler> make_scheduler(ScriptedRunner& runner, GenerationDefaults gen = {},
                                          int64_t chunk = 512) {
    SchedulerModel model;
    model.generation = std::move(gen);
    model.text_decoder = testing::table_decoder_factory();
    SchedulerOptions options;
    options.prefill_chunk_tokens = chunk;
    return std::make_unique<Scheduler>(runner, std::move(model), std::move(options));
}

TEST(SchedulerLifecycle, EosStopsWithoutEmittingIt) {
    const auto prompt = make_prompt(6, 3, kVocab);
    const auto script = expected_greedy(prompt, 20, kVocab);
    // Choose as EOS the first token that does not occur earlier in the script.
    size_t k = 3;
    while (std::find(script.begin(), script.begin() + static_cast<std::ptrdiff_t>(k),
                     script[k]) != script.begin() + static_cast<std::ptrdiff_t>(k)) {
        ++k;
    }
    GenerationDefaults gen;
    gen.eos_token_ids = {script[k]};
    ScriptedRunner runner(kVocab, 4, 64);
    auto s = make_scheduler(runner, gen);
    Collector c;
    ASSERT_TRUE(s->submit(greedy_request(prompt, 20), c.sink()));
    run_until_idle(*s);
    ASSERT_TRUE(c.done());
    EXPECT_EQ(c.terminal().finish_reason, FinishReason::kStop);
    EXPECT_EQ(c.terminal().usage.completion_tokens, static_cast<int64_t>(k + 1));
    EXPECT_EQ(c.text(), pieces_text(std::vector<int32_t>(
                            script.begin(), script.begin() + static_cast<std::ptrdiff_t>(k))));
}

// ignore_eos (vLLM's extension, for benchmarks that need fixed output lengths): the EOS token is
// generated and decoded like any other, and the sequence runs on to max_tokens.
TEST(SchedulerLifecycle, IgnoreEosRunsToMaxTokens) {
    const auto prompt = make_prompt(6, 3, kVocab);
    const auto script = expected_greedy(prompt, 20, kVocab);
    GenerationDefaults gen;
    gen.eos_token_ids = {script[3]};
    ScriptedRunner runner(kVocab, 4, 64);
    auto s = make_scheduler(runner, gen);
    Collector c;
    auto r = greedy_request(prompt, 20);
    r.sampling.ignore_eos = true;
    ASSERT_TRUE(s->submit(std::move(r), c.sink()));
    run_until_idle(*s);
    ASSERT_TRUE(c.done());
    EXPECT_EQ(c.terminal().finish_reason, FinishReason::kLength);
    EXPECT_EQ(c.terminal().usage.completion_tokens, 20);
    EXPECT_EQ(c.text(), pieces_text(script));
}

// Prompt ids come from clients as they are (completions prompts of token ids): one outside the
// vocabulary is refused at submit, naming the prompt, before it reaches the embedding.
TEST(SchedulerLifecycle, PromptIdOutsideTheVocabularyIsRefused) {
    ScriptedRunner runner(kVocab, 4, 64);
    auto s = make_scheduler(runner);
    for (int32_t bad : {static_cast<int32_t>(kVocab), -1}) {
        Collector c;
        auto prompt = make_prompt(6, 3, kVocab);
        prompt[2] = bad;
        auto r = s->submit(greedy_request(prompt, 4), c.sink());
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().code(), ErrorCode::kInvalidRequest);
        EXPECT_EQ(r.error().param(), std::optional<std::string>("prompt"));
    }
}

TEST(SchedulerLifecycle, StopStringSplitAcrossTokensIsNeverEmitted) {
    const auto prompt = make_prompt(4, 8, kVocab);
    const auto script = expected_greedy(prompt, 12, kVocab);
    const std::string full = pieces_text(script);
    // A stop string starting inside token 4's piece and ending inside token 5's piece.
    const std::string piece4 = testing::scripted_piece(script[4]);
    const size_t start = pieces_text({script.begin(), script.begin() + 4}).size() + 1;
    const std::string stop = full.substr(start, piece4.size() + 1);
    const size_t first = full.find(stop);
    ASSERT_LE(first, start);

    for (int64_t chunk : {512, 2}) {
        SCOPED_TRACE(chunk);
        ScriptedRunner runner(kVocab, 4, 64);
        auto s = make_scheduler(runner, {}, chunk);
        Collector c;
        auto r = greedy_request(prompt, 12);
        r.sampling.stop = {"never-appears", stop};
        ASSERT_TRUE(s->submit(std::move(r), c.sink()));
        run_until_idle(*s);
        ASSERT_TRUE(c.done());
        EXPECT_EQ(c.terminal().finish_reason, FinishReason::kStop);
        EXPECT_EQ(c.text(), full.substr(0, first));
        for (const auto& ev : c.events()) {
            EXPECT_EQ(ev.text.find(stop), std::string::npos);
        }
        EXPECT_LT(c.terminal().usage.completion_tokens, 12);
    }
}

TEST(SchedulerLifecycle, HeldBackTextIsReleasedAtMaxTokens) {
    const auto prompt = make_prompt(4, 8, kVocab);
    const auto script = expected_greedy(prompt, 5, kVocab);
    ScriptedRunner runner(kVocab, 4, 64);
    auto s = make_scheduler(runner);
    Collector c;
    auto r = greedy_request(prompt, 5);
    // Every piece ends with '>' so "><never" always holds back the last character.
    r.sampling.stop = {"><never"};
    ASSERT_TRUE(s->submit(std::move(r), c.sink()));
    run_until_idle(*s);
    EXPECT_EQ(c.terminal().finish_reason, FinishReason::kLength);
    EXPECT_EQ(c.text(), pieces_text(script));
}

TEST(SchedulerLifecycle, CancelRunningAndWaitingFreesBlocks) {
    ScriptedRunner runner(kVocab, 4, 16);
    SchedulerModel model;
    model.text_decoder = testing::table_decoder_factory();
    SchedulerOptions options;
    options.max_batch_seqs = 1;  // the second request waits behind the first
    // Stepped synchronously, so the second step's token is read before the cancellation (with
    // overlapped decoding it is still in flight and dropped: SchedulerOverlap covers that).
    options.overlap_decode = false;
    Scheduler s(runner, std::move(model), std::move(options));
    Collector a;
    Collector b;
    const uint64_t id_a = s.submit(greedy_request(make_prompt(10, 1, kVocab), 30), a.sink()).value();
    const uint64_t id_b = s.submit(greedy_request(make_prompt(10, 2, kVocab), 30), b.sink()).value();
    s.step_once();
    s.step_once();
    EXPECT_EQ(s.load().in_flight, 1);
    EXPECT_EQ(s.load().queue_depth, 1);
    EXPECT_LT(s.stats().available_blocks, 16);

    s.cancel(id_a);
    s.cancel(id_b);
    s.cancel(987654);  // unknown: ignored
    s.step_once();
    ASSERT_TRUE(a.done());
    ASSERT_TRUE(b.done());
    EXPECT_EQ(a.terminal().finish_reason, FinishReason::kCancelled);
    EXPECT_EQ(a.terminal().usage.completion_tokens, 2);
    EXPECT_EQ(b.terminal().finish_reason, FinishReason::kCancelled);
    EXPECT_EQ(b.events().size(), 1U);  // never started
    EXPECT_EQ(s.stats().available_blocks, 16);
    EXPECT_EQ(s.load().in_flight, 0);
    EXPECT_EQ(s.load().queue_depth, 0);
    EXPECT_FALSE(s.step_once());
}

TEST(SchedulerLifecycle, StepFailureFailsTheBatchAndFreesBlocks) {
    ScriptedRunner runner(kVocab, 4, 16);
    auto s = make_scheduler(runner);
    Collector a;
    Collector b;
    ASSERT_TRUE(s->submit(greedy_request(make_prompt(5, 1, kVocab), 8), a.sink()));
    s->step_once();
    ASSERT_TRUE(s->submit(greedy_request(make_prompt(5, 2, kVocab), 8), b.sink()));
    runner.fail_next_step = true;
    s->step_once();
    ASSERT_TRUE(a.done());
    ASSERT_TRUE(b.done());
    const auto ev = a.terminal();
    EXPECT_EQ(ev.kind, EngineEvent::Kind::kError);
    ASSERT_TRUE(ev.error.has_value());
    EXPECT_EQ(ev.error->code(), ErrorCode::kInternal);
    EXPECT_NE(ev.error->full_message().find("injected step failure"), std::string::npos);
    EXPECT_EQ(ev.usage.completion_tokens, 1);
    EXPECT_EQ(s->stats().available_blocks, 16);
}

TEST(SchedulerLifecycle, SubmitValidatesRequests) {
    ScriptedRunner runner(kVocab, 4, 16);
    auto s = make_scheduler(runner);
    Collector c;
    auto empty = s->submit(greedy_request({}, 4), c.sink());
    ASSERT_FALSE(empty);
    EXPECT_EQ(empty.error().code(), ErrorCode::kInvalidRequest);
    auto bad_id = s->submit(greedy_request({1, 64}, 4), c.sink());
    ASSERT_FALSE(bad_id);
    EXPECT_EQ(bad_id.error().code(), ErrorCode::kInvalidRequest);
    auto r = greedy_request({1, 2}, 4);
    r.sampling.top_p = 1.5F;
    auto bad_sampling = s->submit(std::move(r), c.sink());
    ASSERT_FALSE(bad_sampling);
    EXPECT_EQ(bad_sampling.error().param(), std::optional<std::string>("top_p"));
    EXPECT_EQ(s->load().queue_depth, 0);
}

TEST(SchedulerLifecycle, QueueCapGivesOverloadedWithRetryAfter) {
    ScriptedRunner runner(kVocab, 4, 16);
    SchedulerModel model;
    model.text_decoder = testing::table_decoder_factory();
    SchedulerOptions options;
    options.max_queue = 2;
    // Collectors outlive the scheduler: its shutdown finishes the queued requests.
    Collector c1;
    Collector c2;
    Collector c3;
    Scheduler s(runner, std::move(model), std::move(options));
    ASSERT_TRUE(s.submit(greedy_request({1}, 1), c1.sink()));
    ASSERT_TRUE(s.submit(greedy_request({2}, 1), c2.sink()));
    auto third = s.submit(greedy_request({3}, 1), c3.sink());
    ASSERT_FALSE(third);
    EXPECT_EQ(third.error().code(), ErrorCode::kOverloaded);
    EXPECT_EQ(third.error().retry_after_secs(), std::optional<int64_t>(1));
    s.shutdown();
    EXPECT_EQ(c1.terminal().finish_reason, FinishReason::kCancelled);
    EXPECT_EQ(c2.terminal().finish_reason, FinishReason::kCancelled);
}

TEST(SchedulerLifecycle, ShutdownCancelsEverythingAndRefusesNewWork) {
    ScriptedRunner runner(kVocab, 4, 16);
    auto s = make_scheduler(runner);
    Collector a;
    Collector b;
    ASSERT_TRUE(s->submit(greedy_request(make_prompt(5, 1, kVocab), 50), a.sink()));
    s->step_once();
    ASSERT_TRUE(s->submit(greedy_request(make_prompt(5, 2, kVocab), 50), b.sink()));
    s->shutdown();
    EXPECT_EQ(a.terminal().finish_reason, FinishReason::kCancelled);
    EXPECT_EQ(b.terminal().finish_reason, FinishReason::kCancelled);
    Collector c;
    auto late = s->submit(greedy_request({1}, 1), c.sink());
    ASSERT_FALSE(late);
    EXPECT_EQ(late.error().code(), ErrorCode::kServiceUnavailable);
    s->shutdown();  // idempotent
}

TEST(SchedulerLifecycle, OptionsFromEnvironment) {
    auto unset = SchedulerOptions::from_env([](const char*) -> const char* { return nullptr; });
    ASSERT_TRUE(unset);
    EXPECT_EQ(unset->prefill_chunk_tokens, 512);
    auto set = SchedulerOptions::from_env([](const char*) -> const char* { return "128"; });
    ASSERT_TRUE(set);
    EXPECT_EQ(set->prefill_chunk_tokens, 128);
    for (const char* bad : {"0", "-4", "12x", "many"}) {
        auto r = SchedulerOptions::from_env([bad](const char*) -> const char* { return bad; });
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().code(), ErrorCode::kConfig);
        EXPECT_NE(r.error().message().find("NEURON_PREFILL_CHUNK_TOKENS"), std::string::npos);
    }
}

RuntimeModelParts make_parts(int64_t n_blocks, int64_t chunk) {
    RuntimeModelParts parts;
    parts.descriptor.id = "test/scripted";
    parts.descriptor.limit.context = 100000;  // clipped to the pool
    parts.runner = std::make_unique<ScriptedRunner>(kVocab, 4, n_blocks);
    parts.text_decoder = testing::table_decoder_factory();
    parts.scheduler.prefill_chunk_tokens = chunk;
    parts.encode = [](const std::string& text, bool) -> Result<std::vector<int32_t>> {
        return std::vector<int32_t>(text.size(), 1);
    };
    return parts;
}

TEST(RuntimeModel, ServesConcurrentSubmittersOnItsThread) {
    auto created = RuntimeModel::create(make_parts(64, 16));
    ASSERT_TRUE(created) << created.error().message();
    auto model = *created;
    EXPECT_EQ(model->descriptor().limit.context, 256);
    EXPECT_EQ(model->descriptor().limit.input, 255);
    EXPECT_EQ(model->descriptor().limit.output, 255);
    EXPECT_EQ(model->encode("abc", true).value().size(), 3U);
    EXPECT_FALSE(model->decode({1}, true));
    EXPECT_FALSE(model->render_chat(ChatRenderInput{}));

    constexpr int kN = 6;
    std::vector<std::unique_ptr<Collector>> cs;
    std::vector<std::vector<int32_t>> prompts;
    for (int i = 0; i < kN; ++i) {
        cs.push_back(std::make_unique<Collector>());
        prompts.push_back(make_prompt(3 + i * 9, i, kVocab));
    }
    std::vector<std::thread> threads;
    for (int i = 0; i < kN; ++i) {
        threads.emplace_back([&, i] {
            auto id = model->submit(greedy_request(prompts[static_cast<size_t>(i)], 8 + i),
                                    cs[static_cast<size_t>(i)]->sink());
            EXPECT_TRUE(id.has_value());
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    for (int i = 0; i < kN; ++i) {
        ASSERT_TRUE(cs[static_cast<size_t>(i)]->wait());
        EXPECT_EQ(cs[static_cast<size_t>(i)]->text(),
                  pieces_text(expected_greedy(prompts[static_cast<size_t>(i)], 8 + i, kVocab)));
    }
    EXPECT_EQ(model->load().in_flight, 0);
    EXPECT_EQ(model->load().queue_depth, 0);
    EXPECT_EQ(model->stats().available_blocks, 64);
}

TEST(RuntimeModel, CancelFromAnotherThreadEndsAStream) {
    auto created = RuntimeModel::create(make_parts(64, 16));
    ASSERT_TRUE(created);
    auto model = *created;
    // Hold the scheduler inside its first step until the cancel has been requested.
    std::promise<void> release;
    std::shared_future<void> gate = release.get_future().share();
    Collector c;
    std::promise<void> started;
    bool signalled = false;
    auto sink = c.sink();
    auto wrapped = [&, sink](EngineEvent ev) {
        if (ev.kind == EngineEvent::Kind::kStarted && !signalled) {
            signalled = true;
            started.set_value();
            gate.wait();
        }
        sink(std::move(ev));
    };
    auto id = model->submit(greedy_request(make_prompt(5, 1, kVocab), 5000), wrapped);
    ASSERT_TRUE(id);
    started.get_future().wait();
    model->cancel(*id);
    release.set_value();
    ASSERT_TRUE(c.wait());
    EXPECT_EQ(c.terminal().finish_reason, FinishReason::kCancelled);
    EXPECT_LT(c.terminal().usage.completion_tokens, 5000);
    model->shutdown();
    EXPECT_EQ(model->stats().available_blocks, 64);
}

TEST(RuntimeModel, CreateRejectsMissingParts) {
    RuntimeModelParts no_runner;
    no_runner.text_decoder = testing::table_decoder_factory();
    auto r = RuntimeModel::create(std::move(no_runner));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kConfig);
    auto parts = make_parts(16, 16);
    parts.text_decoder = nullptr;
    auto r2 = RuntimeModel::create(std::move(parts));
    ASSERT_FALSE(r2);
    EXPECT_EQ(r2.error().code(), ErrorCode::kConfig);
}

}  // namespace
}  // namespace helexa::engine
