// The draw rule (helexa/engine/draw_rule.h) on the device: one token per logits row, so a sampled
// step copies rows int32 ids to the host instead of rows x vocab floats and the host samples
// nothing.
//
// Each row is read by a thread-block cluster of C CTAs of 1024 threads (8 for a few rows, 4 or 2
// for many: draw_rows_cluster); CTA `rank` owns a contiguous C-th of the row and each thread
// kPerThread<C> of its logits (ids begin + thread + i * 1024: coalesced). Reductions run over
// warps (shuffles), then the CTA (shared memory), then the cluster (distributed shared memory,
// two alternating slots so one cluster barrier a reduction suffices). The rows are streamed from
// memory (L2 after the first pass): nothing is staged in shared memory.
//
// Two kernels, each taking the rows of its kind and skipping the rest (both always run):
//   draw_scan_kernel: penalties, then the max (greedy: done); sampling over the whole vocabulary
//     finds top-p's floor first where asked (four radix rounds over the logits' order keys,
//     integer mass buckets merged over the cluster), then keys each finite logit above the
//     floors (z + Gumbel) in a last pass and keeps the best. An id whose key
//     cannot reach the key of the row's top id (z + the largest Gumbel variate below it) is
//     skipped without its hash and logs: the result is the same, the work follows the
//     distribution's spread.
//   draw_top_k_kernel: penalties and the max, then the k best: each CTA sorts its 1024 thread
//     maxima (bitonic, shared memory) and takes the k-th, a bound no top-k logit is below (those k
//     maxima are k distinct logits); the cluster keeps the highest CTA bound, collects every logit
//     at or above it into CTA 0 (typically a few times k), sorts them and keeps k. Should more than
//     kCandidates qualify (a row of massive ties, or banned all but a few threads' ids), the exact
//     fallback is a k-round tournament over the row (per warp, then CTA, then cluster). Warp 0 of
//     CTA 0 then runs top-p (one lane: the f32 sum in list order, as on the host), min-p and the
//     keyed argmax over the survivors.
// Every order is the rule's total order (higher key, then lower id), so the result does not depend
// on which thread saw what, and equals the host's draw_row bit for bit.
#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "helexa/engine/draw_rule.h"
#include "helexa/kernels/sampling.h"
#include "clusters.cuh"
#include "launch.cuh"
#include "row_best.cuh"

