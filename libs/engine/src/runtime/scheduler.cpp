#include "helexa/engine/scheduler.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>

#include "helexa/common/logging.h"
#include "helexa/engine/cpu_backend.h"
#include "helexa/engine/row_draw.h"
#include "helexa/engine/stop_strings.h"

namespace helexa::engine {

namespace {

// Retry-After for requests refused while the model recovers, and while device memory is short
// (features D9 and §4).
constexpr int64_t kRecoveringRetryAfterSecs = 2;
constexpr int64_t kInsufficientVramRetryAfterSecs = 5;

}  // namespace

struct Scheduler::Sequence {
    uint64_t id = 0;
    GenerateRequest request;  // prompt_tokens moved into `tokens`
    EventSink sink;
    SamplingConfig cfg;
    uint64_t seed = 0;  // the request's seed, or one drawn at submit
    SamplerRng rng;     // the host Sampler's, for settings the draw rule does not cover
    std::vector<int32_t> tokens;  // prompt followed by every sampled token
    int64_t prompt_len = 0;
    int64_t n_computed = 0;  // leading tokens whose K/V is in the cache
    int64_t n_generated = 0;
    int64_t cached_tokens = 0;  // prefix-cache hit at first admission
    bool started = false;
    bool done = false;
    std::unique_ptr<TokenTextDecoder> decoder;
    std::unique_ptr<TextStream> stream;
    StopStringMatcher stop;
    std::chrono::steady_clock::time_point enqueued;

    int64_t remaining() const { return static_cast<int64_t>(tokens.size()) - n_computed; }
    // The tokens generated so far, oldest first.
    std::span<const int32_t> generated() const {
        return std::span<const int32_t>(tokens).subspan(static_cast<size_t>(prompt_len));
    }
    Usage usage() const {
        Usage u;
        u.prompt_tokens = prompt_len;
        u.completion_tokens = n_generated;
        u.cached_tokens = cached_tokens;
        return u;
    }
};

namespace {

// Sequences of a list that have not ended (ended ones stay until remove_finished).
template <typename List>
int64_t live_count(const List& list) {
    return static_cast<int64_t>(std::count_if(
        list.begin(), list.end(), [](const auto& s) { return !s->done; }));
}

}  // namespace

Result<SchedulerOptions> SchedulerOptions::from_env(
    const std::function<const char*(const char*)>& getenv) {
    SchedulerOptions options;
    const char* raw = getenv ? getenv("NEURON_PREFILL_CHUNK_TOKENS")
                             : std::getenv("NEURON_PREFILL_CHUNK_TOKENS");
    if (raw != nullptr && *raw != '\0') {
        const std::string_view text(raw);
        int64_t value = 0;
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc() || ptr != text.data() + text.size() || value < 1) {
            return fail(ErrorCode::kConfig, "NEURON_PREFILL_CHUNK_TOKENS must be a positive "
                                            "integer, got '" + std::string(text) + "'");
        }
        options.prefill_chunk_tokens = value;
    }
    return options;
}

int default_sampling_threads() {
    return static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
}

Scheduler::Scheduler(ModelRunner& runner, SchedulerModel model, SchedulerOptions options)
    : runner_(runner),
      model_(std::move(model)),
      options_(std::move(options)),
      vocab_size_(runner.vocab_size()),
      context_limit_(0),
      kv_(runner.kv_layout(), options_.prefix_cache) {
    options_.prefill_chunk_tokens = std::max<int64_t>(options_.prefill_chunk_tokens, 1);
    options_.max_batch_seqs = std::max<int64_t>(options_.max_batch_seqs, 1);
    const int64_t capacity = kv_.capacity_tokens();
    context_limit_ = model_.context_limit > 0 ? std::min(model_.context_limit, capacity)
                                              : capacity;
    if (!model_.text_stream) {
        model_.text_stream = pass_through_text_stream_factory();
    }
    const int sampling_threads =
        options_.sampling_threads > 0 ? options_.sampling_threads : default_sampling_threads();
    sampling_pool_ = std::make_unique<cpu::ThreadPool>(sampling_threads);
    samplers_.resize(static_cast<size_t>(sampling_pool_->size()));
    if (!options_.seed_source) {
        options_.seed_source = [] {
            std::random_device rd;
            return (static_cast<uint64_t>(rd()) << 32) ^ rd();
        };
    }
    publish_stats();
}

