// Sampling on the device, so a decode step copies rows int32 ids to the host instead of rows *
// vocab floats (600 KB per row for a 152k vocab): the argmax of each row (greedy steps), and the
// engine's draw rule (every other setting it covers: penalties, temperature, top-k <= 64, top-p,
// min-p). Logprobs and what the rule does not cover still need the logits on the host. The
// launchers are pure functions of their arguments: safe to call from any host thread on any
// stream; they never allocate or synchronise.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace helexa::kernels {

// out_ids[r] = argmax over c of logits[r, c]; logits: [rows, vocab] contiguous f32; out_ids: int32
// [rows]. Matches the CPU sampler's greedy pick: only finite logits compete, ties go to the lowest
// index, NaN and -inf never win. A row the CPU sampler would reject (no finite logit, or any
// +inf) gets -1, so the caller fails that request the same way. vocab must fit in int32.
cudaError_t launch_argmax_rows(const float* logits, int64_t rows, int64_t vocab, int32_t* out_ids,
                               cudaStream_t stream);

// Draws one token per row by the engine's draw rule (helexa/engine/draw_rule.h: penalties,
// greedy, temperature, top-k <= 64 with top-p, min-p, a Gumbel-max draw keyed by seed and
// position), bit-identical to the host's draw_row on the same logits.
//   logits: [rows, vocab] contiguous f32, penalised in place; vocab <= draw::kMaxVocab.
//   draws: device memory holding [rows] RowDraw followed by the PenaltyEntry array they index
//     (DrawBatch::packed).
//   out_ids: int32 [rows]: the token; -1 for a row with a +inf or no finite logit; -2 for a
//     kDrawHost row (left to the host sampler, its logits untouched).
//   cluster: CTAs a row, 1, 2, 4 or 8 (draw_rows_cluster(rows) for the fastest; the token does
//     not depend on it); devices without thread-block clusters always take 1.
cudaError_t launch_draw_rows(float* logits, int64_t rows, int64_t vocab, const void* draws,
                             int32_t* out_ids, int cluster, cudaStream_t stream);

// Overlapped decoding's feed of drawn rows (engine::Backend::feed_draws): for each row r < rows
// with map[r] >= 0, draw::feed_in_flight(row r, its entries, prev[map[r]]) in place. draws:
// device memory as launch_draw_rows takes it; prev: the previous step's tokens (every map[r]
// indexes it); map: int32 [rows].
cudaError_t launch_feed_draws(void* draws, int64_t rows, const int32_t* prev, const int32_t* map,
                              cudaStream_t stream);

// The fastest cluster size for `rows` rows: 8 CTAs while every row's cluster of 8 fits the card
// at once (a row's latency first), then 4, then 2 (more rows at once); 1 on devices without
// thread-block clusters. HELEXA_DRAW_CLUSTER=1|2|4|8 forces one, for A/B measurements.
int draw_rows_cluster(int64_t rows);

// How many rows launch_draw_rows draws at once on the current device in clusters of `cluster`
// CTAs (its clusters resident together); 0 when the query fails or the device has no clusters
// of that size. For benchmarks and tests.
int draw_rows_max_clusters(int cluster);

}  // namespace helexa::kernels
