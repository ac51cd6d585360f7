#include "helexa/engine/step.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "helexa/engine/row_draw.h"

namespace helexa::engine {

void argmax_rows(const std::vector<float>& logits, int64_t vocab, std::vector<int32_t>& tokens) {
    const auto n_rows = vocab > 0 ? static_cast<int64_t>(logits.size()) / vocab : 0;
    tokens.assign(static_cast<size_t>(n_rows), -1);
    for (int64_t r = 0; r < n_rows; ++r) {
        const float* row = logits.data() + r * vocab;
        int32_t best = -1;
        bool inf = false;
        for (int64_t c = 0; c < vocab; ++c) {
            inf = inf || (std::isinf(row[c]) && row[c] > 0);
            if (std::isfinite(row[c]) && (best < 0 || row[c] > row[best])) {
                best = static_cast<int32_t>(c);
            }
        }
        tokens[static_cast<size_t>(r)] = inf ? -1 : best;
    }
}

Status ModelRunner::step_argmax(const StepBatch& batch, std::vector<int32_t>& tokens) {
    std::vector<float> logits;
    HELEXA_TRY_STATUS(step(batch, logits));
    argmax_rows(logits, vocab_size(), tokens);
    return ok();
}

Status ModelRunner::step_in_place(const StepBatch& batch, std::span<float>& rows) {
    HELEXA_TRY_STATUS(step(batch, in_place_rows_));
    rows = in_place_rows_;
    return ok();
}

Status ModelRunner::step_sample(const StepBatch& batch, const DrawBatch& draws,
                                std::vector<int32_t>& tokens, std::span<float>& host_rows) {
    std::span<float> rows;
    HELEXA_TRY_STATUS(step_in_place(batch, rows));
    const auto vocab = static_cast<size_t>(vocab_size());
    const size_t n_rows = vocab > 0 ? rows.size() / vocab : 0;
    if (draws.rows.size() != n_rows) {
        return fail(ErrorCode::kInternal, "step_sample: " + std::to_string(draws.rows.size()) +
                                              " draws for " + std::to_string(n_rows) + " rows");
    }
    tokens.assign(n_rows, -2);
    for (size_t r = 0; r < n_rows; ++r) {
        if (draws.rows[r].mode != draw::kDrawHost) {
            tokens[r] = draw_row(rows.subspan(r * vocab, vocab), draws.rows[r], draws.entries);
        }
    }
    host_rows = draws.any_host_row() ? rows : std::span<float>{};
    return ok();
}

Status ModelRunner::launch_argmax(const StepBatch& batch) { return launch(batch, nullptr); }

Status ModelRunner::launch_sample(const StepBatch& batch, const DrawBatch& draws) {
    if (draws.any_host_row()) {
        return fail(ErrorCode::kInvalidRequest,
                    "launch_sample: a row left to the host sampler cannot be launched ahead");
    }
    return launch(batch, &draws);
}

Status ModelRunner::launch(const StepBatch& batch, const DrawBatch* draws) {
    if (pending_.size() >= 2) {
        return fail(ErrorCode::kInvalidRequest,
                    "launch: two steps are outstanding already (finish one first)");
    }
    PendingStep& p = pending_.emplace_back();
    for (const SequenceSlice& s : batch.seqs) {
        p.tokens.emplace_back(s.tokens.begin(), s.tokens.end());
        p.tables.emplace_back(s.block_table.begin(), s.block_table.end());
    }
    p.batch = batch;
    for (size_t i = 0; i < batch.seqs.size(); ++i) {
        p.batch.seqs[i].tokens = p.tokens[i];
        p.batch.seqs[i].block_table = p.tables[i];
    }
    if (draws != nullptr) {
        p.sampled = true;
        p.draw_rows = draws->rows;
        p.draw_entries = draws->entries;
    }
    return ok();
}

Status ModelRunner::finish_launched(std::vector<int32_t>& tokens) {
    if (pending_.empty()) {
        return fail(ErrorCode::kInvalidRequest, "finish_launched: no step was launched");
    }
    PendingStep p = std::move(pending_.front());
    pending_.pop_front();
    DrawBatch draws{std::move(p.draw_rows), std::move(p.draw_entries)};
    size_t row = 0;  // the logits row of slice i (slices with need_logits, in batch order)
    for (size_t i = 0; i < p.batch.seqs.size(); ++i) {
        const int32_t fed = p.batch.seqs[i].fed_row;
        const size_t own_row = row;
        row += p.batch.seqs[i].need_logits ? 1 : 0;
        if (fed < 0) {
            continue;
        }
        if (p.tokens[i].size() != 1 || static_cast<size_t>(fed) >= last_tokens_.size()) {
            last_tokens_.clear();
            return fail(ErrorCode::kInvalidRequest,
                        "launch: sequence " + std::to_string(p.batch.seqs[i].seq_id) +
                            " is fed row " + std::to_string(fed) + " of a step with " +
                            std::to_string(last_tokens_.size()) + " rows");
        }
        const int32_t t = last_tokens_[static_cast<size_t>(fed)];
        // A broken row's -1 (its sequence fails at its own finish) steps as id 0, so the
        // neighbours it shares this step with are not failed by an id outside the vocabulary.
        p.tokens[i][0] = std::max(t, 0);
        p.batch.seqs[i].tokens = p.tokens[i];
        if (p.sampled && p.batch.seqs[i].need_logits && own_row < draws.rows.size()) {
            feed_row_draw(draws.rows[own_row], draws.entries, t);
        }
    }
    Status st = ok();
    if (p.sampled) {
        std::span<float> host_rows;
        st = step_sample(p.batch, draws, tokens, host_rows);
    } else {
        st = step_argmax(p.batch, tokens);
    }
    if (!st) {
        last_tokens_.clear();
        return st;
    }
    last_tokens_ = tokens;
    return ok();
}

}  // namespace helexa::engine
