#include "step_plan.h"

#include <algorithm>
#include <climits>
#include <string>

namespace helexa::engine::models {
namespace {

int64_t round_up_pow2(int64_t v, int64_t floor) {
    int64_t r = floor;
    while (r < v) {
        r *= 2;
    }
    return r;
}

// Sequence buckets: every count up to 8 (the skinny-matmul range, where each extra row costs
// little), then steps of 8 up to 64, then powers of two; so padding wastes under 25%.
int64_t seq_bucket(int64_t n) {
    if (n <= 8) {
        return n;
    }
    if (n <= 64) {
        return (n + 7) / 8 * 8;
    }
    return round_up_pow2(n, 64);
}

}  // namespace

int64_t context_spread(const std::vector<int64_t>& ends) {
    int64_t longest = 0;
    int64_t sum = 0;
    for (const int64_t e : ends) {
        longest = std::max(longest, e);
        sum += std::max<int64_t>(e, 0);
    }
    if (sum <= 0) {
        return 1;
    }
    // longest * n / sum in [1, n]; the largest power of two not above it.
    const int64_t ratio = longest * static_cast<int64_t>(ends.size()) / sum;
    int64_t spread = 1;
    while (spread * 2 <= ratio && spread * 2 <= kMaxContextSpread) {
        spread *= 2;
    }
    return spread;
}

std::optional<GraphBucket> graph_bucket(const StepBatch& batch, const KvLayout& layout) {
    const auto n = static_cast<int64_t>(batch.seqs.size());
    if (n == 0 || n > kMaxGraphSeqs) {
        return std::nullopt;
    }
    int64_t max_blocks = 1;
    std::vector<int64_t> ends;
    ends.reserve(batch.seqs.size());
    for (const auto& s : batch.seqs) {
        if (s.tokens.size() != 1 || !s.need_logits) {
            return std::nullopt;
        }
        const int64_t end = s.start_pos + 1;
        max_blocks = std::max(max_blocks, (end + layout.block_size - 1) / layout.block_size);
        ends.push_back(end);
    }
    // Block-table widths in powers of two from 16 blocks: few graphs over a whole context.
    return GraphBucket{seq_bucket(n), round_up_pow2(max_blocks, 16), context_spread(ends)};
}

Result<StepPlan> plan_step(const StepBatch& batch, const KvLayout& layout, int64_t vocab_size,
                           std::optional<GraphBucket> pad, int32_t trash_block) {
    const int64_t bs = layout.block_size;
    StepPlan p;
    p.n_real_seqs = static_cast<int64_t>(batch.seqs.size());
    std::vector<int32_t> ids;
    std::vector<int32_t> pos;
    std::vector<int32_t> slots;
    std::vector<int32_t> qstart{0};
    std::vector<int32_t> ctx;
    std::vector<int32_t> rows;
    std::vector<int64_t> ends;
    for (const auto& s : batch.seqs) {
        const auto n = static_cast<int64_t>(s.tokens.size());
        const int64_t end = s.start_pos + n;
        const int64_t needed = (end + bs - 1) / bs;
        if (n == 0 || s.start_pos < 0) {
            return fail(ErrorCode::kInvalidRequest, "step: sequence " + std::to_string(s.seq_id) +
                                                        " has no tokens or a negative start");
        }
        if (end > INT32_MAX || static_cast<int64_t>(s.block_table.size()) < needed) {
            return fail(ErrorCode::kInvalidRequest,
                        "step: sequence " + std::to_string(s.seq_id) + " needs " +
                            std::to_string(needed) + " KV blocks, block table has " +
                            std::to_string(s.block_table.size()));
        }
        for (int64_t i = 0; i < needed; ++i) {
            const int32_t b = s.block_table[static_cast<size_t>(i)];
            if (b < 0 || b >= layout.n_blocks) {
                return fail(ErrorCode::kInvalidRequest,
                            "step: block id " + std::to_string(b) + " outside the KV pool");
            }
        }
        for (int64_t j = 0; j < n; ++j) {
            const int32_t tok = s.tokens[static_cast<size_t>(j)];
            if (tok < 0 || tok >= vocab_size) {
                return fail(ErrorCode::kInvalidRequest,
                            "step: token id " + std::to_string(tok) + " outside the vocabulary");
            }
            const int64_t at = s.start_pos + j;
            ids.push_back(tok);
            pos.push_back(static_cast<int32_t>(at));
            slots.push_back(
                static_cast<int32_t>(s.block_table[static_cast<size_t>(at / bs)] * bs + at % bs));
        }
        qstart.push_back(static_cast<int32_t>(ids.size()));
        ctx.push_back(static_cast<int32_t>(end));
        ends.push_back(end);
        p.max_blocks = std::max(p.max_blocks, needed);
        p.max_context = std::max(p.max_context, end);
        p.max_query = std::max(p.max_query, n);
        if (s.need_logits) {
            rows.push_back(static_cast<int32_t>(ids.size() - 1));
        }
    }
    p.n_real_rows = static_cast<int64_t>(rows.size());
    p.n_seqs = p.n_real_seqs;
    // A padded plan takes its bucket's (graph_bucket computed it from the same sequences).
    p.context_spread = pad ? pad->spread : context_spread(ends);
    if (pad) {
        if (pad->seqs < p.n_real_seqs || pad->blocks < p.max_blocks || trash_block < 0 ||
            p.n_real_rows != p.n_real_seqs || p.max_query != 1) {
            return fail(ErrorCode::kInternal, "step: batch does not fit its graph bucket");
        }
        // Padding sequences: token 0 at position 0, written to the trash block's first slot.
        for (int64_t i = p.n_real_seqs; i < pad->seqs; ++i) {
            ids.push_back(0);
            pos.push_back(0);
            slots.push_back(static_cast<int32_t>(trash_block * bs));
            qstart.push_back(static_cast<int32_t>(ids.size()));
            ctx.push_back(1);
            rows.push_back(static_cast<int32_t>(ids.size() - 1));
        }
        p.n_seqs = pad->seqs;
        p.max_blocks = pad->blocks;
        // The attention grid is sized for the bucket's whole width: any context that fits the
        // bucket replays the same graph.
        p.max_context = pad->blocks * bs;
    }
    p.n_tokens = static_cast<int64_t>(ids.size());
    p.n_rows = static_cast<int64_t>(rows.size());

    auto& out = p.packed;
    out.reserve(static_cast<size_t>(3 * p.n_tokens + 2 * p.n_seqs + 1 + p.n_rows +
                                    p.n_seqs * p.max_blocks));
    auto append = [&](const std::vector<int32_t>& v) {
        const auto at = static_cast<int64_t>(out.size());
        out.insert(out.end(), v.begin(), v.end());
        return at;
    };
    p.ids = append(ids);
    p.positions = append(pos);
    p.slots = append(slots);
    p.query_start = append(qstart);
    p.context_len = append(ctx);
    p.rows = append(rows);
    p.tables = static_cast<int64_t>(out.size());
    out.resize(out.size() + static_cast<size_t>(p.n_seqs * p.max_blocks),
               pad ? trash_block : 0);
    for (int64_t i = 0; i < p.n_real_seqs; ++i) {
        const auto& bt = batch.seqs[static_cast<size_t>(i)].block_table;
        const int64_t needed = (ctx[static_cast<size_t>(i)] + bs - 1) / bs;
        std::copy(bt.begin(), bt.begin() + needed,
                  out.begin() + p.tables + i * p.max_blocks);
    }
    return p;
}

}  // namespace helexa::engine::models