namespace helexa::kernels {
namespace {

namespace cg = cooperative_groups;
namespace draw = engine::draw;

constexpr int kThreads = 1024;
constexpr int kWarp = 32;
constexpr int kWarps = kThreads / kWarp;
constexpr int kCandidates = kThreads;  // top-k candidates CTA 0 sorts (one per thread)

// A row's cluster: C CTAs (template parameter C of everything below), each thread kPerThread<C>
// logits of the row. Few rows take clusters of 8 (the row's latency: 8 SMs on it); many rows
// take smaller ones, so more rows are drawn at once (one CTA fills an SM's registers: ~15
// clusters of 8 are resident on an H200, ~66 of 2). C == 1 is one CTA a row, the only form on
// devices without clusters (clusters.cuh). Every reduction below uses the rule's total order or
// integer sums, so the token does not depend on C.
template <int C>
constexpr int kPerThread = static_cast<int>(draw::kMaxVocab / (int64_t{C} * kThreads));
template <int C>
constexpr bool covers_vocab = int64_t{C} * kThreads * kPerThread<C> == draw::kMaxVocab;
static_assert(covers_vocab<8> && covers_vocab<4> && covers_vocab<2> && covers_vocab<1>,
              "the rule's vocabulary limit is what one cluster covers");
static_assert(kWarps == kWarp, "the CTA merge is one warp over every warp's result");

using Best = RowBest;

// What every reduction needs.
struct Reduce {
    Best warp_slots[kWarps];
    Best result;
    Best cluster_slots[2];  // read by the other CTAs of the cluster
};

// The top-k kernel's own.
struct TopK {
    Best sorted[kCandidates];  // thread maxima, then (CTA 0) the collected candidates
    int32_t n_candidates;      // CTA 0: how many were collected (may exceed kCandidates)
    int32_t n_seen;            // every CTA: CTA 0's n_candidates after the collection
    Best warp_lists[kWarps][draw::kMaxTopK];  // the fallback tournament
    Best cta_list[draw::kMaxTopK];            // read by CTA 0
    float top_z[draw::kMaxTopK];
    float top_w[draw::kMaxTopK];  // exp(z), for top-p
    float top_key[draw::kMaxTopK];
    int32_t keep;
};

// The best over the CTA, in every thread.
__device__ __forceinline__ Best cta_best(Best b, Reduce& s) {
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
    b = warp_row_best(b);
    if (lane == 0) {
        s.warp_slots[warp] = b;
    }
    __syncthreads();
    if (warp == 0) {
        b = warp_row_best(s.warp_slots[lane]);
        if (lane == 0) {
            s.result = b;
        }
    }
    __syncthreads();
    return s.result;
}

// The best over the cluster (`b`: this CTA's best, the same in every thread), in every thread.
// Slot `phase` is rewritten two reductions later, after every CTA passed the barrier between.
template <int C>
__device__ __forceinline__ Best cluster_best(Best b, Reduce& s, int& phase) {
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    if (threadIdx.x == 0) {
        s.cluster_slots[phase] = b;
    }
    group_sync<C>();
    if (threadIdx.x < kWarp) {
        Best o = no_row_best();
        if (lane < C) {
            o = *group_peer<C>(&s.cluster_slots[phase], lane);
        }
        o = warp_row_best(o);
        if (lane == 0) {
            s.result = o;
        }
    }
    __syncthreads();
    phase ^= 1;
    return s.result;
}

// Where one row is, for one CTA of its cluster.
struct RowSlice {
    float* row;     // [vocab] f32, penalised in place
    int64_t first;  // this thread's first id (begin + thread); then stride kThreads
    int64_t end;    // the CTA's slice is [begin, end)
};

template <int C>
__device__ __forceinline__ RowSlice row_slice(float* logits, int64_t r, int64_t vocab, int rank) {
    const int64_t slice = (vocab + C - 1) / C;
    const int64_t begin = rank * slice < vocab ? rank * slice : vocab;
    const int64_t end = begin + slice < vocab ? begin + slice : vocab;
    return RowSlice{logits + r * vocab, begin + threadIdx.x, end};
}

// The penalties of one row, applied in place to this CTA's slice, then (every thread) this
// thread's best finite logit and the CTA-then-cluster best: the row's max, its lowest id, and
// whether a +inf was seen. Plain loads: the same CTA just wrote some of these logits.
template <int C>
__device__ __forceinline__ Best penalise_and_find_max(const RowSlice& rs, const draw::RowDraw& d,
                                                      const draw::PenaltyEntry* entries,
                                                      Reduce& s, int& phase, Best& mine) {
    const int64_t begin = rs.first - threadIdx.x;
    for (uint32_t e = threadIdx.x; e < d.n_entries; e += kThreads) {
        const draw::PenaltyEntry pe = entries[d.first_entry + e];
        if (pe.id >= begin && pe.id < rs.end) {
            rs.row[pe.id] = draw::apply_penalty(rs.row[pe.id], pe, d.repetition_penalty);
        }
    }
    __syncthreads();  // the penalised logits are visible to the whole CTA
    mine = no_row_best();
#pragma unroll
    for (int i = 0; i < kPerThread<C>; ++i) {
        const int64_t c = rs.first + int64_t{i} * kThreads;
        if (c < rs.end) {
            const float x = rs.row[c];
            if (draw::finite(x)) {
                if (mine.id < 0 || x > mine.key) {
                    mine.key = x;
                    mine.id = static_cast<int32_t>(c);
                }
            } else if (x > 0.0F) {
                mine.pos_inf = 1;
            }
        }
    }
    return cluster_best<C>(cta_best(mine, s), s, phase);
}

// Rows that are broken or greedy end with the max: the token (or -1). True when the row is done.
__device__ __forceinline__ bool ended_by_max(const Best& top, const draw::RowDraw& d, int rank,
                                             int32_t* out) {
    if (top.pos_inf != 0 || top.id < 0 || d.mode == draw::kDrawGreedy) {
        if (rank == 0 && threadIdx.x == 0) {
            *out = top.pos_inf != 0 ? -1 : top.id;
        }
        return true;
    }
    return false;
}

// The nucleus floor's shared state (top-p over the whole vocabulary): each CTA's mass buckets for
// one byte of the order key, two alternating buffers (a peer may still read the last round's
// while this CTA fills the next: one cluster barrier a round suffices), the cluster's merged
// buckets, and the decision so far.
struct Nucleus {
    unsigned long long bucket[2][256];
    unsigned long long merged[256];
    uint32_t prefix;
    unsigned long long above;  // mass of every key above the prefix's bucket
    unsigned long long target;
};

// This thread's share of one radix round: the mass of each of its logits whose key lies under the
// prefix, added to its bucket. Round 0 puts nearly every mass in the few buckets of the
// logits' leading exponents, and shared memory has no native 64-bit add (an atomicAdd there is a
// compare-and-swap loop, retried under contention: ~16 us a round when every thread added each
// run of equal buckets). So each thread sums into a few register slots first (a slot is flushed
// only when a new bucket finds none free), and a warp's slots are summed per bucket across its
// lanes before one lane adds them: a few atomics a warp instead of a few per thread. The logits
// are loaded kRoundLoads at a time before any is used. Integer sums: the same in any order.
constexpr int kRoundLoads = 8;
constexpr int kMassSlots = 4;
template <int C>
__device__ __forceinline__ void add_round_masses(const RowSlice& rs, float max_l, float inv_t,
                                                 uint32_t prefix, int shift,
                                                 unsigned long long* bucket) {
    int slot_bucket[kMassSlots];
    unsigned long long slot_mass[kMassSlots];
#pragma unroll
    for (int s = 0; s < kMassSlots; ++s) {
        slot_bucket[s] = -1;
        slot_mass[s] = 0;
    }
    static_assert(kPerThread<C> % kRoundLoads == 0);
#pragma unroll 1
    for (int i0 = 0; i0 < kPerThread<C>; i0 += kRoundLoads) {
        float xs[kRoundLoads];
#pragma unroll
        for (int j = 0; j < kRoundLoads; ++j) {
            const int64_t c = rs.first + int64_t{i0 + j} * kThreads;
            xs[j] = c < rs.end ? rs.row[c] : -INFINITY;  // past the slice: skipped as non-finite
        }
#pragma unroll
        for (int j = 0; j < kRoundLoads; ++j) {
            if (!draw::finite(xs[j])) {
                continue;
            }
            // The key first: after round 0 few logits lie under the prefix, and only theirs
            // need the mass's exponential (the rule's own, exact on host and device: dozens of
            // instructions, which bound a round when every logit paid them).
            const float z = draw::mul(draw::sub(xs[j], max_l), inv_t);
            const uint32_t k = draw::order_key(z);
            if (!draw::under_prefix(k, prefix, shift)) {
                continue;
            }
            const uint64_t m = draw::mass_of(z);
            if (m == 0) {
                continue;
            }
            const int b = static_cast<int>((k >> shift) & 0xffu);
            // The slot holding b, else the first free one, else the last (flushed first).
            int target = kMassSlots - 1;
            bool held = false;
#pragma unroll
            for (int s = kMassSlots - 1; s >= 0; --s) {
                if (!held && slot_bucket[s] < 0) {
                    target = s;
                }
            }
#pragma unroll
            for (int s = 0; s < kMassSlots; ++s) {
                if (!held && slot_bucket[s] == b) {
                    target = s;
                    held = true;
                }
            }
#pragma unroll
            for (int s = 0; s < kMassSlots; ++s) {
                if (s == target) {
                    if (!held) {
                        if (slot_bucket[s] >= 0) {
                            atomicAdd(&bucket[slot_bucket[s]], slot_mass[s]);
                        }
                        slot_bucket[s] = b;
                        slot_mass[s] = 0;
                    }
                    slot_mass[s] += m;
                }
            }
        }
    }
    // Every lane of the warp is here (no early return above): sum each slot over the lanes that
    // hold the same bucket in it, one atomic per bucket and slot.
    const cg::thread_block_tile<kWarp> warp = cg::tiled_partition<kWarp>(cg::this_thread_block());
#pragma unroll
    for (int s = 0; s < kMassSlots; ++s) {
        const cg::coalesced_group same = cg::labeled_partition(warp, slot_bucket[s]);
        const unsigned long long sum =
            cg::reduce(same, slot_mass[s], cg::plus<unsigned long long>());
        if (slot_bucket[s] >= 0 && same.thread_rank() == 0) {
            atomicAdd(&bucket[slot_bucket[s]], sum);
        }
    }
}

// draw_rule.h's nucleus floor (the host's nucleus_floor): four rounds, each bucketing the masses
// of the keys under the prefix by their next byte, merging the cluster's buckets and taking the
// highest bucket whose mass brings the mass at or above it to the target (round 0's buckets hold
// every mass: their sum is the row's total, hence the target). Every CTA decides the same way from
// the same merged buckets. Integer sums: exact in any order. Not inlined: in the kernel's own
// body (1024 threads, 64 registers each) it made ptxas spill.
template <int C>
__device__ __noinline__ float nucleus_floor(const RowSlice& rs, float max_l,
                                            const draw::RowDraw& d, Nucleus& nb,
                                            int& buf) {
    const int tid = static_cast<int>(threadIdx.x);
    const int lane = tid % kWarp;
    uint32_t prefix = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        unsigned long long* mine = nb.bucket[buf];
        for (int i = tid; i < 256; i += kThreads) {
            mine[i] = 0;
        }
        __syncthreads();
        add_round_masses<C>(rs, max_l, d.inv_temperature, prefix, shift, mine);
        group_sync<C>();  // every CTA's buckets are complete and visible
        if (tid < 256) {
            unsigned long long sum = 0;
#pragma unroll
            for (int r = 0; r < C; ++r) {
                sum += *group_peer<C>(&mine[tid], r);
            }
            nb.merged[tid] = sum;
        }
        __syncthreads();
        if (tid < kWarp) {
            // Lane l holds buckets 255 - 8l down to 248 - 8l: the scan runs from the top.
            unsigned long long part = 0;
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                part += nb.merged[255 - 8 * lane - j];
            }
            unsigned long long incl = part;  // this lane's and every higher bucket's
#pragma unroll
            for (int off = 1; off < kWarp; off <<= 1) {
                const unsigned long long o = __shfl_up_sync(0xffffffffu, incl, off);
                if (lane >= off) {
                    incl += o;
                }
            }
            if (shift == 24 && lane == kWarp - 1) {
                nb.target = draw::nucleus_target(incl, draw::top_p_fixed(d.top_p));
                nb.above = 0;
            }
            __syncwarp();
            const unsigned long long target = nb.target;
            const unsigned long long above = nb.above;
            const unsigned crossed = __ballot_sync(0xffffffffu, above + incl >= target);
            const int first = crossed != 0 ? __ffs(static_cast<int>(crossed)) - 1 : kWarp - 1;
            if (lane == first) {
                unsigned long long running = above + incl - part;
                int b = 255 - 8 * lane;
                for (int j = 0; j < 8; ++j, --b) {
                    if (b == 0 || running + nb.merged[b] >= target) {
                        break;
                    }
                    running += nb.merged[b];
                }
                nb.prefix = prefix | (static_cast<uint32_t>(b) << shift);
                nb.above = running;
            }
        }
        __syncthreads();
        prefix = nb.prefix;
        buf ^= 1;
    }
    return draw::from_order_key(prefix);
}

