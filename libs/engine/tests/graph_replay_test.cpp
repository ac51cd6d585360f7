// Decode-step graphs (dense_decoder + step_plan) on a backend that records like a CUDA graph:
// during capture_graph it keeps each operation (tensor views by value) instead of running it,
// refuses allocations and host copies, and replay_graph runs the kept operations again. Decode
// steps must then give exactly the CPU backend's logits at every batch size (padded to a bucket
// with trash-block sequences) and context length (block-table buckets), while replaying.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numeric>

#include "forwarding_backend.h"
#include "helexa/engine/model_runner.h"
#include "helexa/engine/random_model.h"
#include "helexa/engine/row_draw.h"

namespace helexa::engine {
namespace {

namespace fs = std::filesystem;

struct GraphLog {
    int captures = 0;
    int replays = 0;
    int illegal_during_capture = 0;
};

class RecordingBackend final : public testing::ForwardingBackend {
public:
    explicit RecordingBackend(GraphLog& log) : log_(log) {}
    std::string_view name() const override { return "recording"; }
    bool supports_graphs() const override { return true; }
    Result<int64_t> capture_graph(const std::function<Status()>& fn) override {
        recording_ = true;
        graphs_.emplace_back();
        Status st = fn();
        recording_ = false;
        if (!st) {
            graphs_.pop_back();
            return tl::unexpected(std::move(st).error());
        }
        ++log_.captures;
        return static_cast<int64_t>(graphs_.size() - 1);
    }
    Status replay_graph(int64_t id) override {
        ++log_.replays;
        for (auto& op : graphs_.at(static_cast<size_t>(id))) {
            HELEXA_TRY_STATUS(op());
        }
        return ok();
    }
    void drop_graphs() override { graphs_.clear(); }

protected:
    void memory() override {
        if (recording_) {
            ++log_.illegal_during_capture;
        }
    }
    Status op(std::function<Status()> fn) override {
        if (recording_) {
            graphs_.back().push_back(std::move(fn));
            return ok();
        }
        return fn();
    }

private:
    GraphLog& log_;
    bool recording_ = false;
    std::vector<std::vector<std::function<Status()>>> graphs_;
};

// A random model (seed `seed`) written to `dir` and loaded twice: on a RecordingBackend logging
// into `log` (registered as `kind`; decode warm-up up to warm_up_max_seqs sequences, none by
// default, so graphs are recorded at first use), and on the CPU backend with one thread (the
// recording backend's CPU uses one: the same sums). Null runners when something failed
// (reported).
struct GraphedAndPlain {
    std::unique_ptr<CausalLmRunner> graphed;
    std::unique_ptr<CausalLmRunner> plain;
};

GraphedAndPlain load_graphed_and_plain(uint64_t seed, const fs::path& dir, GraphLog& log,
                                       const std::string& kind, int64_t n_blocks,
                                       int64_t warm_up_max_seqs = 0) {
    RandomModelSpec spec;
    spec.seed = seed;
    spec.init_std = 0.1f;
    if (auto written = write_random_model(spec, dir); !written) {
        ADD_FAILURE() << written.error().full_message();
        return {};
    }
    register_backend(kind, [&log](const BackendOptions&) -> Result<std::unique_ptr<Backend>> {
        return std::unique_ptr<Backend>(std::make_unique<RecordingBackend>(log));
    });
    ModelRunnerOptions opt;
    opt.block_size = 4;
    opt.n_blocks = n_blocks;
    opt.backend.kind = kind;
    opt.warm_up_max_seqs = warm_up_max_seqs;
    auto graphed = load_model_runner(dir, opt);
    opt.backend.kind = "cpu";
    opt.backend.n_threads = 1;
    auto plain = load_model_runner(dir, opt);
    if (!graphed || !plain) {
        ADD_FAILURE() << (graphed ? plain.error() : graphed.error()).full_message();
        return {};
    }
    return {std::move(*graphed), std::move(*plain)};
}

TEST(GraphReplay, DecodeStepsMatchTheCpuBackendAtEveryBucket) {
    const fs::path dir = fs::temp_directory_path() / ("helexa_graph_" + std::to_string(::getpid()));
    GraphLog log;
    auto [graphed, plain] = load_graphed_and_plain(5, dir, log, "recording-test", 256);
    ASSERT_TRUE(graphed && plain);
    const int64_t V = plain->vocab_size();

    // 11 sequences with their own blocks; each prefilled with a different length, then decoded
    // in batches of varying size so steps land in several (sequence, block-width) buckets and
    // revisit them.
    const int n = 11;
    std::vector<std::vector<int32_t>> tokens(n);
    std::vector<std::vector<int32_t>> tables(n);
    std::vector<int64_t> pos(n, 0);
    for (int i = 0; i < n; ++i) {
        tables[static_cast<size_t>(i)].resize(20);
        std::iota(tables[static_cast<size_t>(i)].begin(), tables[static_cast<size_t>(i)].end(),
                  20 * i);
        const int len = 3 + 5 * i;
        for (int t = 0; t < len; ++t) {
            tokens[static_cast<size_t>(i)].push_back((t * 37 + i * 11) % static_cast<int>(V));
        }
        StepBatch b;
        b.seqs.push_back({static_cast<uint64_t>(i), tokens[static_cast<size_t>(i)], 0,
                          tables[static_cast<size_t>(i)], true});
        std::vector<float> lg;
        std::vector<float> lc;
        ASSERT_TRUE(graphed->step(b, lg).has_value());
        ASSERT_TRUE(plain->step(b, lc).has_value());
        EXPECT_EQ(lg, lc);
        pos[static_cast<size_t>(i)] = len;
        tokens[static_cast<size_t>(i)].push_back(static_cast<int32_t>(
            std::max_element(lc.begin(), lc.end()) - lc.begin()));
    }
    const std::vector<int> batch_sizes = {1, 3, 11, 9, 3, 11, 1, 2, 11, 11, 5, 11};
    for (size_t round = 0; round < batch_sizes.size(); ++round) {
        StepBatch b;
        for (int i = 0; i < batch_sizes[round]; ++i) {
            const auto s = static_cast<size_t>(i);
            b.seqs.push_back({s, std::span<const int32_t>(tokens[s]).last(1), pos[s], tables[s],
                              true});
        }
        std::vector<float> lc;
        ASSERT_TRUE(plain->step(b, lc).has_value());
        // Alternate the two outputs; both replay graphs of their own.
        if (round % 2 == 0) {
            std::vector<float> lg;
            auto st = graphed->step(b, lg);
            ASSERT_TRUE(st.has_value()) << st.error().full_message();
            ASSERT_EQ(lg.size(), lc.size()) << "round " << round;
            float worst = 0;
            for (size_t k = 0; k < lg.size(); ++k) {
                worst = std::max(worst, std::abs(lg[k] - lc[k]));
            }
            // Not bit-exact: a padded batch has more rows, which changes how the CPU matmul
            // blocks its sums (f32 reordering, ~1e-6 here). Wrong padding, a stale pointer or a
            // missing op would be O(1).
            EXPECT_LE(worst, 1e-4f) << "round " << round;
        } else {
            std::vector<int32_t> ids;
            auto st = graphed->step_argmax(b, ids);
            ASSERT_TRUE(st.has_value()) << st.error().full_message();
            std::vector<int32_t> want;
            argmax_rows(lc, V, want);
            EXPECT_EQ(ids, want) << "round " << round;
        }
        for (int i = 0; i < batch_sizes[round]; ++i) {
            const auto s = static_cast<size_t>(i);
            const float* row = lc.data() + s * static_cast<size_t>(V);
            pos[s] += 1;
            tokens[s].push_back(static_cast<int32_t>(std::max_element(row, row + V) - row));
        }
    }
    EXPECT_GT(log.captures, 2);
    EXPECT_GT(log.replays, 2);
    EXPECT_EQ(log.illegal_during_capture, 0);
    graphed.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
}

// Sampled decode steps (step_sample) replay a graph that ends in the draw: their tokens are the
// rule's over the CPU backend's logits, and a step whose penalty entries grew (a repetition
// window filling up) replays the same graph instead of recording a new one.
TEST(GraphReplay, DrawnDecodeStepsReplayOneGraphWhileTheirPenaltiesGrow) {
    const fs::path dir =
        fs::temp_directory_path() / ("helexa_graph_draw_" + std::to_string(::getpid()));
    GraphLog log;
    auto [graphed, plain] = load_graphed_and_plain(6, dir, log, "recording-draw-test", 64);
    ASSERT_TRUE(graphed && plain);
    const int64_t V = plain->vocab_size();

    const int n = 3;
    std::vector<std::vector<int32_t>> tokens(n);
    std::vector<std::vector<int32_t>> tables(n);
    for (int i = 0; i < n; ++i) {
        tables[static_cast<size_t>(i)] = {4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3};
        for (int t = 0; t < 6 + i; ++t) {
            tokens[static_cast<size_t>(i)].push_back((t * 41 + i * 7) % static_cast<int>(V));
        }
        StepBatch b;
        b.seqs.push_back({static_cast<uint64_t>(i), tokens[static_cast<size_t>(i)], 0,
                          tables[static_cast<size_t>(i)], true});
        std::vector<float> lg;
        std::vector<float> lc;
        ASSERT_TRUE(graphed->step(b, lg).has_value());
        ASSERT_TRUE(plain->step(b, lc).has_value());
    }
    SamplingConfig cfg;  // temperature 1, repetition penalty 1.1 over 64 tokens
    cfg.presence_penalty = 0.2F;
    std::vector<std::vector<int32_t>> generated(n);
    int captures_after_first = -1;
    // The same decode position every step (its K/V slot rewritten with the same token), so the
    // bucket never changes while each sequence's generated list, and its entries, grow.
    for (int step = 0; step < 12; ++step) {
        StepBatch b;
        DrawBatch draws;
        for (int i = 0; i < n; ++i) {
            const auto s = static_cast<size_t>(i);
            b.seqs.push_back({s, std::span<const int32_t>(tokens[s]).last(1),
                              static_cast<int64_t>(tokens[s].size()) - 1, tables[s], true});
            plan_row_draw(cfg, generated[s], 70 + s, V, true, draws);
        }
        std::vector<float> lc;
        ASSERT_TRUE(plain->step(b, lc).has_value());
        std::vector<int32_t> drawn;
        std::span<float> host_rows;
        auto st = graphed->step_sample(b, draws, drawn, host_rows);
        ASSERT_TRUE(st.has_value()) << st.error().full_message();
        ASSERT_EQ(drawn.size(), static_cast<size_t>(n));
        EXPECT_TRUE(host_rows.empty());
        for (int i = 0; i < n; ++i) {
            const auto s = static_cast<size_t>(i);
            std::vector<float> row(lc.begin() + static_cast<std::ptrdiff_t>(s * V),
                                   lc.begin() + static_cast<std::ptrdiff_t>((s + 1) * V));
            EXPECT_EQ(drawn[s], draw_row(row, draws.rows[s], draws.entries))
                << "step " << step << " row " << i;
            // Distinct ids, so every step adds an entry.
            generated[s].push_back(static_cast<int32_t>((step * 13 + i) % V));
        }
        if (step == 0) {
            captures_after_first = log.captures;
        }
    }
    EXPECT_EQ(log.captures, captures_after_first);
    EXPECT_EQ(log.illegal_during_capture, 0);
    graphed.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
}

// Loading warms every decode bucket up to ModelRunnerOptions::warm_up_max_seqs (11 here:
// buckets 1..8 and 16), recording each one's graph (and, on a device, tuning its matmuls), so
// the first real decode steps of those batch sizes replay instead of recording; the warm-up's
// writes into the KV pool do not disturb the sequences served after it.
TEST(GraphReplay, LoadWarmsEveryDecodeBucketSoFirstStepsReplay) {
    const fs::path dir =
        fs::temp_directory_path() / ("helexa_graph_warm_" + std::to_string(::getpid()));
    GraphLog log;
    auto [graphed, plain] = load_graphed_and_plain(7, dir, log, "recording-warm-test", 64, 11);
    ASSERT_TRUE(graphed && plain);
    EXPECT_EQ(log.captures, 9);
    EXPECT_EQ(log.illegal_during_capture, 0);
    const int64_t V = plain->vocab_size();

    // 11 sequences, block 0 first (the one the warm-up wrote to), contexts under 16 blocks.
    const int n = 11;
    std::vector<std::vector<int32_t>> tokens(n);
    std::vector<std::vector<int32_t>> tables(n);
    for (int i = 0; i < n; ++i) {
        const auto s = static_cast<size_t>(i);
        tables[s] = {4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3};
        for (int t = 0; t < 2 + i; ++t) {
            tokens[s].push_back((t * 29 + i * 5) % static_cast<int>(V));
        }
        StepBatch b;
        b.seqs.push_back({s, tokens[s], 0, tables[s], true});
        std::vector<float> lg;
        std::vector<float> lc;
        ASSERT_TRUE(graphed->step(b, lg).has_value());
        ASSERT_TRUE(plain->step(b, lc).has_value());
        EXPECT_EQ(lg, lc) << "prefill of sequence " << i;
        tokens[s].push_back(static_cast<int32_t>(std::max_element(lc.begin(), lc.end()) -
                                                 lc.begin()));
    }
    // The next decode step of the first batch_size sequences.
    auto decode_batch = [&](int batch_size) {
        StepBatch b;
        for (int i = 0; i < batch_size; ++i) {
            const auto s = static_cast<size_t>(i);
            b.seqs.push_back({s, std::span<const int32_t>(tokens[s]).last(1),
                              static_cast<int64_t>(tokens[s].size()) - 1, tables[s], true});
        }
        return b;
    };
    const int captures_after_load = log.captures;
    const int replays_after_load = log.replays;
    for (const int batch_size : {1, 5, 11, 9, 2, 8}) {
        const StepBatch b = decode_batch(batch_size);
        std::vector<float> lc;
        ASSERT_TRUE(plain->step(b, lc).has_value());
        std::vector<int32_t> ids;
        auto st = graphed->step_argmax(b, ids);
        ASSERT_TRUE(st.has_value()) << st.error().full_message();
        std::vector<int32_t> want;
        argmax_rows(lc, V, want);
        EXPECT_EQ(ids, want) << batch_size << " sequences";
        for (int i = 0; i < batch_size; ++i) {
            tokens[static_cast<size_t>(i)].push_back(want[static_cast<size_t>(i)]);
        }
    }
    EXPECT_EQ(log.captures, captures_after_load);
    EXPECT_EQ(log.replays, replays_after_load + 6);

    // A first sampled step records its own graph (it ends in the draw) and allocates the draws'
    // buffer; that buffer is new, not moved, so the warmed argmax graphs stay valid.
    DrawBatch draws;
    for (int i = 0; i < 5; ++i) {  // the defaults: temperature 1, repetition penalty 1.1
        plan_row_draw(SamplingConfig{}, {}, 90 + static_cast<uint64_t>(i), V, true, draws);
    }
    std::vector<int32_t> drawn;
    std::span<float> host_rows;
    ASSERT_TRUE(graphed->step_sample(decode_batch(5), draws, drawn, host_rows).has_value());
    EXPECT_EQ(log.captures, captures_after_load + 1);
    std::vector<int32_t> ids;
    ASSERT_TRUE(graphed->step_argmax(decode_batch(11), ids).has_value());
    EXPECT_EQ(log.captures, captures_after_load + 1);
    graphed.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
}

// Overlapped steps (ModelRunner::launch_argmax / launch_sample / finish_launched): each round
// is launched before the previous round's tokens are read, its sequences that were in that
// round fed their input id from that round's tokens where the step left them (the host's
// placeholder id is wrong on purpose), the others given the host's. Drawn rounds (cfg set) plan
// a fed row's draw with its token in flight, which the runner's feed completes. The tokens
// must be step_argmax's (step_sample's with each row planned knowing every token), round by
// round, on the graphed runner (replaying, the feed outside the graph) and on the CPU backend.
void expect_overlapped_rounds_match(CausalLmRunner& graphed, CausalLmRunner& plain,
                                    const SamplingConfig* cfg) {
    const int64_t V = plain.vocab_size();
    const int n = 5;
    const std::vector<int> rounds = {5, 5, 3, 3, 5, 1, 1, 5, 2, 5, 5, 5};

    // Each runner's own state: the tokens so far, the position of the next one, and where the
    // generated ones begin (the prefill's token is the first).
    struct Seqs {
        std::vector<std::vector<int32_t>> tokens;
        std::vector<std::vector<int32_t>> tables;
        std::vector<int64_t> pos;
        std::vector<size_t> prompt;
        std::span<const int32_t> generated(size_t u) const {
            return std::span<const int32_t>(tokens[u]).subspan(prompt[u]);
        }
    };
    auto prefill = [&](CausalLmRunner& r, Seqs& s) {
        s.tokens.assign(n, {});
        s.tables.assign(n, {});
        s.pos.assign(n, 0);
        s.prompt.assign(n, 0);
        for (int i = 0; i < n; ++i) {
            const auto u = static_cast<size_t>(i);
            s.tables[u].resize(16);
            std::iota(s.tables[u].begin(), s.tables[u].end(), 16 * i);
            for (int t = 0; t < 2 + 3 * i; ++t) {
                s.tokens[u].push_back((t * 29 + i * 7) % static_cast<int>(V));
            }
            StepBatch b;
            b.seqs.push_back({u, s.tokens[u], 0, s.tables[u], true});
            std::vector<int32_t> next;
            ASSERT_TRUE(r.step_argmax(b, next).has_value());
            s.pos[u] = static_cast<int64_t>(s.tokens[u].size());
            s.prompt[u] = s.tokens[u].size();
            s.tokens[u].push_back(next[0]);
        }
    };
    auto seed_of = [](size_t u) { return uint64_t{100} + u; };

    // The reference: one step per round on the CPU backend.
    Seqs want;
    prefill(plain, want);
    for (const int size : rounds) {
        StepBatch b;
        DrawBatch draws;
        for (int i = 0; i < size; ++i) {
            const auto u = static_cast<size_t>(i);
            b.seqs.push_back({u, std::span<const int32_t>(want.tokens[u]).last(1), want.pos[u],
                              want.tables[u], true});
            if (cfg != nullptr) {
                plan_row_draw(*cfg, want.generated(u), seed_of(u), V, true, draws);
            }
        }
        std::vector<int32_t> next;
        std::span<float> host_rows;
        ASSERT_TRUE((cfg != nullptr ? plain.step_sample(b, draws, next, host_rows)
                                    : plain.step_argmax(b, next))
                        .has_value());
        for (int i = 0; i < size; ++i) {
            const auto u = static_cast<size_t>(i);
            want.pos[u] += 1;
            want.tokens[u].push_back(next[u]);
        }
    }

    for (CausalLmRunner* r : {&graphed, &plain}) {
        Seqs got;
        prefill(*r, got);
        const std::vector<int32_t> placeholder = {0};
        std::vector<int> finished_size;  // the rounds launched and not yet finished, by size
        auto finish = [&] {
            std::vector<int32_t> next;
            auto st = r->finish_launched(next);
            ASSERT_TRUE(st.has_value()) << st.error().full_message();
            ASSERT_EQ(static_cast<int>(next.size()), finished_size.front());
            for (size_t i = 0; i < next.size(); ++i) {
                got.tokens[i].push_back(next[i]);
            }
            finished_size.erase(finished_size.begin());
        };
        for (size_t k = 0; k < rounds.size(); ++k) {
            StepBatch b;
            DrawBatch draws;
            for (int i = 0; i < rounds[k]; ++i) {
                const auto u = static_cast<size_t>(i);
                SequenceSlice slice{u, std::span<const int32_t>(got.tokens[u]).last(1),
                                    got.pos[u], got.tables[u], true};
                const bool fed = k > 0 && i < rounds[k - 1];
                if (fed) {
                    slice.tokens = placeholder;  // its token is still on its way
                    slice.fed_row = i;
                }
                if (cfg != nullptr) {
                    plan_row_draw(*cfg, got.generated(u), seed_of(u), V, true, draws, fed);
                }
                b.seqs.push_back(slice);
                got.pos[u] += 1;
            }
            auto st = cfg != nullptr ? r->launch_sample(b, draws) : r->launch_argmax(b);
            ASSERT_TRUE(st.has_value()) << st.error().full_message();
            finished_size.push_back(rounds[k]);
            if (k > 0) {
                finish();
            }
        }
        finish();
        EXPECT_EQ(got.tokens, want.tokens) << (r == &plain ? "cpu" : "graphed");
    }
}

TEST(GraphReplay, OverlappedStepsFeedTheLastStepsTokensAndMatchStepArgmax) {
    const fs::path dir =
        fs::temp_directory_path() / ("helexa_graph_overlap_" + std::to_string(::getpid()));
    GraphLog log;
    auto [graphed, plain] = load_graphed_and_plain(9, dir, log, "recording-overlap-test", 256);
    ASSERT_TRUE(graphed && plain);
    expect_overlapped_rounds_match(*graphed, *plain, nullptr);
    // Misuse: a fed row the last launched step did not have, and a plain step while a launched
    // one is outstanding.
    const std::vector<int32_t> table(16, 0);
    StepBatch past;
    const std::vector<int32_t> placeholder = {0};
    past.seqs.push_back({0, placeholder, 40, table, true, 5});
    auto bad = plain->launch_argmax(past);
    ASSERT_FALSE(bad.has_value());
    EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidRequest);
    past.seqs[0].fed_row = -1;
    ASSERT_TRUE(plain->launch_argmax(past).has_value());
    std::vector<int32_t> ids;
    auto busy = plain->step_argmax(past, ids);
    ASSERT_FALSE(busy.has_value());
    EXPECT_EQ(busy.error().code(), ErrorCode::kInvalidRequest);
    ASSERT_TRUE(plain->finish_launched(ids).has_value());
    EXPECT_EQ(ids.size(), 1u);
    EXPECT_GT(log.replays, 2);
    EXPECT_EQ(log.illegal_during_capture, 0);
    graphed.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
}

// The default request's draw (greedy, repetition penalty 1.1) and a sampled one with strong
// repetition, presence and frequency penalties and a bias, overlapped; a row left to the host
// Sampler cannot be launched ahead.
TEST(GraphReplay, OverlappedDrawnStepsCompleteTheirPenaltiesWithTheFedToken) {
    const fs::path dir =
        fs::temp_directory_path() / ("helexa_graph_overlap_draw_" + std::to_string(::getpid()));
    GraphLog log;
    auto [graphed, plain] =
        load_graphed_and_plain(12, dir, log, "recording-overlap-draw-test", 256);
    ASSERT_TRUE(graphed && plain);
    SamplingConfig by_default;
    by_default.temperature = 0.0F;  // the repetition penalty's default: 1.1 over 64 tokens
    {
        SCOPED_TRACE("greedy with the default penalty");
        expect_overlapped_rounds_match(*graphed, *plain, &by_default);
    }
    SamplingConfig sampled;
    sampled.temperature = 1.0F;
    sampled.repetition_penalty = 4.0F;
    sampled.repetition_window = 3;
    sampled.presence_penalty = 0.5F;
    sampled.frequency_penalty = 0.7F;
    sampled.logit_bias = {{1, 1.0F}, {7, 2.0F}};
    {
        SCOPED_TRACE("sampled with strong penalties and a bias");
        expect_overlapped_rounds_match(*graphed, *plain, &sampled);
    }
    SamplingConfig wide = sampled;
    wide.top_k = draw::kMaxTopK + 1;  // beyond the rule: the host Sampler's
    DrawBatch host;
    plan_row_draw(wide, {}, 1, plain->vocab_size(), true, host);
    const std::vector<int32_t> table(16, 0);
    const std::vector<int32_t> token = {1};
    StepBatch b;
    b.seqs.push_back({0, token, 0, table, true});
    auto refused = plain->launch_sample(b, host);
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidRequest);
    EXPECT_EQ(log.illegal_during_capture, 0);
    graphed.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
}