Scheduler::~Scheduler() {
    shutdown();
}

std::chrono::steady_clock::time_point Scheduler::now() const {
    return options_.now ? options_.now() : std::chrono::steady_clock::now();
}

Result<uint64_t> Scheduler::submit(GenerateRequest request, EventSink sink) {
    const auto prompt_len = static_cast<int64_t>(request.prompt_tokens.size());
    if (prompt_len == 0) {
        return fail(ErrorCode::kInvalidRequest, "the prompt has no tokens");
    }
    for (int32_t id : request.prompt_tokens) {
        if (id < 0 || id >= vocab_size_) {
            return tl::unexpected<Error>(
                Error(ErrorCode::kInvalidRequest,
                      "prompt token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                          std::to_string(vocab_size_) + ")")
                    .with_param("prompt"));
        }
    }
    if (prompt_len >= context_limit_) {
        return tl::unexpected<Error>(
            Error(ErrorCode::kContextLengthExceeded,
                  "the prompt has " + std::to_string(prompt_len) +
                      " tokens; this model's context is " + std::to_string(context_limit_) +
                      " tokens, and at least one must remain for the completion")
                .with_extra("prompt_tokens", prompt_len)
                .with_extra("max_context", context_limit_));
    }
    auto cfg = resolve_sampling(request.sampling, model_.generation, vocab_size_,
                                context_limit_ - prompt_len);
    if (!cfg) {
        return tl::unexpected<Error>(std::move(cfg).error());
    }
    if (!sink || !model_.text_decoder) {
        return fail(ErrorCode::kInternal, "scheduler: missing event sink or text decoder");
    }

    auto seq = std::make_unique<Sequence>();
    seq->decoder = model_.text_decoder(request);
    seq->stream = model_.text_stream(request);
    if (!seq->decoder || !seq->stream) {
        return fail(ErrorCode::kInternal, "scheduler: text stage factory returned null");
    }
    seq->seed = cfg->seed ? *cfg->seed : options_.seed_source();
    seq->rng = SamplerRng(seq->seed);
    seq->stop = StopStringMatcher(cfg->stop);
    seq->cfg = std::move(*cfg);
    seq->tokens = std::move(request.prompt_tokens);
    seq->prompt_len = prompt_len;
    seq->request = std::move(request);
    seq->sink = std::move(sink);
    seq->enqueued = now();

    std::lock_guard lock(mu_);
    if (poisoned_.load()) {
        return tl::unexpected(poison_error_);
    }
    if (stopping_) {
        return fail(ErrorCode::kServiceUnavailable, "the model is shutting down");
    }
    const auto depth = static_cast<int64_t>(inbox_.size()) + queued_.load();
    if (depth >= options_.max_queue) {
        return tl::unexpected<Error>(
            Error(ErrorCode::kOverloaded,
                  "the model's queue is full (" + std::to_string(depth) + " waiting)")
                .with_retry_after(1));
    }
    seq->id = next_id_.fetch_add(1);
    const uint64_t id = seq->id;
    inbox_.push_back(std::move(seq));
    cv_.notify_all();
    return id;
}

void Scheduler::cancel(uint64_t id) {
    std::lock_guard lock(mu_);
    cancels_.insert(id);
    cv_.notify_all();
}

ModelLoad Scheduler::load() const {
    ModelLoad out;
    out.in_flight = in_flight_.load();
    std::lock_guard lock(mu_);
    out.queue_depth = queued_.load() + static_cast<int64_t>(inbox_.size());
    return out;
}

