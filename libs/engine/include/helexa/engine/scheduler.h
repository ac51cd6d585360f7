// The per-model scheduler: turns queued requests into steps of a ModelRunner and steps into
// events.
// Each step: (1) take new requests and cancellations; (2) one decode token for every running
// sequence that is decoding (preempting the most recently admitted sequence, by recompute,
// when the pool cannot grow them); (3) prefill chunks for running then waiting sequences, FIFO,
// under a per-step token budget (NEURON_PREFILL_CHUNK_TOKENS, default 512, decodes included);
// (4) ModelRunner::step; (5) sample every row that has logits, append the token, decode text,
// detect EOS / stop strings / max_tokens, emit events, free finished sequences' blocks.
// Batch size 1 is the same path. A request that fits the context fits the pool alone, so a short
// pool only queues (or preempts); a prompt that can never fit fails at submit with
// kContextLengthExceeded.
// Faults (docs/design/fault-recovery.md): a step error with code kModelRecovering means the
// device is poisoned; every request of the model (running, waiting and just submitted) fails with
// that error (Retry-After 2), the scheduler refuses new work with kModelRecovering and tells its
// owner through SchedulerModel::on_device_fault, which reloads the model. Any other step error
// fails only the sequences of that step; a sampling error (NaN logits) fails one sequence.
// Before a request first starts, when min_free_device_bytes > 0 and the model's device reports
// less free memory, the request fails with kInsufficientVram (Retry-After 5) instead.
// When to use: RuntimeModel owns one and start()s its thread; tests may instead drive
// step_once() on their own thread without start().
// Thread-safety: submit, cancel, load, stats and shutdown may be called from any thread.
// step_once must only be called by one thread, and never while the internal thread runs.
// Event sinks run on the stepping thread, in order per request.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <unordered_set>
#include <vector>

#include "helexa/common/result.h"
#include "helexa/engine/kv_cache.h"
#include "helexa/engine/row_draw.h"
#include "helexa/engine/runtime_text.h"
#include "helexa/engine/sampler.h"
#include "helexa/engine/sampling_config.h"
#include "helexa/engine/serving.h"
#include "helexa/engine/step.h"

namespace helexa::engine {

namespace cpu {
class ThreadPool;
}  // namespace cpu

inline constexpr int64_t kDefaultPrefillChunkTokens = 512;

// The sampling threads a scheduler uses unless told otherwise: min(8, hardware threads). (The
// benchmarks that time host sampling use the same count.)
int default_sampling_threads();

struct SchedulerOptions {
    int64_t prefill_chunk_tokens = kDefaultPrefillChunkTokens;  // token budget per step
    int64_t max_batch_seqs = 256;  // sequences in one step
    int64_t max_queue = 1024;      // waiting requests beyond this -> kOverloaded at submit
    PrefixCacheOptions prefix_cache;
    // NEURON_MIN_FREE_VRAM_MB in bytes: a request does not start while the model's device has
    // less free memory (0 = no gate; models without device memory are never gated).
    int64_t min_free_device_bytes = 0;
    // Host threads that sample a step's rows in parallel (each row has its own sequence, RNG
    // and logits, so the tokens are the same for any count). 0 = default_sampling_threads().
    // Sampling a 150k vocabulary costs ~0.3 ms a row: one thread would add ~10 ms to every
    // step of 32 sampled streams.
    int sampling_threads = 0;
    // Overlapped decoding (docs/design/overlapped-decode.md): while every running sequence
    // decodes a token the runner draws (plain argmax, or `drawable`: nothing left to the host
    // Sampler) and nothing waits, each step is launched before the previous one's tokens are
    // read (ModelRunner::launch_argmax / launch_sample, its ids fed from that step's tokens
    // where the runner left them), so the host's work between steps runs under the device's.
    // A sequence that stops at a token has computed one more that nobody sees; any other state
    // (a new request, a prefill, a cancellation, a row for the host Sampler, a length limit one
    // step away) runs the step in flight out first. neuron: `overlap_decode`
    // (NEURON_OVERLAP_DECODE). On by default: run 21 measured +0.4% at one Qwen3-8B stream and
    // +2-4% at 8-64 over HTTP on an H200, with the same tokens.
    bool overlap_decode = true;
    // Injected time and randomness (tests pass fixed ones). `seed_source` seeds the RNG of
    // requests that carry no seed.
    std::function<std::chrono::steady_clock::time_point()> now;
    std::function<uint64_t()> seed_source;

