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

}  // namespace helexa::engine