SchedulerStats Scheduler::stats() const {
    SchedulerStats s;
    const ModelLoad l = load();
    s.in_flight = l.in_flight;
    s.queue_depth = l.queue_depth;
    s.n_blocks = kv_.n_blocks();
    s.available_blocks = available_blocks_.load();
    s.steps = steps_.load();
    s.preemptions = preemptions_.load();
    const int64_t oldest = oldest_enqueued_ns_.load();
    if (oldest != 0) {
        const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   now().time_since_epoch())
                                   .count();
        s.oldest_wait_ms = std::max<int64_t>(0, (now_ns - oldest) / 1000000);
    }
    return s;
}

void Scheduler::start() {
    std::lock_guard lock(mu_);
    if (thread_.joinable() || stopping_) {
        return;
    }
    thread_ = std::thread([this] { thread_main(); });
}

void Scheduler::thread_main() {
    while (true) {
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [this] {
                return stopping_ || !inbox_.empty() || !cancels_.empty() || !running_.empty() ||
                       !waiting_.empty();
            });
            if (stopping_) {
                return;
            }
        }
        if (!step_once()) {
            // Nothing could run although work is queued (should not happen: an empty pool
            // admits any request that passed submit). Back off instead of spinning.
            std::unique_lock lock(mu_);
            cv_.wait_for(lock, std::chrono::milliseconds(1));
        }
    }
}

void Scheduler::shutdown() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
        cv_.notify_all();
    }
    if (thread_.joinable()) {
        thread_.join();
    }
    // The stepping thread is gone: finish everything left on this thread, the step in flight
    // first (its tokens go nowhere; the runner must not be left with a launch outstanding).
    if (ahead_) {
        std::vector<int32_t> unread;
        (void)runner_.finish_launched(unread);
        ahead_.reset();
    }
    drain_inbox();
    {
        std::lock_guard lock(mu_);
        cancels_.clear();
    }
    for (auto& s : running_) {
        finish(*s, FinishReason::kCancelled);
    }
    for (auto& s : waiting_) {
        finish(*s, FinishReason::kCancelled);
    }
    running_.clear();
    waiting_.clear();
    publish_stats();
}

void Scheduler::drain_inbox() {
    std::lock_guard lock(mu_);
    while (!inbox_.empty()) {
        waiting_.push_back(std::move(inbox_.front()));
        inbox_.pop_front();
    }
    queued_.store(static_cast<int64_t>(waiting_.size()));
}

void Scheduler::apply_cancellations() {
    std::unordered_set<uint64_t> ids;
    {
        std::lock_guard lock(mu_);
        ids.swap(cancels_);
    }
    if (ids.empty()) {
        return;
    }
    for (auto& s : running_) {
        if (ids.count(s->id) != 0) {
            finish(*s, FinishReason::kCancelled);
        }
    }
    for (auto& s : waiting_) {
        if (ids.count(s->id) != 0) {
            finish(*s, FinishReason::kCancelled);
        }
    }
    remove_finished();
}

bool Scheduler::step_once() {
    const auto start = std::chrono::steady_clock::now();
    drain_inbox();
    apply_cancellations();
    auto count_round = [&](size_t sequences) {
        steps_.fetch_add(1);
        publish_stats();
        timing_.round_s +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        ++timing_.rounds;
        timing_.sequences += static_cast<int64_t>(sequences);
        log_step_timing();
    };
    bool finished_ahead = false;
    if (ahead_) {
        const size_t n = ahead_->size();
        if (continue_ahead()) {
            remove_finished();
            count_round(n);
            return true;
        }
        finish_ahead();
        remove_finished();
        finished_ahead = true;
    }
    auto entries = schedule();
    if (entries.empty()) {
        publish_stats();
        return finished_ahead;
    }
    if (launchable_ahead(entries)) {
        launch_ahead(entries);
    } else {
        run_step(entries);
    }
    remove_finished();
    count_round(entries.size());
    return true;
}

bool Scheduler::launchable_ahead(const std::vector<Entry>& entries) const {
    if (!options_.overlap_decode || entries.empty()) {
        return false;
    }
    const bool whole_vocab_top_p = runner_.draws_whole_vocab_top_p();
    return std::all_of(entries.begin(), entries.end(), [&](const Entry& e) {
        return e.n_tokens == 1 && e.need_logits &&
               e.seq->n_computed + 1 == static_cast<int64_t>(e.seq->tokens.size()) &&
               (takes_plain_argmax(e.seq->cfg) ||
                drawable(e.seq->cfg, vocab_size_, whole_vocab_top_p));
    });
}