__device__ __forceinline__ float key_of(float z, uint64_t row_key, int32_t id) {
    return draw::add(z, draw::gumbel(draw::draw_bits(row_key, static_cast<uint32_t>(id))));
}

// logits: [rows, vocab] f32 contiguous (penalties applied in place); draws: [rows] RowDraw;
// entries: the PenaltyEntry array the rows index; out_ids: int32 [rows]. Grid (C, row slots) in
// clusters of C along x; every thread reaches every barrier of every row.
// Takes greedy rows and sampled rows without top-k; writes -2 for host rows.
template <int C>
__global__ void __launch_bounds__(kThreads)
    draw_scan_kernel(float* logits, int64_t rows, int64_t vocab, const draw::RowDraw* draws,
                     const draw::PenaltyEntry* entries, int32_t* out_ids) {
    // Nothing before this reads or writes what other kernels touch (launch.cuh).
    grid_dependency_wait();
    allow_dependent_launch();
    __shared__ Reduce s;
    __shared__ Nucleus nb;
    const int rank = group_rank<C>();
    int phase = 0;
    int buf = 0;
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
        const draw::RowDraw d = draws[r];
        if (d.mode == draw::kDrawHost) {
            if (rank == 0 && threadIdx.x == 0) {
                out_ids[r] = -2;
            }
            continue;
        }
        if (d.mode == draw::kDrawSample && d.top_k > 0) {
            continue;  // draw_top_k_kernel's
        }
        const RowSlice rs = row_slice<C>(logits, r, vocab, rank);
        Best mine;
        const Best top = penalise_and_find_max<C>(rs, d, entries, s, phase, mine);
        if (ended_by_max(top, d, rank, out_ids + r)) {
            continue;
        }
        const float max_l = top.key;
        // Top-p over the whole vocabulary and min-p: one floor on z (as the host: the larger).
        float z_floor = d.log_min_p;
        if (d.top_p < 1.0F) {
            const float nf = nucleus_floor<C>(rs, max_l, d, nb, buf);
            z_floor = nf < d.log_min_p ? d.log_min_p : nf;
        }
        const uint64_t row_key = draw::row_key(draw::seed_of(d), d.position);
        // The top id's key bounds the winner's from below.
        const float floor_key = key_of(0.0F, row_key, top.id);
        Best b = no_row_best();
#pragma unroll 4
        for (int i = 0; i < kPerThread<C>; ++i) {
            const int64_t c = rs.first + int64_t{i} * kThreads;
            if (c < rs.end) {
                const float x = rs.row[c];
                if (draw::finite(x)) {
                    const float z = draw::mul(draw::sub(x, max_l), d.inv_temperature);
                    if (z >= z_floor && draw::add(z, draw::kGumbelBound) >= floor_key) {
                        const auto id = static_cast<int32_t>(c);
                        const float key = key_of(z, row_key, id);
                        if (draw::before(key, id, b.key, b.id)) {
                            b.key = key;
                            b.id = id;
                        }
                    }
                }
            }
        }
        b = cluster_best<C>(cta_best(b, s), s, phase);
        if (rank == 0 && threadIdx.x == 0) {
            out_ids[r] = b.id;
        }
    }
    group_sync<C>();  // no CTA leaves while another may still read its cluster slots
}