// A runner whose next token is its input token + 1 (mod 16), for ModelRunner's default
// launch_argmax / finish_launched (each step runs at its finish, fed rows taken from the step
// finished before it). Input 7 gives a broken row (NaN: argmax -1); an id outside the
// vocabulary fails the step, as the CPU backend's embedding does.
class SuccessorRunner final : public ModelRunner {
public:
    int64_t vocab_size() const override { return 16; }
    const KvLayout& kv_layout() const override { return layout_; }
    Status step(const StepBatch& batch, std::vector<float>& logits) override {
        logits.clear();
        for (const SequenceSlice& s : batch.seqs) {
            const int32_t in = s.tokens.back();
            if (in < 0 || in >= 16) {
                return fail(ErrorCode::kInvalidRequest, "token id outside the vocabulary");
            }
            std::vector<float> row(16, in == 7 ? std::nanf("") : 0.0f);
            row[static_cast<size_t>((in + 1) % 16)] = in == 7 ? std::nanf("") : 1.0f;
            logits.insert(logits.end(), row.begin(), row.end());
        }
        return ok();
    }

private:
    KvLayout layout_{1, 1, 1, 16, 4};
};

// The first step of two sequences at position 0, fed start[0] and start[1] (the batch views
// start and table, which outlive it).
StepBatch two_sequences_at_start(const std::vector<int32_t>& start,
                                 const std::vector<int32_t>& table) {
    StepBatch b;
    b.seqs.push_back({0, std::span<const int32_t>(start).first(1), 0, table, true});
    b.seqs.push_back({1, std::span<const int32_t>(start).last(1), 0, table, true});
    return b;
}