Status Scheduler::launch_rows(const StepBatch& batch, const std::vector<Sequence*>& seqs,
                              bool in_flight) {
    const bool argmax_only = std::all_of(seqs.begin(), seqs.end(), [](const Sequence* s) {
        return takes_plain_argmax(s->cfg);
    });
    if (argmax_only) {
        return timed_runner_call([&] { return runner_.launch_argmax(batch); });
    }
    draws_.clear();
    for (const Sequence* s : seqs) {
        plan_row_draw(s->cfg, s->generated(), s->seed, vocab_size_,
                      runner_.draws_whole_vocab_top_p(), draws_, in_flight);
    }
    return timed_runner_call([&] { return runner_.launch_sample(batch, draws_); });
}

void Scheduler::launch_ahead(const std::vector<Entry>& entries) {
    StepBatch batch;
    std::vector<Sequence*> seqs;
    for (const auto& e : entries) {
        Sequence& s = *e.seq;
        batch.seqs.push_back({s.id, std::span<const int32_t>(s.tokens).last(1), s.n_computed,
                              kv_.block_table(s.id), true});
        seqs.push_back(&s);
    }
    Status st = launch_rows(batch, seqs, false);
    if (!st) {
        step_failed(std::move(st).error(), seqs);
        return;
    }
    ahead_ = std::move(seqs);
}

bool Scheduler::continue_ahead() {
    const std::vector<Sequence*>& current = *ahead_;
    // Nothing else to schedule: no live sequence waiting, none running outside the step.
    if (live_count(waiting_) != 0 ||
        live_count(running_) != static_cast<int64_t>(current.size())) {
        return false;
    }
    // Every sequence wants a token after the one in flight, and has room for it.
    for (Sequence* s : current) {
        if (s->done || s->n_generated + 2 > s->cfg.max_tokens ||
            static_cast<int64_t>(s->tokens.size()) + 2 > context_limit_ ||
            !kv_.reserve(s->id, s->n_computed + 2)) {
            return false;
        }
    }
    // The next step: each sequence's token of the step in flight, fed where the runner left it
    // (its last known token stands in on the host).
    StepBatch next;
    for (size_t i = 0; i < current.size(); ++i) {
        const Sequence& s = *current[i];
        SequenceSlice slice{s.id, std::span<const int32_t>(s.tokens).last(1), s.n_computed + 1,
                            kv_.block_table(s.id), true};
        slice.fed_row = static_cast<int32_t>(i);
        next.seqs.push_back(slice);
    }
    const std::vector<Sequence*> seqs = current;
    Status launched = launch_rows(next, seqs, true);
    finish_ahead();
    if (!launched) {
        step_failed(std::move(launched).error(), seqs);
        return true;
    }
    ahead_ = seqs;
    return true;
}

void Scheduler::finish_ahead() {
    const std::vector<Sequence*> seqs = std::move(*ahead_);
    ahead_.reset();
    Status st = timed_runner_call([&] { return runner_.finish_launched(argmax_); });
    if (st && argmax_.size() != seqs.size()) {
        st = helexa::fail(ErrorCode::kInternal,
                          "model step returned " + std::to_string(argmax_.size()) +
                              " tokens for " + std::to_string(seqs.size()) + " rows");
    }
    if (!st) {
        step_failed(std::move(st).error(), seqs);
        return;
    }
    for (size_t i = 0; i < seqs.size(); ++i) {
        Sequence& s = *seqs[i];
        if (s.done) {
            continue;  // it ended (a stop, a cancellation) after this step was launched
        }
        s.n_computed += 1;
        kv_.commit(s.id, s.tokens, s.n_computed);
        if (argmax_[i] < 0) {
            fail_sequence(s, Error(ErrorCode::kInternal,
                                   "sampling failed: no usable logit (nan or +inf)"));
            continue;
        }
        accept_token(s, argmax_[i]);
    }
}