    // Defaults overridden by NEURON_PREFILL_CHUNK_TOKENS (a positive integer; anything else is
    // kConfig naming the variable). `getenv` is injectable for tests.
    static Result<SchedulerOptions> from_env(
        const std::function<const char*(const char*)>& getenv = nullptr);
};

// What the scheduler needs to know about its model besides the runner.
struct SchedulerModel {
    GenerationDefaults generation;  // sampling defaults and EOS ids
    int64_t context_limit = 0;      // max prompt + completion tokens; clipped to the KV pool
    TokenTextDecoderFactory text_decoder;  // required
    TextStreamFactory text_stream;         // optional; pass-through when empty
    // Free bytes of the model's device memory, nullopt when it has none (CPU). Optional; called
    // on the stepping thread (where the runner lives) before a request starts, only when
    // SchedulerOptions::min_free_device_bytes > 0.
    std::function<std::optional<int64_t>()> free_device_bytes;
    // Optional; called once, on the stepping thread, when a step failed with kModelRecovering,
    // just before every request is failed. Must not block and must not call shutdown().
    std::function<void(const Error&)> on_device_fault;
};

struct SchedulerStats {
    int64_t in_flight = 0;
    int64_t queue_depth = 0;
    int64_t n_blocks = 0;
    int64_t available_blocks = 0;  // free + evictable cached
    int64_t steps = 0;
    int64_t preemptions = 0;
    int64_t oldest_wait_ms = 0;    // age of the oldest queued request (for Retry-After)
};

class Scheduler {
public:
    // `runner` must outlive the scheduler.
    Scheduler(ModelRunner& runner, SchedulerModel model, SchedulerOptions options);
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // Validates and queues. Errors: kInvalidRequest (empty prompt, id outside the vocabulary,
    // sampling values out of range), kContextLengthExceeded (prompt leaves no room to generate),
    // kOverloaded (queue full; Retry-After set), kServiceUnavailable (shut down),
    // kModelRecovering (the device is poisoned; Retry-After set).
    Result<uint64_t> submit(GenerateRequest request, EventSink sink);
    // Honoured at the next step: blocks freed, kFinish(kCancelled). Unknown ids are ignored.
    void cancel(uint64_t id);

    ModelLoad load() const;
    SchedulerStats stats() const;
    // True once a step failed with kModelRecovering; never cleared (the model is reloaded into
    // a new scheduler).
    bool poisoned() const { return poisoned_.load(); }
    // Effective context limit (model limit clipped to the KV pool's capacity).
    int64_t context_limit() const { return context_limit_; }

    void start();
    // Stops the thread; every queued or running request ends with kFinish(kCancelled).
    // Idempotent. Never call it from an event sink (it joins the thread that runs sinks).
    void shutdown();

    // Runs one scheduling round on the caller's thread. Returns false when there was nothing
    // to do (no request queued, running or cancelled).
    bool step_once();

private:
    struct Sequence;
    struct Entry {
        Sequence* seq;
        int64_t n_tokens;
        bool need_logits;
    };