// Sorts a[0, kThreads) so a[0] comes first in the rule's order (absent ids last): bitonic, one
// element per thread, every thread of the CTA. Each element stays in its thread's registers;
// exchanges between lanes of a warp (partner distance < 32: 40 of the 55 steps) are shuffles, the
// other 15 go through `a` with two barriers each.
__device__ __forceinline__ void sort_block(Best* a) {
    const auto i = static_cast<int>(threadIdx.x);
    Best x = a[i];
    for (int k = 2; k <= kThreads; k <<= 1) {
        for (int j = k >> 1; j > 0; j >>= 1) {
            Best y;
            if (j >= kWarp) {
                __syncthreads();  // every read of the previous exchange is done
                a[i] = x;
                __syncthreads();
                y = a[i ^ j];
            } else {
                y.key = __shfl_xor_sync(0xffffffffu, x.key, j);
                y.id = __shfl_xor_sync(0xffffffffu, x.id, j);
                y.pos_inf = 0;
            }
            // The lower index of a pair keeps the first of the two in blocks that lead
            // ((i & k) == 0), the second in the others.
            const bool keep_first = ((i & j) == 0) == ((i & k) == 0);
            const bool x_first = draw::before(x.key, x.id, y.key, y.id);
            if (keep_first != x_first) {
                x.key = y.key;
                x.id = y.id;
            }
        }
    }
    __syncthreads();  // every read of the last exchange is done
    a[i] = x;
    __syncthreads();
}

