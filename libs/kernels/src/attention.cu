// launch_paged_attention: argument checks, the decode/prefill choice and the flash-decoding
// split plan (kernels in attention_decode.cu and attention_prefill.cu).
//
// Requirements beyond attention.h: head_dim in {16, 32, 64, 128, 256}; q, out and the pools
// 16-byte aligned with strides a multiple of 8 elements (16-byte vector loads); the workspace
// 8-byte aligned; max_context_len <= 2^30 and the other bounds below 2^31. block_size may be any
// positive value.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <limits>

#include "attention_common.cuh"
#include "helexa/kernels/attention.h"

namespace helexa::kernels {
namespace {

bool supported_head_dim(int64_t d) {
    return d == 16 || d == 32 || d == 64 || d == 128 || d == 256;
}

bool use_decode(int64_t max_query_len) { return max_query_len <= attn::kDecodeMaxQuery; }

// The decode grids the cluster merge and the fused epilogue are kept to: both were measured to
// pay only while no SM holds two of the grid's CTAs (numbers at their uses).
bool at_most_one_cta_per_sm(int64_t n_ctas) { return n_ctas <= device_sm_count(); }

// Splits merged through a thread-block cluster when they fit one and the grid is at most one CTA
// per SM (HELEXA_ATTN_CLUSTER_MERGE=0: always through the workspace, for A/B measurements).
// Measured on an H200: 1 sequence x 8 KV heads x 4 splits (32 CTAs) 7 -> 5 us, but 8 sequences
// (256 CTAs in clusters of 4, two per SM) 14 -> 22 us: clusters of CTAs that must share SMs
// wait for room together.
bool use_cluster_merge(int64_t n_splits, int64_t n_ctas) {
    static const bool enabled = env_on_unless_zero("HELEXA_ATTN_CLUSTER_MERGE");
    return enabled && n_splits > 1 && n_splits <= attn::kMaxClusterSplits &&
           at_most_one_cta_per_sm(n_ctas) && clusters_supported();
}

// The split plan of one decode launch: the split count for these sizes, then the keys per
// split rounded up to whole tiles, then the count that actually covers max_context_len.
// n_items > 0: the balanced work list instead (uneven contexts, plan_splits): the grid lists
// n_items (sequence, split) items over the whole batch, whose split length the kernel computes
// from the step's own contexts (balanced_item in attention_decode.cu); n_splits is then the most
// splits one sequence may take (the workspace's stride) and split_len the shortest split.
// Otherwise a launch whose splits hold 4+ tiles cuts them from the step's longest context the
// same way (step_split_len): split_len covers the graph's width bound, up to twice the longest.
struct SplitPlan {
    int64_t n_splits = 1;
    int64_t split_len = 0;
    int64_t n_items = 0;

