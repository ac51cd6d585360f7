// The engine's unit of work: one step of a model over a batch of sequences.
// Each sequence contributes a prefill chunk or one decode token (several when verifying drafts);
// the model runs once over the flattened tokens, writes K/V into the paged cache through each
// sequence's block table, and returns logits only for the rows that need sampling.
// Batch size 1 is a batch with one entry — never a separate code path.
// Thread-safety: a ModelRunner is driven by one scheduler thread.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "helexa/common/result.h"
#include "helexa/engine/draw_rule.h"

namespace helexa::engine {

struct DrawBatch;  // row_draw.h

// Shape of the paged KV cache a runner owns; the scheduler's block allocator hands out ids in
// [0, n_blocks). Block b of layer l holds K and V for `block_size` consecutive positions.
struct KvLayout {
    int64_t n_layers = 0;
    int64_t n_kv_heads = 0;
    int64_t head_dim = 0;
    int64_t block_size = 16;
    int64_t n_blocks = 0;
};

struct SequenceSlice {
    uint64_t seq_id = 0;
    std::span<const int32_t> tokens;       // this step's tokens for the sequence
    int64_t start_pos = 0;                 // position of tokens[0]; K/V for [0, start_pos) cached
    std::span<const int32_t> block_table;  // block ids covering [0, start_pos + tokens.size())
    bool need_logits = false;              // return logits for the last token of this slice
    // launch_argmax only: >= 0 when this slice's one token is the previous launched step's
    // token of that row (its argmax, on the device); tokens[0], any id of the vocabulary, is
    // replaced.
    int32_t fed_row = -1;
};

struct StepBatch {
    std::vector<SequenceSlice> seqs;
};

class ModelRunner {
public:
    virtual ~ModelRunner() = default;
    virtual int64_t vocab_size() const = 0;
    virtual const KvLayout& kv_layout() const = 0;
    // Runs the model over the batch. `logits` is resized to [n_rows, vocab] with one row per
    // slice that has need_logits, in batch order.
    virtual Status step(const StepBatch& batch, std::vector<float>& logits) = 0;
    // step() for callers that decode greedily: `tokens` gets the argmax of each logits row (in
    // batch order; ties to the lowest id; -1 for a row with no finite value or a +inf). A device runner
    // computes it there and copies 4 bytes per row instead of vocab x 4 (a 64-sequence step of
    // a 152k-vocabulary model would move 39 MB). The default runs step() and argmaxes on the
    // host.
    virtual Status step_argmax(const StepBatch& batch, std::vector<int32_t>& tokens);
    // step() for the scheduler: the rows stay where the runner put them and `rows` points at
    // them ([n_rows, vocab], as step(); the caller may modify them in place) until the runner's
    // next step. A device runner copies them
    // into page-locked memory and the sampler reads them there: a 32-row block of a 152k
    // vocabulary reaches the host in 0.35 ms that way against 1.30 ms into a pageable vector,
    // and copying it out again would cost 1.57 ms (H200 host, docs/perf/gpu-ceilings.md). The
    // default runs step() into a vector the runner keeps.
    virtual Status step_in_place(const StepBatch& batch, std::span<float>& rows);
    // step() for the scheduler when rows are sampled: `draws` holds one RowDraw per logits row
    // (batch order). A row the draw rule covers gets its token where the logits are (tokens[r];
    // -1 for a broken row, as step_argmax); a kDrawHost row gets -2, and then `host_rows` holds
    // every row's logits ([n_rows, vocab], as step_in_place; the drawn rows penalised); with no
    // kDrawHost row it is empty. A device runner then copies 4 bytes a row, not the vocabulary.
    // The default runs step_in_place and the rule on the host (draw_row).
    virtual Status step_sample(const StepBatch& batch, const DrawBatch& draws,
                               std::vector<int32_t>& tokens, std::span<float>& host_rows);
    // Whether step_sample draws rows with top-p over the whole vocabulary (no top-k) itself;
    // when not, the scheduler plans them as kDrawHost (plan_row_draw) and the host Sampler takes
    // them. Not by default: on the host the rule's nucleus floor costs ~2 ms a 152k row against
    // the Sampler's ~0.15 (draw_rule_bench), and the default draws on the host.
    virtual bool draws_whole_vocab_top_p() const { return false; }

    // Overlapped decoding (docs/design/overlapped-decode.md): launch_argmax starts
    // step_argmax's work for `batch` and may return before it ends, so the caller can launch
    // the next step before it reads this one's tokens; finish_launched waits for the oldest
    // launched step and gives its tokens as step_argmax would. A slice with fed_row >= 0 holds
    // one token whose id is the previous launched step's token of row fed_row. At most two
    // steps are outstanding (launch, launch, finish, launch, finish, ..., finish), and no other
    // step call is made while one is. The default runs each step at its finish_launched.
    // Errors: step_argmax's, and kInvalidRequest for a fed row the previous step lacks or a
    // third outstanding launch; a failed step's error comes from its finish_launched.
    virtual Status launch_argmax(const StepBatch& batch);
    // launch_argmax for drawn rows: step_sample's work, its tokens given by finish_launched.
    // `draws` has no kDrawHost row (kInvalidRequest), and a fed row's draw may have been
    // planned with its token in flight (plan_row_draw): that token completes it
    // (draw::feed_in_flight) where the runner has it.
    virtual Status launch_sample(const StepBatch& batch, const DrawBatch& draws);
    virtual Status finish_launched(std::vector<int32_t>& tokens);

protected:
    // step_in_place's rows where the runner has no better place for them (the default; a device
    // runner on a backend without page-locked memory).
    std::vector<float> in_place_rows_;

private:
    // The default launches' steps not yet finished (copies: the caller's spans may move) and
    // the last finished step's tokens, which fed rows take.
    struct PendingStep {
        std::vector<std::vector<int32_t>> tokens;
        std::vector<std::vector<int32_t>> tables;
        StepBatch batch;
        // launch_sample's draws (a DrawBatch's parts: row_draw.h stays out of this header).
        bool sampled = false;
        std::vector<draw::RowDraw> draw_rows;
        std::vector<draw::PenaltyEntry> draw_entries;
    };
    Status launch(const StepBatch& batch, const DrawBatch* draws);
    std::deque<PendingStep> pending_;
    std::vector<int32_t> last_tokens_;
};

// The host argmax step_argmax's default uses (same rules), over rows of `vocab` logits.
void argmax_rows(const std::vector<float>& logits, int64_t vocab, std::vector<int32_t>& tokens);

}  // namespace helexa::engine