void Scheduler::step_failed(Error err, const std::vector<Sequence*>& seqs) {
    err.add_context("model step over " + std::to_string(seqs.size()) + " sequences");
    if (err.code() == ErrorCode::kModelRecovering) {
        // The device context is gone: nothing else of this model can run on it.
        poison(std::move(err));
        return;
    }
    for (Sequence* s : seqs) {
        if (!s->done) {  // (one of a step in flight may have ended since its launch)
            fail_sequence(*s, err);
        }
    }
}

// Every 256 steps, at debug (neuron::engine::scheduler): where the stepping thread's time went,
// so a serving run can tell a slow device step from host work between steps (which adds to
// every step: nothing overlaps it).
void Scheduler::log_step_timing() {
    constexpr int64_t kWindow = 256;
    if (timing_.rounds < kWindow) {
        return;
    }
    static const auto kLog = log::get("neuron::engine::scheduler");
    const double n = static_cast<double>(timing_.rounds);
    kLog->debug("{} steps, {:.1f} sequences a step: {:.0f} us a step in the runner, {:.0f} us of "
                "host work between steps",
                timing_.rounds, static_cast<double>(timing_.sequences) / n,
                timing_.runner_s / n * 1e6, (timing_.round_s - timing_.runner_s) / n * 1e6);
    timing_ = StepTiming{};
}

bool Scheduler::preempt_newest() {
    if (running_.empty()) {
        return false;
    }
    // Recompute preemption: drop the newest sequence's blocks and queue it at the front with
    // everything it has so far; its published full blocks may still be reused from the cache.
    std::unique_ptr<Sequence> victim = std::move(running_.back());
    running_.pop_back();
    kv_.close(victim->id);
    victim->n_computed = 0;
    waiting_.push_front(std::move(victim));
    preemptions_.fetch_add(1);
    return true;
}

std::vector<Scheduler::Entry> Scheduler::schedule() {
    std::vector<Entry> entries;
    const auto max_seqs = static_cast<size_t>(options_.max_batch_seqs);
    // The free-memory verdict, asked at most once per round and only when a request would start.
    std::optional<std::optional<Error>> vram_verdict;
    // Bounded retries: each failed round preempts one sequence.
    for (size_t attempt = 0; attempt <= running_.size() + 1; ++attempt) {
        entries.clear();
        int64_t budget = options_.prefill_chunk_tokens;

        // Decodes first: one token each, growing the table, preempting the newest when short.
        for (size_t i = 0; i < running_.size() && entries.size() < max_seqs; ++i) {
            Sequence& s = *running_[i];
            if (s.remaining() != 1) {
                continue;
            }
            bool preempted_self = false;
            while (!kv_.reserve(s.id, s.n_computed + 1)) {
                const bool self = running_.back().get() == &s;
                preempt_newest();
                if (self) {
                    preempted_self = true;
                    break;
                }
            }
            if (preempted_self) {
                break;
            }
            entries.push_back({&s, 1, true});
            budget -= 1;
        }

        // Running prefills continue in admission order, as far as budget and pool allow.
        for (size_t i = 0; i < running_.size() && budget > 0 && entries.size() < max_seqs; ++i) {
            Sequence& s = *running_[i];
            if (s.remaining() <= 1) {
                continue;
            }
            const int64_t chunk = std::min({s.remaining(), budget,
                                            kv_.reservable_tokens(s.id) - s.n_computed});
            if (chunk <= 0 || !kv_.reserve(s.id, s.n_computed + chunk)) {
                continue;
            }
            entries.push_back({&s, chunk, chunk == s.remaining()});
            budget -= chunk;
        }

        // Admit waiting requests, FIFO; the head blocks the rest when the pool is short.
        while (!waiting_.empty() && budget > 0 && running_.size() < max_seqs &&
               entries.size() < max_seqs) {
            Sequence& s = *waiting_.front();
            if (!s.started && options_.min_free_device_bytes > 0) {
                if (!vram_verdict) {
                    vram_verdict = vram_refusal();
                }
                if (*vram_verdict) {
                    fail_sequence(s, **vram_verdict);
                    waiting_.pop_front();
                    continue;
                }
            }
            const int64_t cached = kv_.open(s.id, s.tokens);
            s.n_computed = cached;
            const int64_t chunk = std::min({s.remaining(), budget,
                                            kv_.reservable_tokens(s.id) - s.n_computed});
            if (chunk <= 0 || !kv_.reserve(s.id, s.n_computed + chunk)) {
                kv_.close(s.id);
                s.n_computed = 0;
                break;
            }
            if (!s.started) {
                s.started = true;
                s.cached_tokens = cached;
                EngineEvent ev;
                ev.kind = EngineEvent::Kind::kStarted;
                emit(s, std::move(ev));
            }
            entries.push_back({&s, chunk, chunk == s.remaining()});
            budget -= chunk;
            running_.push_back(std::move(waiting_.front()));
            waiting_.pop_front();
        }

        if (!entries.empty() || running_.empty()) {
            break;
        }
        // Every running sequence is stuck on a full pool: free the newest and try again.
        preempt_newest();
    }
    return entries;
}