    // The launch's CTAs: units_per_seq (KV heads x row groups) for each item, or for each
    // split of every sequence.
    int64_t ctas(int64_t n_seqs, int64_t units_per_seq) const {
        return units_per_seq * (n_items > 0 ? n_items : n_seqs * n_splits);
    }
};

// The most keys a split takes when fewer, longer splits are merged through a cluster instead of
// more merged through the workspace (plan_splits): 512, what runs 20 and 21 measured faster
// at 512-4096 keys; HELEXA_ATTN_CLUSTER_SPLIT_KEYS=n overrides it, 0 never (read once per
// process).
int64_t cluster_split_keys() {
    static const auto keys = [] {
        const char* v = std::getenv("HELEXA_ATTN_CLUSTER_SPLIT_KEYS");
        return v != nullptr ? std::max<int64_t>(std::atoll(v), 0) : int64_t{512};
    }();
    return keys;
}

// Uneven contexts (HELEXA_ATTN_BALANCE=0: every launch as if even, for A/B measurements).
bool balance_enabled() {
    static const bool enabled = env_on_unless_zero("HELEXA_ATTN_BALANCE");
    return enabled;
}

SplitPlan plan_splits(int64_t n_units, int64_t max_context_len, int64_t head_dim,
                      int64_t context_spread, int64_t n_seqs) {
    const int64_t tile = 16 * attn::decode_warps(head_dim);
    int64_t want = attn::decode_split_bound(n_units, max_context_len);
    // Where more splits than a cluster holds would each take a tile or two, a cluster's worth
    // of longer ones (at most cluster_split_keys() keys: 8 tiles, three in flight at a time)
    // merged in shared memory is faster than the workspace's store, count and reload, and
    // keeps one stream's grid small enough for the fused q/k/v epilogue (one CTA an SM). One
    // stream on an H200 (attention_kernel_bench scan1, fused, at most 8 splits against the
    // bound's, run 20): 640-1024 keys 11-12 -> 9 us, 2048 keys 17 (+ the epilogue's own
    // kernel) -> 13 us, 4096 19 (+ epilogue) -> 20 us, 8192 23 -> 36 us (so not there);
    // Qwen3-8B at 512-768 keys 227 -> 231 tok/s. Only fewer splits than the bound, so the
    // workspace bound still covers the plan.
    if (want > attn::kMaxClusterSplits &&
        attn::ceil_div(max_context_len, attn::kMaxClusterSplits) <= cluster_split_keys() &&
        use_cluster_merge(attn::kMaxClusterSplits, n_units * attn::kMaxClusterSplits)) {
        want = attn::kMaxClusterSplits;
    }
    SplitPlan plan;
    plan.split_len = attn::ceil_div(attn::ceil_div(max_context_len, want), tile) * tile;
    plan.n_splits = attn::ceil_div(max_context_len, plan.split_len);
    if (plan.n_splits < 1) {
        plan.n_splits = 1;
    }
    // Uneven contexts: the splits above have one length, set by the longest context, so where
    // the units alone fill a wave (32 streams x 8 KV heads) a long sequence's heads are each
    // walked by one CTA while the CTAs of the short ones finish and leave the card idle (one
    // 32k-token sequence among 31 of 2k: ~7x the balanced time on an H200, run 22). With the
    // spread known, a split holds about one wave slot's share of all the keys instead, so the
    // long sequence gets many splits and a short one keeps one.
    // The share is the step's own, computed in the kernel from its contexts (the bound here is
    // the graph's width bucket, a power of two up to twice the longest context, and the spread
    // is rounded down: a share planned from them was up to 4x too long, run 22), and the grid
    // lists (sequence, split) items over the batch rather than giving every sequence the
    // longest one's split count: a short sequence has no empty CTAs to launch and retire.
    // Items: sum(ctx) / share <= kDecodeWaveCtas / units_per_seq of full splits, plus at most
    // one partial split a sequence. At most the workspace bound's splits a sequence
    // (paged_attention_workspace_bytes).
    if (context_spread > 1 && balance_enabled() && n_seqs > 0) {
        const int64_t share = attn::ceil_div(max_context_len * n_units,
                                             context_spread * attn::kDecodeWaveCtas);
        const int64_t shortest = attn::ceil_div(attn::decode_min_split_keys(), tile) * tile;
        const int64_t len = std::max(attn::ceil_div(share, tile) * tile, shortest);
        if (len < plan.split_len) {
            const int64_t units_per_seq = attn::ceil_div(n_units, n_seqs);
            plan.n_splits = std::max(attn::decode_split_bound(n_seqs, max_context_len),
                                     attn::decode_balanced_split_cap(n_seqs, max_context_len));
            plan.split_len = shortest;
            plan.n_items =
                std::min(n_seqs * plan.n_splits,
                         attn::ceil_div(attn::kDecodeWaveCtas, units_per_seq) + n_seqs);
        }
    }
    return plan;
}

}  // namespace

bool attn::epilogue_fusable(const PagedAttentionArgs& a) {
    const FusedQkvEpilogue* e = a.epilogue;
    if (e == nullptr || a.max_query_len != 1 || a.layout.n_kv_heads <= 0 || a.n_heads <= 0 ||
        a.n_heads % a.layout.n_kv_heads != 0 || a.n_heads / a.layout.n_kv_heads > 16) {
        return false;
    }
    const int64_t hd = a.layout.head_dim;
    return supported_head_dim(hd) && aligned16(a.q) && a.q_stride % 8 == 0 &&
           a.q_stride >= (a.n_heads + 2 * a.layout.n_kv_heads) * hd &&
           (e->q_norm_weight == nullptr) == (e->k_norm_weight == nullptr) &&
           aligned16(e->q_norm_weight) && aligned16(e->k_norm_weight) && e->rotary_dim >= 0 &&
           e->rotary_dim % 2 == 0 && e->rotary_dim <= hd &&
           (e->rotary_dim == 0 || (e->positions != nullptr && e->inv_freq != nullptr)) &&
           e->slots != nullptr && e->k_pool != nullptr && e->k_pool == a.k_pool &&
           e->v_pool == a.v_pool;
}

void attn::fuse_epilogue(const FusedQkvEpilogue& e, AttnParams& p) {
    p.fused_epilogue = true;
    p.q_norm_weight = e.q_norm_weight;
    p.k_norm_weight = e.k_norm_weight;
    p.norm_eps = e.eps;
    p.positions = e.positions;
    p.inv_freq = e.inv_freq;
    p.rotary_half = static_cast<int32_t>(e.rotary_dim / 2);
    p.attention_scaling = e.attention_scaling;
    p.slots = e.slots;
    p.bad_slot = e.bad_slot;
    p.k_pool_out = e.k_pool;
    p.v_pool_out = e.v_pool;
}

bool attn::place_split_workspace(const PagedAttentionArgs& a, int64_t n_splits, AttnParams& p) {
    const size_t need = partial_bytes(a.n_seqs, a.max_query_len, a.n_heads, n_splits,
                                      a.layout.head_dim);
    if (a.workspace == nullptr || a.workspace_bytes < need ||
        (reinterpret_cast<uintptr_t>(a.workspace) & 7u) != 0) {
        return false;
    }
    const int64_t n_parts = a.n_seqs * a.max_query_len * a.n_heads * n_splits;
    p.ws_count = static_cast<int32_t*>(a.workspace);
    p.ws_ml = reinterpret_cast<float2*>(static_cast<std::byte*>(a.workspace) +
                                        counter_bytes(a.n_seqs, a.max_query_len, a.n_heads));
    p.ws_acc = reinterpret_cast<float*>(p.ws_ml + n_parts);
    return true;
}

bool paged_attention_fuses_epilogue(const PagedAttentionArgs& a) {
    if (!attn::epilogue_fusable(a)) {
        return false;
    }
    // Only while the decode grid is at most one CTA per SM. Measured on an H200 (Qwen3-8B
    // shapes): batch 1 (32 CTAs) 4672 -> 4535 us per step; 8 and 32 streams (256 CTAs) slower
    // fused than the epilogue kernel then the attention (5130 -> 5238, 5737 -> 5982 us).
    // HELEXA_ATTN_FUSE_ANY_GRID=1 lifts the bound (A/B measurements).
    static const bool any_grid = env_positive("HELEXA_ATTN_FUSE_ANY_GRID", 0) == 1;
    const int64_t units = a.n_seqs * a.layout.n_kv_heads;
    const SplitPlan plan = plan_splits(units, a.max_context_len, a.layout.head_dim,
                                       a.context_spread, a.n_seqs);
    return any_grid || at_most_one_cta_per_sm(plan.ctas(a.n_seqs, a.layout.n_kv_heads));
}

size_t paged_attention_workspace_bytes(int64_t n_seqs, int64_t max_query_len,
                                       int64_t max_context_len, int64_t n_heads,
                                       int64_t head_dim) {
    if (n_seqs <= 0 || max_query_len <= 0 || max_context_len <= 0 || n_heads <= 0 ||
        head_dim <= 0 || !use_decode(max_query_len)) {
        return 0;
    }
    // With one KV head and one row group per sequence (the fewest CTAs per split) the split
    // count is largest, so this bound covers every n_kv_heads the launch may have.
    // A batch of uneven contexts may take the balanced plan's splits instead (plan_splits).
    const int64_t bound =
        std::max(attn::decode_split_bound(n_seqs, max_context_len),
                 n_seqs > 1 ? attn::decode_balanced_split_cap(n_seqs, max_context_len) : 1);
    if (bound <= 1) {
        return 0;
    }
    return attn::partial_bytes(n_seqs, max_query_len, n_heads, bound, head_dim);
}

// Checks the arguments (attention.h's rules, with at least one query row) and fills the
// fields every kernel reads; the split plan and the epilogue are the caller's.
cudaError_t attn::common_params(const PagedAttentionArgs& a, AttnParams& p) {
    constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
    const PagedKvLayout& lay = a.layout;
    if (a.n_seqs <= 0 || a.max_query_len <= 0 || a.max_context_len <= 0 || a.n_heads <= 0) {
        return cudaErrorInvalidValue;
    }
    if (a.type != ElemType::kBF16 && a.type != ElemType::kF16) {
        return cudaErrorInvalidValue;
    }
    const int64_t hd = lay.head_dim;
    if (!supported_head_dim(hd) || lay.n_kv_heads <= 0 || a.n_heads <= 0 ||
        a.n_heads % lay.n_kv_heads != 0 || lay.block_size <= 0 || lay.n_blocks <= 0 ||
        a.max_blocks_per_seq <= 0) {
        return cudaErrorInvalidValue;
    }
    if (a.out == nullptr || a.q == nullptr || a.k_pool == nullptr || a.v_pool == nullptr ||
        a.query_start == nullptr || a.context_len == nullptr || a.block_tables == nullptr) {
        return cudaErrorInvalidValue;
    }
    const int64_t width = a.n_heads * hd;
    if (a.q_stride < width || a.out_stride < width || a.q_stride % 8 != 0 ||
        a.out_stride % 8 != 0 || !aligned16(a.q) || !aligned16(a.out) ||
        !aligned16(a.k_pool) || !aligned16(a.v_pool)) {
        return cudaErrorInvalidValue;
    }
    // Every key position the kernels may form must have a block-table column.
    if (attn::ceil_div(a.max_context_len, lay.block_size) > a.max_blocks_per_seq) {
        return cudaErrorInvalidValue;
    }
    // Grid y/z limits; int32 arithmetic in the kernels (split starts + lengths stay < 2^31).
    if (a.n_seqs > 65535 || a.n_heads > 65535 || a.max_query_len > kIntMax ||
        a.max_context_len > (int64_t{1} << 30) || lay.block_size > kIntMax ||
        lay.n_kv_heads > kIntMax || !std::isfinite(a.scale)) {
        return cudaErrorInvalidValue;
    }
    // One block of all KV heads is addressed with int32 element offsets (load_kv_tile).
    if (lay.n_kv_heads * lay.block_size * hd > kIntMax) {
        return cudaErrorInvalidValue;
    }

    p.out = a.out;
    p.out_stride = a.out_stride;
    p.q = a.q;
    p.q_stride = a.q_stride;
    p.k_pool = a.k_pool;
    p.v_pool = a.v_pool;
    p.n_blocks = lay.n_blocks;
    p.n_kv_heads = static_cast<int32_t>(lay.n_kv_heads);
    p.block_size = static_cast<int32_t>(lay.block_size);
    p.block_shift = (lay.block_size & (lay.block_size - 1)) == 0
                        ? static_cast<int32_t>(__builtin_ctzll(static_cast<uint64_t>(lay.block_size)))
                        : -1;
    p.query_start = a.query_start;
    p.context_len = a.context_len;
    p.block_tables = a.block_tables;
    p.max_blocks_per_seq = a.max_blocks_per_seq;
    p.n_seqs = static_cast<int32_t>(a.n_seqs);
    p.max_query_len = static_cast<int32_t>(a.max_query_len);
    p.max_context_len = static_cast<int32_t>(a.max_context_len);
    p.n_heads = static_cast<int32_t>(a.n_heads);
    p.group = static_cast<int32_t>(a.n_heads / lay.n_kv_heads);
    p.scale_log2 = a.scale * attn::kLog2e;
    static const bool early_kv = env_on_unless_zero("HELEXA_ATTN_EARLY_KV");
    p.early_kv = early_kv;
    return cudaSuccess;
}

cudaError_t launch_paged_attention(const PagedAttentionArgs& a, cudaStream_t stream) {
    if (a.n_seqs < 0 || a.max_query_len < 0 || a.max_context_len < 0 || a.n_heads < 0) {
        return cudaErrorInvalidValue;
    }
    if (a.n_seqs == 0 || a.max_query_len == 0 || a.max_context_len == 0) {
        return cudaSuccess;  // no query rows (every row has context_len >= its query count >= 1)
    }
    attn::AttnParams p;
    if (const cudaError_t err = attn::common_params(a, p); err != cudaSuccess) {
        return err;
    }
    const PagedKvLayout& lay = a.layout;
    const int64_t hd = lay.head_dim;
    const bool bf16 = a.type == ElemType::kBF16;

    if (!use_decode(a.max_query_len)) {
        if (a.epilogue != nullptr) {
            return cudaErrorInvalidValue;  // decode steps only (paged_attention_fuses_epilogue)
        }
        return attn::launch_attention_prefill(p, static_cast<int>(hd), bf16, stream);
    }
    const int64_t row_groups = attn::ceil_div(p.group * a.max_query_len, 16);
    if (lay.n_kv_heads * row_groups > 65535) {
        return cudaErrorInvalidValue;
    }
    const SplitPlan plan = plan_splits(a.n_seqs * lay.n_kv_heads * row_groups,
                                       a.max_context_len, hd, a.context_spread, a.n_seqs);
    p.n_row_groups = static_cast<int32_t>(row_groups);
    p.n_splits = static_cast<int32_t>(plan.n_splits);
    p.split_len = static_cast<int32_t>(plan.split_len);
    p.n_items = static_cast<int32_t>(plan.n_items);
    p.cluster_merge = plan.n_items == 0 &&
                      use_cluster_merge(plan.n_splits,
                                        plan.ctas(a.n_seqs, lay.n_kv_heads * row_groups));
    if (a.epilogue != nullptr) {
        if (!paged_attention_fuses_epilogue(a)) {
            return cudaErrorInvalidValue;
        }
        attn::fuse_epilogue(*a.epilogue, p);
    }
    if (plan.n_splits > 1 && !p.cluster_merge &&
        !attn::place_split_workspace(a, plan.n_splits, p)) {
        return cudaErrorInvalidValue;
    }
    return attn::launch_attention_decode(p, static_cast<int>(hd), bf16, stream);
}

}  // namespace helexa::kernels