    void drain_inbox();
    void apply_cancellations();
    std::vector<Entry> schedule();
    bool preempt_newest();
    void run_step(std::vector<Entry>& entries);
    // Overlapped decoding: whether entries can be launched ahead (every one a decode token
    // the runner draws: plain argmax, or `drawable`), launching them so, and the round that keeps the pipeline going (the
    // next step launched fed from the one in flight, then the one in flight finished) when
    // every sequence of the step in flight can take one more; false when the round should run
    // the step in flight out instead (finish_ahead) and schedule as usual.
    bool launchable_ahead(const std::vector<Entry>& entries) const;
    void launch_ahead(const std::vector<Entry>& entries);
    bool continue_ahead();
    // Launches one step ahead over seqs (in row order): launch_argmax when every row is plain
    // argmax, else launch_sample with each row's draw (planned with its last token in flight
    // when `in_flight`: the rows fed from the step before).
    Status launch_rows(const StepBatch& batch, const std::vector<Sequence*>& seqs,
                       bool in_flight);
    // Reads the step in flight's tokens and accepts them (its rows of sequences that ended
    // since it was launched are dropped).
    void finish_ahead();
    // A failed step's error, for its sequences: the model poisoned (kModelRecovering), else
    // each sequence not ended already failed.
    void step_failed(Error err, const std::vector<Sequence*>& seqs);
    // The step in flight (launched, tokens not read): its sequences in row order.
    std::optional<std::vector<Sequence*>> ahead_;
    // Samples the rows the draw rule left to the host (kDrawHost in draws_), several at a time
    // on sampling_pool_; sampled_ has one entry per logits row, in row order (set for those).
    void sample_rows(const std::vector<Entry>& entries);
    // Appends a sampled token: EOS, stop strings, streaming, length limits.
    void accept_token(Sequence& seq, int32_t token);
    // Greedy with no penalty or bias: the token is the plain argmax of the logits.
    static bool takes_plain_argmax(const SamplingConfig& cfg);
    void finish(Sequence& seq, FinishReason reason);
    void fail_sequence(Sequence& seq, const Error& error);
    void poison(Error error);
    std::optional<Error> vram_refusal();
    void emit(Sequence& seq, EngineEvent ev);
    void remove_finished();
    void publish_stats();
    void thread_main();
    std::chrono::steady_clock::time_point now() const;

    ModelRunner& runner_;
    SchedulerModel model_;
    SchedulerOptions options_;
    int64_t vocab_size_;
    int64_t context_limit_;
    KvBlockManager kv_;
    std::unique_ptr<cpu::ThreadPool> sampling_pool_;
    std::vector<Sampler> samplers_;  // one per sampling_pool_ chunk (scratch buffers)
    std::vector<Result<int32_t>> sampled_;

    // Scheduler-thread state.
    std::deque<std::unique_ptr<Sequence>> waiting_;
    std::vector<std::unique_ptr<Sequence>> running_;  // admission order
    uint64_t admit_counter_ = 0;
    std::vector<int32_t> step_tokens_scratch_;
    std::span<float> logits_;  // the last step's rows, in the runner's memory (step_in_place)
    std::vector<int32_t> argmax_;  // the step's tokens (step_argmax, or step_sample's drawn rows)
    DrawBatch draws_;              // the step's draws (step_sample)
    std::vector<EngineEvent> events_scratch_;
    // The stepping thread's time since its last debug line (log_step_timing): in the runner's
    // step calls, and in whole rounds that ran a step. Their difference is the host's work
    // between device steps, which no device step overlaps.
    struct StepTiming {
        int64_t rounds = 0;
        int64_t sequences = 0;
        double runner_s = 0;
        double round_s = 0;
    };
    StepTiming timing_;
    void log_step_timing();
    // A runner call, its time added to timing_.runner_s.
    template <typename Call>
    Status timed_runner_call(Call&& call) {
        const auto start = std::chrono::steady_clock::now();
        Status st = call();
        timing_.runner_s +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        return st;
    }

    // Shared with submitters.
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::unique_ptr<Sequence>> inbox_;
    std::unordered_set<uint64_t> cancels_;
    bool stopping_ = false;
    std::atomic<bool> poisoned_{false};  // written under mu_
    Error poison_error_{ErrorCode::kModelRecovering, ""};  // guarded by mu_
    std::thread thread_;
    std::atomic<uint64_t> next_id_{1};

    // Published figures.
    std::atomic<int64_t> in_flight_{0};
    std::atomic<int64_t> queued_{0};
    std::atomic<int64_t> available_blocks_{0};
    std::atomic<int64_t> steps_{0};
    std::atomic<int64_t> preemptions_{0};
    std::atomic<int64_t> oldest_enqueued_ns_{0};  // 0 = none queued
};

}  // namespace helexa::engine