void Scheduler::run_step(std::vector<Entry>& entries) {
    StepBatch batch;
    batch.seqs.reserve(entries.size());
    int64_t n_rows = 0;
    for (const auto& e : entries) {
        SequenceSlice slice;
        slice.seq_id = e.seq->id;
        slice.tokens = std::span<const int32_t>(e.seq->tokens)
                           .subspan(static_cast<size_t>(e.seq->n_computed),
                                    static_cast<size_t>(e.n_tokens));
        slice.start_pos = e.seq->n_computed;
        slice.block_table = kv_.block_table(e.seq->id);
        slice.need_logits = e.need_logits;
        n_rows += e.need_logits ? 1 : 0;
        batch.seqs.push_back(slice);
    }

    // When every row will be decoded greedily with nothing applied to the logits first, the
    // runner returns just the argmax (a device backend then copies 4 bytes per row, not the
    // vocabulary's logits). Otherwise each row is drawn where the logits are by the draw rule,
    // except rows whose settings it does not cover (top-p over the whole vocabulary, ...): their
    // logits come to the host Sampler. Which way a row goes depends only on its own settings,
    // so a seeded request gets the same tokens whatever shares its batch.
    bool argmax_only = n_rows > 0;
    for (const auto& e : entries) {
        if (e.need_logits && !takes_plain_argmax(e.seq->cfg)) {
            argmax_only = false;
        }
    }
    Status status = ok();
    const auto runner_start = std::chrono::steady_clock::now();
    if (argmax_only) {
        status = runner_.step_argmax(batch, argmax_);
        if (status && static_cast<int64_t>(argmax_.size()) != n_rows) {
            status = helexa::fail(ErrorCode::kInternal,
                                  "model step returned " + std::to_string(argmax_.size()) +
                                      " tokens for " + std::to_string(n_rows) + " rows");
        }
    } else {
        draws_.clear();
        for (const auto& e : entries) {
            if (e.need_logits) {
                plan_row_draw(e.seq->cfg, e.seq->generated(), e.seq->seed, vocab_size_,
                              runner_.draws_whole_vocab_top_p(), draws_);
            }
        }
        status = runner_.step_sample(batch, draws_, argmax_, logits_);
        const int64_t want_logits = draws_.any_host_row() ? n_rows * vocab_size_ : 0;
        if (status && (static_cast<int64_t>(argmax_.size()) != n_rows ||
                       static_cast<int64_t>(logits_.size()) != want_logits)) {
            status = helexa::fail(ErrorCode::kInternal,
                                  "model step returned " + std::to_string(argmax_.size()) +
                                      " tokens and " + std::to_string(logits_.size()) +
                                      " logits for " + std::to_string(n_rows) + " rows");
        }
    }
    timing_.runner_s +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - runner_start).count();
    if (!status) {
        std::vector<Sequence*> seqs;
        for (const auto& e : entries) {
            seqs.push_back(e.seq);
        }
        step_failed(std::move(status).error(), seqs);
        return;
    }

    if (!argmax_only && draws_.any_host_row()) {
        sample_rows(entries);
    }
    size_t row = 0;
    for (auto& e : entries) {
        Sequence& s = *e.seq;
        s.n_computed += e.n_tokens;
        kv_.commit(s.id, s.tokens, s.n_computed);
        if (e.need_logits) {
            if (argmax_only || draws_.rows[row].mode != draw::kDrawHost) {
                const int32_t token = argmax_[row++];
                if (token < 0) {
                    fail_sequence(s, Error(ErrorCode::kInternal,
                                           "sampling failed: no usable logit (nan or +inf)"));
                    continue;
                }
                accept_token(s, token);
                continue;
            }
            const Result<int32_t>& token = sampled_[row++];
            if (!token) {
                fail_sequence(s, token.error());
                continue;
            }
            accept_token(s, *token);
        }
    }
}