// The best of this thread's logits that comes after (after_key, after_id) in the rule's order
// (the best of all when after_id < 0). The fallback tournament's rescan.
template <int C>
__device__ __forceinline__ Best best_after(const RowSlice& rs, float after_key, int32_t after_id) {
    Best b = no_row_best();
    for (int i = 0; i < kPerThread<C>; ++i) {
        const int64_t c = rs.first + int64_t{i} * kThreads;
        if (c < rs.end) {
            const auto id = static_cast<int32_t>(c);
            const float x = rs.row[c];
            if (draw::finite(x) && (after_id < 0 || draw::before(after_key, after_id, x, id)) &&
                draw::before(x, id, b.key, b.id)) {
                b.key = x;
                b.id = id;
            }
        }
    }
    return b;
}

// Merges 32 sorted lists (lane L's list at `list`, k entries, padded with none) by a k-round
// tournament; lane 0 writes the merged k best to `out`. One warp.
__device__ __forceinline__ void merge_lists(const Best* list, int k, Best* out) {
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    int next = 0;
    Best head = list != nullptr ? list[0] : no_row_best();
    for (int j = 0; j < k; ++j) {
        const Best w = warp_row_best(head);
        if (lane == 0) {
            out[j] = w;
        }
        if (w.id >= 0 && head.id == w.id) {
            ++next;
            head = next < k ? list[next] : no_row_best();
        }
    }
}

