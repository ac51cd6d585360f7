// Test doubles for the scheduler tests: a scripted ModelRunner whose greedy output is a known
// function of the context, a table token decoder and an event collector.
// ScriptedRunner stores every written token in a simulated paged KV pool through the slice's
// block table and computes logits from what it reads back, so wrong block tables, a prefix
// cache that shares the wrong blocks or a chunk that skips positions change the output.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "event_collector.h"
#include "helexa/engine/runtime_text.h"
#include "helexa/engine/row_draw.h"
#include "helexa/engine/scheduler.h"
#include "helexa/engine/step.h"

namespace helexa::engine::testing {

// The token the script predicts after `ctx` (never vocab - 1).
inline int32_t scripted_next_token(std::span<const int32_t> ctx, int64_t vocab) {
    uint64_t h = 1469598103934665603ULL;
    for (int32_t t : ctx) {
        h ^= static_cast<uint64_t>(t) + 0x9E3779B97F4A7C15ULL;
        h *= 1099511628211ULL;
        h ^= h >> 29;
    }
    h ^= ctx.size();
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 31;
    return static_cast<int32_t>(h % static_cast<uint64_t>(vocab - 1));
}

// The target gets logit 5; the rest a small fixed pattern in [0, 1.2], so sampling at
// temperature 1 is varied but greedy is exact.
inline void scripted_logits(int32_t target, int64_t vocab, float* row) {
    for (int64_t i = 0; i < vocab; ++i) {
        row[i] = i == target ? 5.0F : static_cast<float>((i * 7 + target) % 13) * 0.1F;
    }
}

inline std::vector<int32_t> expected_greedy(std::vector<int32_t> ctx, int64_t n, int64_t vocab) {
    std::vector<int32_t> out;
    for (int64_t i = 0; i < n; ++i) {
        const int32_t t = scripted_next_token(ctx, vocab);
        out.push_back(t);
        ctx.push_back(t);
    }
    return out;
}

// Built by appending: `"<" + std::to_string(id)` trips GCC 12's false -Wrestrict at -O3 (GCC
// bug 105329), which the release preset's -Werror turns into a build failure.
inline std::string scripted_piece(int32_t id) {
    std::string piece = "<";
    piece += std::to_string(id);
    piece += '>';
    return piece;
}

struct SliceRecord {
    uint64_t seq_id = 0;
    int64_t n_tokens = 0;
    int64_t start_pos = 0;
    bool need_logits = false;
    std::vector<int32_t> block_table;
};

class ScriptedRunner final : public ModelRunner {
public:
    ScriptedRunner(int64_t vocab, int64_t block_size, int64_t n_blocks) : vocab_(vocab) {
        layout_.n_layers = 1;
        layout_.n_kv_heads = 1;
        layout_.head_dim = 1;
        layout_.block_size = block_size;
        layout_.n_blocks = n_blocks;
        kv_.assign(static_cast<size_t>(block_size * n_blocks), -1);
    }

    int64_t vocab_size() const override { return vocab_; }
    const KvLayout& kv_layout() const override { return layout_; }

    Status step(const StepBatch& batch, std::vector<float>& logits) override {
        std::function<void()> hook;
        {
            std::lock_guard lock(mu_);
            hook = on_step;
        }
        if (hook) {
            hook();
        }
        std::lock_guard lock(mu_);
        std::vector<SliceRecord> record;
        std::map<int32_t, int> refs;  // block -> sequences in this batch referencing it
        for (const auto& s : batch.seqs) {
            record.push_back({s.seq_id, static_cast<int64_t>(s.tokens.size()), s.start_pos,
                              s.need_logits,
                              std::vector<int32_t>(s.block_table.begin(), s.block_table.end())});
            for (int32_t b : s.block_table) {
                ++refs[b];
            }
        }
        steps_.push_back(std::move(record));
        if (fail_next_step) {
            fail_next_step = false;
            return fail(ErrorCode::kInternal, "injected step failure");
        }
        const int64_t bs = layout_.block_size;
        int64_t n_rows = 0;
        for (const auto& s : batch.seqs) {
            n_rows += s.need_logits ? 1 : 0;
        }
        logits.assign(static_cast<size_t>(n_rows * vocab_), 0.0F);
        int64_t row = 0;
        for (const auto& s : batch.seqs) {
            const int64_t end = s.start_pos + static_cast<int64_t>(s.tokens.size());
            if (static_cast<int64_t>(s.block_table.size()) * bs < end) {
                return fail(ErrorCode::kInternal, "block table too short");
            }
            for (size_t j = 0; j < s.tokens.size(); ++j) {
                const int64_t pos = s.start_pos + static_cast<int64_t>(j);
                const int32_t block = s.block_table[static_cast<size_t>(pos / bs)];
                if (block < 0 || block >= layout_.n_blocks) {
                    return fail(ErrorCode::kInternal, "block id out of range");
                }
                if (refs[block] > 1) {
                    return fail(ErrorCode::kInternal, "write into a block shared in this step");
                }
                kv_[static_cast<size_t>(block * bs + pos % bs)] = s.tokens[j];
            }
            if (s.need_logits) {
                std::vector<int32_t> ctx;
                for (int64_t pos = 0; pos < end; ++pos) {
                    const int32_t block = s.block_table[static_cast<size_t>(pos / bs)];
                    const int32_t t = kv_[static_cast<size_t>(block * bs + pos % bs)];
                    if (t < 0) {
                        return fail(ErrorCode::kInternal, "read an unwritten KV slot");
                    }
                    ctx.push_back(t);
                }
                float* out = logits.data() + row * vocab_;
                scripted_logits(scripted_next_token(ctx, vocab_), vocab_, out);
                out[ctx.back()] += echo_last;
                ++row;
            }
        }
        return ok();
    }