void Scheduler::sample_rows(const std::vector<Entry>& entries) {
    // (logits row, sequence) of every row the draw rule left to the host.
    std::vector<std::pair<size_t, Sequence*>> rows;
    size_t row = 0;
    for (const auto& e : entries) {
        if (e.need_logits) {
            if (draws_.rows[row].mode == draw::kDrawHost) {
                rows.emplace_back(row, e.seq);
            }
            ++row;
        }
    }
    sampled_.assign(row, Result<int32_t>(0));
    // Each row reads only its own sequence (tokens, config) and writes its own RNG, logits row
    // and result: nothing is shared but the read-only vocabulary size.
    sampling_pool_->parallel_for(
        static_cast<int64_t>(rows.size()), 1, [&](int64_t r0, int64_t r1, int chunk) {
            Sampler& sampler = samplers_[static_cast<size_t>(chunk)];
            for (int64_t i = r0; i < r1; ++i) {
                const auto [r, seq] = rows[static_cast<size_t>(i)];
                std::span<float> logits(logits_.data() + r * static_cast<size_t>(vocab_size_),
                                        static_cast<size_t>(vocab_size_));
                sampled_[r] = sampler.sample(logits, seq->cfg, seq->generated(), seq->rng);
            }
        });
}

bool Scheduler::takes_plain_argmax(const SamplingConfig& cfg) {
    return cfg.greedy() && cfg.repetition_penalty == 1.0F && cfg.presence_penalty == 0.0F &&
           cfg.frequency_penalty == 0.0F && cfg.logit_bias.empty();
}

void Scheduler::accept_token(Sequence& s, int32_t token) {
    s.tokens.push_back(token);
    ++s.n_generated;

    const auto& eos = model_.generation.eos_token_ids;
    if (!s.cfg.ignore_eos && std::find(eos.begin(), eos.end(), token) != eos.end()) {
        finish(s, FinishReason::kStop);
        return;
    }
    s.stream->on_token(token);
    auto out = s.stop.push(s.decoder->push(token));
    events_scratch_.clear();
    s.stream->push(out.text, events_scratch_);
    for (auto& ev : events_scratch_) {
        emit(s, std::move(ev));
    }
    if (out.stopped) {
        finish(s, FinishReason::kStop);
        return;
    }
    if (s.n_generated >= s.cfg.max_tokens ||
        static_cast<int64_t>(s.tokens.size()) >= context_limit_) {
        finish(s, FinishReason::kLength);
    }
}

void Scheduler::finish(Sequence& s, FinishReason reason) {
    if (s.done) {
        return;
    }
    Usage usage = s.usage();
    if (reason != FinishReason::kCancelled) {
        std::string tail;
        if (!s.stop.stopped()) {
            auto out = s.stop.push(s.decoder->flush());
            tail = std::move(out.text);
            if (out.stopped) {
                reason = FinishReason::kStop;
            } else {
                tail += s.stop.flush();
            }
        }
        events_scratch_.clear();
        s.stream->push(tail, events_scratch_);
        s.stream->finish(reason, usage, events_scratch_);
        for (auto& ev : events_scratch_) {
            emit(s, std::move(ev));
        }
    }
    s.done = true;
    kv_.close(s.id);
    publish_stats();  // before the terminal event, so whoever it wakes sees current figures
    EngineEvent ev;
    ev.kind = EngineEvent::Kind::kFinish;
    ev.finish_reason = reason;
    ev.usage = usage;
    emit(s, std::move(ev));
}