// The exact fallback: the row's k best into CTA 0's t.warp_lists[0], by tournaments (each warp
// over its lanes' logits, warp 0 over the warps, CTA 0 over the CTAs). Every thread of the
// cluster calls it; it ends with the cluster barrier that publishes the CTA lists.
template <int C>
__device__ void top_k_by_tournament(const RowSlice& rs, int k, TopK& t,
                                    int rank) {
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
    Best cur = best_after<C>(rs, 0.0F, -1);
    for (int j = 0; j < k; ++j) {
        const Best w = warp_row_best(cur);
        if (lane == 0) {
            t.warp_lists[warp][j] = w;
        }
        if (w.id >= 0 && cur.id == w.id) {
            cur = best_after<C>(rs, w.key, w.id);
        }
    }
    __syncthreads();
    if (warp == 0) {
        merge_lists(t.warp_lists[lane], k, t.cta_list);
    }
    group_sync<C>();  // every CTA's list is published
    if (rank == 0 && warp == 0) {
        merge_lists(lane < C ? group_peer<C>(t.cta_list, lane) : nullptr, k,
                    t.warp_lists[0]);
    }
}

// CTA 0, warp 0: top-p, min-p and the keyed argmax over the row's k best (sorted, padded with
// none), as draw_row's draw_from_top_k does; lane 0 writes the token.
__device__ void draw_from_top_k(const Best* top_k, const draw::RowDraw& d, float max_l, TopK& t,
                                int32_t* out) {
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int k = d.top_k;
    const uint64_t row_key = draw::row_key(draw::seed_of(d), d.position);
    for (int j = lane; j < k; j += kWarp) {
        if (top_k[j].id >= 0) {
            const float z = draw::mul(draw::sub(top_k[j].key, max_l), d.inv_temperature);
            t.top_z[j] = z;
            t.top_w[j] = draw::exp_nonpositive(z);
            t.top_key[j] = key_of(z, row_key, top_k[j].id);
        }
    }
    __syncwarp();
    if (lane == 0) {
        int n = 0;
        while (n < k && top_k[n].id >= 0) {
            ++n;
        }
        int keep = n;
        if (d.top_p < 1.0F) {
            float total = 0.0F;
            for (int j = 0; j < n; ++j) {
                total = draw::add(total, t.top_w[j]);
            }
            const float threshold = draw::mul(d.top_p, total);
            float cumulative = 0.0F;
            for (int j = 0; j < n; ++j) {
                cumulative = draw::add(cumulative, t.top_w[j]);
                if (cumulative >= threshold) {
                    keep = j + 1;
                    break;
                }
            }
        }
        int survivors = 0;
        while (survivors < keep && t.top_z[survivors] >= d.log_min_p) {
            ++survivors;
        }
        t.keep = survivors;
    }
    __syncwarp();
    Best b = no_row_best();
    for (int j = lane; j < t.keep; j += kWarp) {
        if (draw::before(t.top_key[j], top_k[j].id, b.key, b.id)) {
            b.key = t.top_key[j];
            b.id = top_k[j].id;
        }
    }
    b = warp_row_best(b);
    if (lane == 0) {
        *out = b.id;
    }
}