TEST(OverlappedSteps, TheDefaultRunsEachStepAtItsFinishWithFedRowsAndRefusesMisuse) {
    SuccessorRunner r;
    const std::vector<int32_t> table = {0};
    const std::vector<int32_t> start = {3, 9};
    const std::vector<int32_t> placeholder = {0};
    const StepBatch first = two_sequences_at_start(start, table);
    ASSERT_TRUE(r.launch_argmax(first).has_value());
    StepBatch fed;  // the rows swapped: sequence 0 is fed row 1 and sequence 1 row 0
    fed.seqs.push_back({0, placeholder, 1, table, true, 1});
    fed.seqs.push_back({1, placeholder, 1, table, true, 0});
    ASSERT_TRUE(r.launch_argmax(fed).has_value());
    auto third = r.launch_argmax(fed);
    ASSERT_FALSE(third.has_value());
    EXPECT_EQ(third.error().code(), ErrorCode::kInvalidRequest);
    std::vector<int32_t> tokens;
    ASSERT_TRUE(r.finish_launched(tokens).has_value());
    EXPECT_EQ(tokens, (std::vector<int32_t>{4, 10}));
    ASSERT_TRUE(r.finish_launched(tokens).has_value());
    EXPECT_EQ(tokens, (std::vector<int32_t>{11, 5}));
    auto none = r.finish_launched(tokens);
    ASSERT_FALSE(none.has_value());
    EXPECT_EQ(none.error().code(), ErrorCode::kInvalidRequest);
    // A fed row the step before did not have.
    StepBatch past;
    past.seqs.push_back({0, placeholder, 2, table, true, 2});
    ASSERT_TRUE(r.launch_argmax(past).has_value());
    auto bad = r.finish_launched(tokens);
    ASSERT_FALSE(bad.has_value());
    EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidRequest);
}

