#include "helexa/engine/step.h"

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

Status ModelRunner::launch_argmax(const StepBatch& batch) {
    if (pending_.size() >= 2) {
        return fail(ErrorCode::kInvalidRequest,
                    "launch_argmax: two steps are outstanding already (finish one first)");
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
    return ok();
}

Status ModelRunner::finish_argmax(std::vector<int32_t>& tokens) {
    if (pending_.empty()) {
        return fail(ErrorCode::kInvalidRequest, "finish_argmax: no step was launched");
    }
    PendingStep p = std::move(pending_.front());
    pending_.pop_front();
    for (size_t i = 0; i < p.batch.seqs.size(); ++i) {
        const int32_t row = p.batch.seqs[i].fed_row;
        if (row < 0) {
            continue;
        }
        if (p.tokens[i].size() != 1 || static_cast<size_t>(row) >= last_tokens_.size()) {
            last_tokens_.clear();
            return fail(ErrorCode::kInvalidRequest,
                        "launch_argmax: sequence " + std::to_string(p.batch.seqs[i].seq_id) +
                            " is fed row " + std::to_string(row) + " of a step with " +
                            std::to_string(last_tokens_.size()) + " rows");
        }
        p.tokens[i][0] = last_tokens_[static_cast<size_t>(row)];
        p.batch.seqs[i].tokens = p.tokens[i];
    }
    const Status st = step_argmax(p.batch, tokens);
    if (!st) {
        last_tokens_.clear();
        return st;
    }
    last_tokens_ = tokens;
    return ok();
}

}  // namespace helexa::engine