void Scheduler::fail_sequence(Sequence& s, const Error& error) {
    if (s.done) {
        return;
    }
    EngineEvent ev;
    ev.kind = EngineEvent::Kind::kError;
    ev.usage = s.usage();
    ev.error = error;
    s.done = true;
    kv_.close(s.id);
    publish_stats();
    emit(s, std::move(ev));
}

void Scheduler::poison(Error error) {
    if (!error.retry_after_secs()) {
        error.with_retry_after(kRecoveringRetryAfterSecs);
    }
    {
        // Under the submitters' lock: a submit either landed in the inbox (and fails below) or
        // sees poisoned_ and is refused.
        std::lock_guard lock(mu_);
        poisoned_.store(true);
        poison_error_ = error;
        while (!inbox_.empty()) {
            waiting_.push_back(std::move(inbox_.front()));
            inbox_.pop_front();
        }
        cancels_.clear();
    }
    // The owner learns first, so whoever hears of the failure below already sees the model as
    // recovering. (Its reload stops this scheduler, which joins this thread: it waits for us.)
    if (model_.on_device_fault) {
        model_.on_device_fault(error);
    }
    for (auto& s : running_) {
        fail_sequence(*s, error);
    }
    for (auto& s : waiting_) {
        fail_sequence(*s, error);
    }
    running_.clear();
    waiting_.clear();
    publish_stats();
}

std::optional<Error> Scheduler::vram_refusal() {
    if (!model_.free_device_bytes) {
        return std::nullopt;
    }
    const std::optional<int64_t> free_bytes = model_.free_device_bytes();
    if (!free_bytes || *free_bytes >= options_.min_free_device_bytes) {
        return std::nullopt;
    }
    constexpr int64_t kMiB = int64_t{1} << 20;
    return Error(ErrorCode::kInsufficientVram,
                 "the model's device has " + std::to_string(*free_bytes / kMiB) +
                     " MiB free, below the " +
                     std::to_string(options_.min_free_device_bytes / kMiB) +
                     " MiB floor (NEURON_MIN_FREE_VRAM_MB); retry shortly")
        .with_extra("free_vram_mb", *free_bytes / kMiB)
        .with_extra("min_free_vram_mb", options_.min_free_device_bytes / kMiB)
        .with_retry_after(kInsufficientVramRetryAfterSecs);
}

void Scheduler::emit(Sequence& s, EngineEvent ev) {
    s.sink(std::move(ev));
}

void Scheduler::remove_finished() {
    // A finished sequence of the step in flight stays until that step's tokens are read.
    const auto in_flight = [this](const Sequence* s) {
        return ahead_ && std::find(ahead_->begin(), ahead_->end(), s) != ahead_->end();
    };
    std::erase_if(running_, [&](const std::unique_ptr<Sequence>& s) {
        return s->done && !in_flight(s.get());
    });
    std::erase_if(waiting_, [](const std::unique_ptr<Sequence>& s) { return s->done; });
}

void Scheduler::publish_stats() {
    // Finished sequences stay in the lists until remove_finished; they no longer count.
    in_flight_.store(live_count(running_));
    queued_.store(live_count(waiting_));
    available_blocks_.store(kv_.n_available_blocks());
    int64_t oldest = 0;
    for (const auto& s : waiting_) {
        if (s->done) {
            continue;
        }
        const int64_t ns = std::max<int64_t>(
            1, std::chrono::duration_cast<std::chrono::nanoseconds>(
                   s->enqueued.time_since_epoch())
                   .count());
        oldest = oldest == 0 ? ns : std::min(oldest, ns);
    }
    oldest_enqueued_ns_.store(oldest);
}

}  // namespace helexa::engine