// A broken row (-1) fed into the next launched step steps as a placeholder id: its neighbour's
// token still comes, and the broken sequence's own result is the caller's to drop.
TEST(OverlappedSteps, ABrokenRowsTokenDoesNotFailTheStepItIsFedInto) {
    SuccessorRunner r;
    const std::vector<int32_t> table = {0};
    const std::vector<int32_t> start = {7, 2};
    const std::vector<int32_t> placeholder = {0};
    const StepBatch first = two_sequences_at_start(start, table);
    ASSERT_TRUE(r.launch_argmax(first).has_value());
    StepBatch fed;
    fed.seqs.push_back({0, placeholder, 1, table, true, 0});
    fed.seqs.push_back({1, placeholder, 1, table, true, 1});
    ASSERT_TRUE(r.launch_argmax(fed).has_value());
    std::vector<int32_t> tokens;
    ASSERT_TRUE(r.finish_launched(tokens).has_value());
    EXPECT_EQ(tokens, (std::vector<int32_t>{-1, 3}));
    auto st = r.finish_launched(tokens);
    ASSERT_TRUE(st.has_value()) << st.error().full_message();
    EXPECT_EQ(tokens[1], 4);
}

// The host's feeds (Backend::feed_ids / feed_draws' defaults, what the CPU backend runs): ids
// and draws take the previous step's tokens where mapped, a broken row's -1 as id 0.
TEST(OverlappedSteps, TheHostFeedsTakeThePreviousTokensAndABrokenRowAsIdZero) {
    auto backend = make_backend(BackendOptions{"cpu", 1});
    ASSERT_TRUE(backend.has_value());
    Backend& b = **backend;
    auto upload = [&](const std::vector<int32_t>& host) {
        auto t = b.alloc(DType::kI32, 1, static_cast<int64_t>(host.size()));
        EXPECT_TRUE(t.has_value());
        EXPECT_TRUE(b.copy_from_host(*t, host.data()).has_value());
        return *t;
    };
    auto read = [&](const Tensor& t) {
        std::vector<int32_t> host(static_cast<size_t>(t.numel()));
        EXPECT_TRUE(b.copy_to_host(host.data(), t).has_value());
        return host;
    };
    const Tensor prev = upload({-1, 5, 9});
    const Tensor ids = upload({11, 12, 13, 14});
    ASSERT_TRUE(b.feed_ids(ids, prev, upload({2, -1, 0, 1})).has_value());
    EXPECT_EQ(read(ids), (std::vector<int32_t>{9, 12, 0, 5}));
    EXPECT_FALSE(b.feed_ids(ids, prev, upload({3, -1, -1, -1})).has_value());

    // Two rows planned with their token in flight (repetition penalty, window 4): row 0 fed
    // prev[1] = 5, already in its window; row 1 fed prev[2] = 9, new to it.
    SamplingConfig cfg;
    cfg.temperature = 0.0F;
    cfg.repetition_penalty = 1.5F;
    cfg.repetition_window = 4;
    DrawBatch draws;
    plan_row_draw(cfg, std::vector<int32_t>{5, 6}, 1, 16, true, draws, true);
    plan_row_draw(cfg, std::vector<int32_t>{3}, 2, 16, true, draws, true);
    const std::vector<int32_t> words = draws.packed(2);
    const Tensor packed = upload(words);
    ASSERT_TRUE(b.feed_draws(packed, 2, prev, upload({1, 2})).has_value());
    std::vector<int32_t> fed_words = read(packed);
    DrawBatch want = draws;
    draw::feed_in_flight(want.rows[0], want.entries.data(), 5);
    draw::feed_in_flight(want.rows[1], want.entries.data(), 9);
    EXPECT_EQ(fed_words, want.packed(2));
    EXPECT_NE(fed_words, words);
}

}  // namespace
}  // namespace helexa::engine