    // Greedy steps arrive here; the default takes the argmax of step()'s logits.
    Status step_argmax(const StepBatch& batch, std::vector<int32_t>& tokens) override {
        {
            std::lock_guard lock(mu_);
            ++argmax_steps_;
        }
        return ModelRunner::step_argmax(batch, tokens);
    }
    // Count the slices launched ahead with their token fed from the step before, argmax and
    // drawn (the default runs each launched step at its finish_launched, through step_argmax
    // above or step_sample below).
    Status launch_argmax(const StepBatch& batch) override {
        count_fed(batch, false);
        return ModelRunner::launch_argmax(batch);
    }
    Status launch_sample(const StepBatch& batch, const DrawBatch& draws) override {
        count_fed(batch, true);
        return ModelRunner::launch_sample(batch, draws);
    }
    int fed_slices() const {
        std::lock_guard lock(mu_);
        return fed_slices_;
    }
    int fed_drawn_slices() const {
        std::lock_guard lock(mu_);
        return fed_drawn_slices_;
    }
    // Records how many rows each sampled step left to the host (kDrawHost).
    Status step_sample(const StepBatch& batch, const DrawBatch& draws,
                       std::vector<int32_t>& tokens, std::span<float>& host_rows) override {
        {
            std::lock_guard lock(mu_);
            int host = 0;
            for (const auto& d : draws.rows) {
                host += d.mode == draw::kDrawHost ? 1 : 0;
            }
            host_rows_per_sample_step_.push_back(host);
        }
        return ModelRunner::step_sample(batch, draws, tokens, host_rows);
    }

    std::vector<std::vector<SliceRecord>> steps() const {
        std::lock_guard lock(mu_);
        return steps_;
    }
    int argmax_steps() const {
        std::lock_guard lock(mu_);
        return argmax_steps_;
    }
    std::vector<int> host_rows_per_sample_step() const {
        std::lock_guard lock(mu_);
        return host_rows_per_sample_step_;
    }

    void set_on_step(std::function<void()> hook) {
        std::lock_guard lock(mu_);
        on_step = std::move(hook);
    }

    bool fail_next_step = false;  // set before the step, from the stepping thread
    // Added to the logit of the context's last token (the one this step was fed), so that a
    // repetition penalty on the token just generated decides the draw (set before stepping).
    float echo_last = 0.0F;
    // What draws_whole_vocab_top_p answers (true: the drawn path; false leaves top-p-only rows to
    // the host Sampler, as real runners do until their device draws them).
    bool whole_vocab_top_p = true;
    bool draws_whole_vocab_top_p() const override { return whole_vocab_top_p; }

private:
    void count_fed(const StepBatch& batch, bool drawn) {
        std::lock_guard lock(mu_);
        for (const auto& s : batch.seqs) {
            fed_slices_ += s.fed_row >= 0 ? 1 : 0;
            fed_drawn_slices_ += s.fed_row >= 0 && drawn ? 1 : 0;
        }
    }

    int64_t vocab_;
    KvLayout layout_;
    std::vector<int32_t> kv_;
    mutable std::mutex mu_;
    std::vector<std::vector<SliceRecord>> steps_;
    int argmax_steps_ = 0;
    int fed_slices_ = 0;
    int fed_drawn_slices_ = 0;
    std::vector<int> host_rows_per_sample_step_;
    std::function<void()> on_step;
};

class TableDecoder final : public TokenTextDecoder {
public:
    std::string push(int32_t id) override { return scripted_piece(id); }
    std::string flush() override { return {}; }
};

inline TokenTextDecoderFactory table_decoder_factory() {
    return [](const GenerateRequest&) { return std::make_unique<TableDecoder>(); };
}

inline std::string pieces_text(const std::vector<int32_t>& ids) {
    std::string out;
    for (int32_t id : ids) {
        out += scripted_piece(id);
    }
    return out;
}

// Steps until nothing is left; returns the number of steps (bounded against livelock).
inline int64_t run_until_idle(Scheduler& s, int64_t max_steps = 100000) {
    int64_t n = 0;
    while (n < max_steps && s.step_once()) {
        ++n;
    }
    return n;
}

// The stream ended with a finish event of `reason` (not an error).
inline void expect_finished(const Collector& c, FinishReason reason) {
    ASSERT_TRUE(c.done());
    const auto ev = c.terminal();
    ASSERT_EQ(ev.kind, EngineEvent::Kind::kFinish) << (ev.error ? ev.error->message() : "");
    EXPECT_EQ(ev.finish_reason, reason);
}

inline GenerateRequest greedy_request(std::vector<int32_t> prompt, int64_t max_tokens) {
    GenerateRequest r;
    r.prompt_tokens = std::move(prompt);
    r.sampling.temperature = 0.0F;
    r.sampling.max_tokens = max_tokens;
    return r;
}

inline std::vector<int32_t> make_prompt(int64_t n, int32_t salt, int64_t vocab) {
    std::vector<int32_t> p;
    for (int64_t i = 0; i < n; ++i) {
        p.push_back(static_cast<int32_t>((i * 13 + salt * 7 + i * i) % (vocab - 1)));
    }
    return p;
}

}  // namespace helexa::engine::testing
