// The host-side plan of one model step: the batch validated against the KV pool and the
// vocabulary, flattened (token ids, positions, KV slots, query starts, context lengths, logit
// rows, block tables) and packed into ONE int32 array, so a device backend receives the whole
// step's metadata in a single host-to-device copy.
//
// Decode-only steps can also be padded to a graph bucket (sequence count and block-table width
// rounded up) so a CUDA graph captured once per bucket replays for every step that fits it:
// padding sequences decode token 0 at position 0 into a reserved "trash" KV block that no real
// sequence owns, and their logit rows are ignored.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <tuple>
#include <vector>

#include "helexa/common/result.h"
#include "helexa/engine/step.h"

namespace helexa::engine::models {

struct GraphBucket {
    int64_t seqs = 0;    // padded sequence count
    int64_t blocks = 0;  // padded block-table width (max_blocks_per_seq)
    int64_t spread = 1;  // context_spread of the batch's own sequences (the attention's plan)
    bool operator<(const GraphBucket& o) const {
        return std::tie(seqs, blocks, spread) < std::tie(o.seqs, o.blocks, o.spread);
    }
};

// How unevenly a batch's contexts (each sequence's end position) are spread: the longest times
// their count over their sum, rounded down to a power of two and capped at kMaxContextSpread.
// 1 when even (or within 2x of even); a decode graph is recorded per value, so the attention's
// split plan can follow it (AttentionBatch::context_spread).
inline constexpr int64_t kMaxContextSpread = 64;
int64_t context_spread(const std::vector<int64_t>& ends);

struct StepPlan {
    int64_t n_seqs = 0;         // including padding
    int64_t n_real_seqs = 0;    // the batch's own sequences (first in every array)
    int64_t n_tokens = 0;
    int64_t n_rows = 0;         // logit rows (padding rows included)
    int64_t n_real_rows = 0;    // logit rows the caller asked for (first)
    int64_t max_blocks = 1;
    int64_t max_context = 0;    // the attention grid's bound (bucket width x block size if padded)
    int64_t max_query = 0;
    int64_t context_spread = 1;  // of the real sequences (the bucket's when padded)
    std::vector<int32_t> packed;
    // Offsets (in int32 elements) of each array inside `packed`.
    int64_t ids = 0;          // [n_tokens]
    int64_t positions = 0;    // [n_tokens]
    int64_t slots = 0;        // [n_tokens]
    int64_t query_start = 0;  // [n_seqs + 1]
    int64_t context_len = 0;  // [n_seqs]
    int64_t rows = 0;         // [n_rows]
    int64_t tables = 0;       // [n_seqs, max_blocks]
};

// Sequence counts and block widths graphs are captured for: decode steps of up to
// kMaxGraphSeqs sequences; wider steps run eagerly.
inline constexpr int64_t kMaxGraphSeqs = 256;

// The bucket a decode-only step (one token per sequence, every sequence wanting logits) pads
// to, or nullopt when the step must run eagerly.
std::optional<GraphBucket> graph_bucket(const StepBatch& batch, const KvLayout& layout);

// Validates and packs `batch`. With `pad`, the step must fit it (graph_bucket's answer) and
// `trash_block` must be a block id outside [0, layout.n_blocks) that the KV cache holds.
// Errors: kInvalidRequest naming the sequence (empty slice, short block table, block id outside
// the pool, token id outside the vocabulary).
Result<StepPlan> plan_step(const StepBatch& batch, const KvLayout& layout, int64_t vocab_size,
                           std::optional<GraphBucket> pad = std::nullopt,
                           int32_t trash_block = -1);

}  // namespace helexa::engine::models