// As draw_scan_kernel, for the sampled rows with top-k (the others it skips).
template <int C>
__global__ void __launch_bounds__(kThreads)
    draw_top_k_kernel(float* logits, int64_t rows, int64_t vocab, const draw::RowDraw* draws,
                      const draw::PenaltyEntry* entries, int32_t* out_ids) {
    grid_dependency_wait();
    allow_dependent_launch();
    __shared__ Reduce s;
    __shared__ TopK t;
    const int rank = group_rank<C>();
    int phase = 0;
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
        const draw::RowDraw d = draws[r];
        if (d.mode != draw::kDrawSample || d.top_k == 0) {
            continue;  // draw_scan_kernel's
        }
        const RowSlice rs = row_slice<C>(logits, r, vocab, rank);
        Best mine;
        const Best top = penalise_and_find_max<C>(rs, d, entries, s, phase, mine);
        if (ended_by_max(top, d, rank, out_ids + r)) {
            continue;
        }
        const int k = d.top_k;
        // The bound: the k-th best thread maximum of this CTA, then the highest over the cluster.
        t.sorted[threadIdx.x] = Best{mine.key, mine.id, 0};
        if (threadIdx.x == 0) {
            t.n_candidates = 0;
        }
        __syncthreads();
        sort_block(t.sorted);
        Best bound = t.sorted[k - 1];
        bound.id = bound.id >= 0 ? rank : -1;  // ties between CTAs: any; absent: no bound
        __syncthreads();  // every thread read the bound before CTA 0's buffer is reused
        bound = cluster_best<C>(cta_best(bound, s), s, phase);
        const bool bounded = bound.id >= 0;
        // Every finite logit at or above the bound goes to CTA 0 (n_candidates counts them
        // all, so an overflow is seen; only the first kCandidates are stored).
        // One remote atomic a warp and step (the ballot's count), not one a candidate.
        int32_t* n_candidates = group_peer<C>(&t.n_candidates, 0);
        Best* candidates = group_peer<C>(t.sorted, 0);
        const int lane = static_cast<int>(threadIdx.x) % kWarp;
        for (int i = 0; i < kPerThread<C>; ++i) {
            const int64_t c = rs.first + int64_t{i} * kThreads;
            const float x = c < rs.end ? rs.row[c] : 0.0F;
            const bool take = c < rs.end && draw::finite(x) && (!bounded || x >= bound.key);
            const unsigned takers = __ballot_sync(0xffffffffu, take);
            if (takers == 0) {
                continue;
            }
            int32_t base = 0;
            if (lane == __ffs(takers) - 1) {
                base = atomicAdd(n_candidates, __popc(takers));
            }
            base = __shfl_sync(0xffffffffu, base, __ffs(takers) - 1);
            const int32_t slot = base + __popc(takers & ((1u << lane) - 1u));
            if (take && slot < kCandidates) {
                candidates[slot] = Best{x, static_cast<int32_t>(c), 0};
            }
        }
        group_sync<C>();  // every candidate is in CTA 0
        // The count, read from CTA 0 once a CTA.
        if (threadIdx.x == 0) {
            t.n_seen = *n_candidates;
        }
        __syncthreads();
        const int32_t n = t.n_seen;
        const int warp = static_cast<int>(threadIdx.x) / kWarp;
        if (n <= kCandidates) {
            if (rank == 0) {
                if (static_cast<int32_t>(threadIdx.x) >= n) {
                    t.sorted[threadIdx.x] = no_row_best();
                }
                __syncthreads();
                sort_block(t.sorted);
                if (warp == 0) {
                    draw_from_top_k(t.sorted, d, top.key, t, out_ids + r);
                }
            }
        } else {
            top_k_by_tournament<C>(rs, k, t, rank);
            if (rank == 0 && warp == 0) {
                __syncwarp();
                draw_from_top_k(t.warp_lists[0], d, top.key, t, out_ids + r);
            }
        }
        group_sync<C>();  // CTA 0 is done with the other CTAs' lists; its buffer is free again
    }
    group_sync<C>();  // no CTA leaves while another may still read its shared memory
}

// Both kernels over all rows, in clusters of C: each draws its own kind.
template <int C>
cudaError_t launch_kernels(float* logits, int64_t rows, int64_t vocab,
                           const draw::RowDraw* row_draws, const draw::PenaltyEntry* entries,
                           int32_t* out_ids, cudaStream_t stream) {
    const dim3 grid(C, static_cast<unsigned>(rows < 65535 ? rows : 65535));
    if (const cudaError_t e =
            launch_kernel_in_clusters(draw_scan_kernel<C>, grid, kThreads, 0, stream, C, logits,
                                      rows, vocab, row_draws, entries, out_ids);
        e != cudaSuccess) {
        return e;
    }
    return launch_kernel_in_clusters(draw_top_k_kernel<C>, grid, kThreads, 0, stream, C, logits,
                                     rows, vocab, row_draws, entries, out_ids);
}

}  // namespace

int draw_rows_cluster(int64_t rows) {
    if (!clusters_supported()) {
        return 1;
    }
    // HELEXA_DRAW_CLUSTER=1|2|4|8 (A/B measurements): one size for every batch.
    static const long forced = env_positive("HELEXA_DRAW_CLUSTER", 0);
    if (forced == 1 || forced == 2 || forced == 4 || forced == 8) {
        return static_cast<int>(forced);
    }
    // The largest cluster whose clusters all fit the card at once (H200: 15 of 8, 30 of 4, 66
    // of 2): a second wave costs a whole row's latency again, more than smaller clusters' longer
    // rows (draw_rows_bench, H200: a default row 27 / 43 / 74 us in clusters of 8 / 4 / 2; 16
    // rows 53 us in two waves of 8, 44 in one of 4; 64 rows 150 / 146 / 92 us). Queried once
    // per process (one device generation per process, as launch.cuh assumes).
    static const int resident8 = draw_rows_max_clusters(8);
    static const int resident4 = draw_rows_max_clusters(4);
    return rows <= resident8 ? 8 : rows <= resident4 ? 4 : 2;
}

