// The host side of the draw rule (draw_rule.h): which requests it covers, the per-row parameters a
// step carries to wherever its logits are, and the rule itself on a host row (what the CPU
// backend runs, and what the GPU's kernel is checked against).
// Thread-safety: pure functions of their arguments.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "helexa/engine/draw_rule.h"
#include "helexa/engine/sampling_config.h"

namespace helexa::engine {

// A step's draws: one RowDraw per logits row (batch order) and the penalty entries they index.
struct DrawBatch {
    std::vector<draw::RowDraw> rows;
    std::vector<draw::PenaltyEntry> entries;

    void clear() {
        rows.clear();
        entries.clear();
    }
    // True when some row goes to the host Sampler (mode kDrawHost).
    bool any_host_row() const;
    // The packed form a backend uploads (32-bit words): the rows, padded to n_rows with rows
    // that draw nothing (kDrawHost: a graph bucket's padding rows), then the entries.
    // n_rows >= rows.size().
    std::vector<int32_t> packed(size_t n_rows) const;
};

// 32-bit words of one packed RowDraw.
inline constexpr int64_t kRowDrawWords = sizeof(draw::RowDraw) / sizeof(int32_t);

// True when the rule draws requests with these settings over a vocabulary of `vocab` ids: every
// setting but top-k above draw::kMaxTopK and vocabularies above draw::kMaxVocab (those stay with
// the host Sampler), and top-p without top-k only where the runner draws it
// (`whole_vocab_top_p`: ModelRunner::draws_whole_vocab_top_p).
bool drawable(const SamplingConfig& cfg, int64_t vocab, bool whole_vocab_top_p);

// Appends the row for one request to `batch`: its penalties and bias as entries (generated: the
// tokens it generated so far, oldest first), `seed` and `position` (= generated.size()) as the
// draw's counter. A request the rule does not cover (drawable) gets a kDrawHost row.
// token_in_flight (overlapped decoding, docs/design/overlapped-decode.md): one more token was
// generated after `generated` and is not known yet. The row is planned as if it were appended
// (position generated.size() + 1, the repetition window one token shorter), with its last
// entry reserved for that token and the flags it takes (RowDraw::in_flight_flags), for
// feed_row_draw / draw::feed_in_flight to fill.
void plan_row_draw(const SamplingConfig& cfg, std::span<const int32_t> generated, uint64_t seed,
                   int64_t vocab, bool whole_vocab_top_p, DrawBatch& batch,
                   bool token_in_flight = false);

// draw::feed_in_flight on the host, from this translation unit (built with every operation
// rounded on its own, as the device's are), for the runner's and the backend's host feeds.
void feed_row_draw(const draw::RowDraw& d, std::span<draw::PenaltyEntry> entries, int32_t t);

// The nucleus floor of draw_rule.h step 4 for a row without top-k: the largest z whose finite
// logits at or above it hold draw::nucleus_target of the row's mass (max_l: the row's maximum).
float nucleus_floor(std::span<const float> row, float max_l, const draw::RowDraw& d);

// The rule on one host row, in place (penalties are applied to `row`). Returns the token, or -1
// when the row has a +inf or no finite logit. `entries` is the step's whole entry array.
int32_t draw_row(std::span<float> row, const draw::RowDraw& d,
                 std::span<const draw::PenaltyEntry> entries);

}  // namespace helexa::engine
