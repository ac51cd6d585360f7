#include "helexa/engine/step.h"

#include <cmath>

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

}  // namespace helexa::engine
