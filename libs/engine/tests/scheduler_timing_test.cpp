// The scheduler's periodic timing line (neuron::engine::scheduler at debug): every 256 steps it
// says how many sequences a step ran and how the stepping thread's time split between the
// runner's step calls and the host work between steps, which is what a serving run needs to tell
// a slow device step from host overhead. Off at the default level.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <cstdio>
#include <memory>
#include <sstream>
#include <string>

#include "helexa/common/logging.h"
#include "scheduler_test_support.h"

namespace helexa::engine {
namespace {

using testing::Collector;
using testing::greedy_request;
using testing::make_prompt;
using testing::run_until_idle;
using testing::ScriptedRunner;

constexpr int64_t kVocab = 64;

class SchedulerTiming : public ::testing::Test {
protected:
    void TearDown() override { init_logging("info"); }

    // Runs two greedy requests of `tokens` tokens each to completion, logging under
    // `directives`, and returns what was logged.
    std::string run(std::string_view directives, int64_t tokens) {
        std::ostringstream out;
        init_logging(directives, std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
        ScriptedRunner runner(kVocab, 16, 256);
        SchedulerModel model;
        model.text_decoder = testing::table_decoder_factory();
        SchedulerOptions options;
        options.seed_source = [] { return uint64_t{7}; };
        Scheduler scheduler(runner, std::move(model), std::move(options));
        Collector a;
        Collector b;
        EXPECT_TRUE(scheduler.submit(greedy_request(make_prompt(5, 1, kVocab), tokens), a.sink())
                        .has_value());
        EXPECT_TRUE(scheduler.submit(greedy_request(make_prompt(7, 2, kVocab), tokens), b.sink())
                        .has_value());
        run_until_idle(scheduler);
        EXPECT_TRUE(a.done() && b.done());
        log::get("neuron::engine::scheduler")->flush();
        return out.str();
    }
};

TEST_F(SchedulerTiming, EveryWindowOfStepsLogsRunnerAndHostTimeAtDebug) {
    // 300 tokens: one prefill step, then a decode step per token, both sequences in each.
    const std::string logged = run("info,neuron::engine::scheduler=debug", 300);
    const size_t at = logged.find("256 steps, ");
    ASSERT_NE(at, std::string::npos) << logged;
    double sequences = 0;
    long runner_us = -1;
    long host_us = -1;
    ASSERT_EQ(std::sscanf(logged.c_str() + at,
                          "256 steps, %lf sequences a step: %ld us a step in the runner, %ld us "
                          "of host work between steps",
                          &sequences, &runner_us, &host_us),
              3)
        << logged;
    EXPECT_EQ(sequences, 2.0);  // both requests ran in every step of the window
    EXPECT_GE(runner_us, 0);
    EXPECT_GE(host_us, 0);
    // Exactly one window: the next 256 steps never came.
    EXPECT_EQ(logged.find("256 steps", at + 1), std::string::npos);
}

TEST_F(SchedulerTiming, NothingAtTheDefaultLevel) {
    EXPECT_EQ(run("info", 300).find("steps,"), std::string::npos);
}

}  // namespace
}  // namespace helexa::engine