cudaError_t launch_draw_rows(float* logits, int64_t rows, int64_t vocab, const void* draws,
                             int32_t* out_ids, int cluster, cudaStream_t stream) {
    if (rows < 0 || vocab <= 0 || vocab > draw::kMaxVocab ||
        (cluster != 1 && cluster != 2 && cluster != 4 && cluster != 8)) {
        return cudaErrorInvalidValue;
    }
    if (rows == 0) {
        return cudaSuccess;
    }
    if (logits == nullptr || draws == nullptr || out_ids == nullptr) {
        return cudaErrorInvalidValue;
    }
    const auto* row_draws = static_cast<const draw::RowDraw*>(draws);
    const auto* entries = reinterpret_cast<const draw::PenaltyEntry*>(row_draws + rows);
    cudaError_t e = cudaSuccess;
    switch (clusters_supported() ? cluster : 1) {
        case 8:
            e = launch_kernels<8>(logits, rows, vocab, row_draws, entries, out_ids, stream);
            break;
        case 4:
            e = launch_kernels<4>(logits, rows, vocab, row_draws, entries, out_ids, stream);
            break;
        case 2:
            e = launch_kernels<2>(logits, rows, vocab, row_draws, entries, out_ids, stream);
            break;
        default:
            e = launch_kernels<1>(logits, rows, vocab, row_draws, entries, out_ids, stream);
            break;
    }
    return e != cudaSuccess ? e : cudaGetLastError();
}

namespace {

// One thread a row: a fed row scans its few dozen entries once (its window's distinct ids and
// biased ids), far below the step's other launches.
__global__ void __launch_bounds__(128)
    feed_draws_kernel(draw::RowDraw* rows, int64_t n_rows, const int32_t* prev,
                      const int32_t* map) {
    // prev is the previous step's tokens and rows this step's draws, copied in just before:
    // both are earlier work on the stream (launch.cuh).
    grid_dependency_wait();
    allow_dependent_launch();
    auto* entries = reinterpret_cast<draw::PenaltyEntry*>(rows + n_rows);
    for (int64_t r = blockIdx.x * int64_t{128} + threadIdx.x; r < n_rows;
         r += int64_t{gridDim.x} * 128) {
        if (const int32_t from = map[r]; from >= 0) {
            draw::feed_in_flight(rows[r], entries, prev[from]);
        }
    }
}

}  // namespace

cudaError_t launch_feed_draws(void* draws, int64_t rows, const int32_t* prev, const int32_t* map,
                              cudaStream_t stream) {
    if (rows < 0) {
        return cudaErrorInvalidValue;
    }
    if (rows == 0) {
        return cudaSuccess;
    }
    if (draws == nullptr || prev == nullptr || map == nullptr) {
        return cudaErrorInvalidValue;
    }
    const auto blocks = static_cast<unsigned>(std::min<int64_t>((rows + 127) / 128, 64));
    return launch_kernel(feed_draws_kernel, dim3(blocks), dim3(128), 0, stream,
                         static_cast<draw::RowDraw*>(draws), rows, prev, map);
}

int draw_rows_max_clusters(int cluster) {
    if (cluster != 1 && !clusters_supported()) {
        return 0;
    }
    if (cluster == 1) {  // one CTA a row: resident CTAs per SM times SMs
        int device = 0;
        int sms = 0;
        int per_sm = 0;
        const bool known =
            cudaGetDevice(&device) == cudaSuccess &&
            cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) == cudaSuccess &&
            cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, draw_scan_kernel<1>, kThreads,
                                                          0) == cudaSuccess;
        return known ? sms * per_sm : 0;
    }
    cudaLaunchAttribute attr{};
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = static_cast<unsigned>(cluster);
    attr.val.clusterDim.y = 1;
    attr.val.clusterDim.z = 1;
    cudaLaunchConfig_t config{};
    config.gridDim = dim3(static_cast<unsigned>(cluster), 64);
    config.blockDim = kThreads;
    config.attrs = &attr;
    config.numAttrs = 1;
    int clusters = 0;
    const cudaError_t e =
        cluster == 8   ? cudaOccupancyMaxActiveClusters(&clusters, draw_scan_kernel<8>, &config)
        : cluster == 4 ? cudaOccupancyMaxActiveClusters(&clusters, draw_scan_kernel<4>, &config)
        : cluster == 2 ? cudaOccupancyMaxActiveClusters(&clusters, draw_scan_kernel<2>, &config)
                       : cudaErrorInvalidValue;
    return e == cudaSuccess ? clusters : 0;
}

}  // namespace helexa::kernels
