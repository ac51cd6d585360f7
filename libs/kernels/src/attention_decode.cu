// Decode attention over the paged KV cache: flash-decoding with GQA row packing, merged in-kernel.
//
// Grid (n_splits, n_kv_heads * n_row_groups, n_seqs), or with uneven contexts (n_kv_heads *
// n_row_groups, n_items) over a work list of (sequence, split) items (balanced_item). A CTA takes
// one KV head and 16 "rows":
// (query head of the group, query row) pairs, row index = query_row * group + head_in_group, so
// every query head that shares the KV head consumes each K/V tile the CTA reads (K/V bytes are
// read once per KV head, not once per query head). It walks the keys of one split of the
// context in tiles of 16 keys per warp; each warp keeps its own running (max, sum, O) over its
// keys of every tile, on tensor cores (S = Q.K^T as a 16 x 16 x head_dim product, O += P.V),
// and the warps are combined through shared memory at the end. Tiles arrive by 16-byte
// cp.async through the block table, DecodeCfg::kStages of them in flight.
//
// Lengths come from device memory (context_len, query_start), clamped to the host bounds the
// grid was sized with, so a CUDA graph captured at some max_context_len replays correctly for any
// shorter context: CTAs whose split starts past the context have nothing to do. With one split
// the CTA writes the output directly. Otherwise each split has a partial (max in the exp2 domain,
// sum, unnormalised O in f32), merged one of two ways:
// - up to kMaxClusterSplits splits: the splits of a (sequence, KV head) are one thread-block
//   cluster; each leaves its partial in its own shared memory and, after one cluster barrier,
//   every CTA finishes a share of the outputs reading its peers' partials through distributed
//   shared memory (merge_cluster). No global round trip, fence or counter: at batch 1 the
//   workspace merge's store, fence, atomic and reload chain was most of the kernel's time.
// - more splits (long contexts): the partials go to the workspace and the last split to finish
//   combines them (merge_splits; an arrival counter per row group, left at zero).
// Both sum the splits in the same order, so they give the same bits.
//
// With the q/k/v epilogue fused in (kFused: decode steps, one query row per sequence) the kernel
// also does qkv_epilogue.h's work for its KV head: each CTA normalises and rotates its group's q
// heads from the projection's qkv row straight into its Q tile, and the CTA whose split holds the
// new key (ctx - 1) does the same for that key, writes it and the value to the pools, and puts
// both into its last K/V tile itself (the tile loads skip that row). The arithmetic is
// qkv_head_ops.cuh's, so the result equals qkv_epilogue then this kernel bit for bit; it saves
// the epilogue's launch and its round trip through global memory on the step's critical path.
#include "attention_common.cuh"
#include "clusters.cuh"
#include "group_head_prep.cuh"

namespace helexa::kernels::attn {
namespace {

template <int HD, int kWarps, int kStagesIn>
struct DecodeCfg {
    static constexpr int kThreads = kWarps * 32;
    static constexpr int kBlockN = 16 * kWarps;  // keys per tile: 16 per warp
    static constexpr bool kQInRegs = HD <= 128;
    static constexpr int kStride = HD + 8;        // padded smem row (elements)
    static constexpr int kTileElems = kBlockN * kStride;
    static constexpr int kQElems = 16 * kStride;
    static constexpr int kOStride = HD + 8;       // f32 combine rows: 2 wavefronts per store
    // K/V tiles in flight (decode_stages()).
    static constexpr int kStages = kStagesIn;
    static_assert(kStages >= 2, "at least double buffering");
    // [K0][V0][K1][V1]...[Q]; the combine scratch (per warp: O rows, then max and sum) reuses
    // the tiles once the key loop is done.
    static constexpr int kSmemBytes = (2 * kStages * kTileElems + kQElems) * 2;
    static constexpr int kCombineBytes = kWarps * 16 * (kOStride + 2) * 4;
    static_assert(kCombineBytes <= 2 * kStages * kTileElems * 2,
                  "combine scratch must fit the tiles");
    // Cluster merge: this CTA's partial for its peers, after the combine scratch (Q is dead by
    // then): O [16][HD] f32, then (max, sum) per row.
    static constexpr int kPartialBytes = 16 * HD * 4 + 16 * 8;
    static_assert(kCombineBytes % 16 == 0 && kCombineBytes + kPartialBytes <= kSmemBytes,
                  "the cluster partial must fit the shared memory");
    static_assert(HD % 16 == 0 && HD <= 256, "head_dim must be a multiple of 16, <= 256");
};

// The output elements one thread of a decode CTA finishes: kPer consecutive columns of one of
// the CTA's 16 packed rows (16 * HD outputs over kThreads threads).
template <int HD, int kThreads>
struct RowSlice {
    static constexpr int kPer = 16 * HD / kThreads;
    static constexpr int kThreadsPerRow = HD / kPer;
    static_assert(kPer % 2 == 0 && kThreadsPerRow * 16 == kThreads, "whole rows per thread group");

    // o[e] += f * src[e]; src is 8-byte aligned (16-byte when kPer % 4 == 0).
    __device__ static __forceinline__ void accumulate(float (&o)[kPer], const float* src, float f) {
#pragma unroll
        for (int e = 0; e < kPer; e += 2) {
            const float2 v = *reinterpret_cast<const float2*>(src + e);
            o[e] += f * v.x;
            o[e + 1] += f * v.y;
        }
    }

    // The same from global memory written by other CTAs: through L2, not a stale L1 line.
    __device__ static __forceinline__ void accumulate_l2(float (&o)[kPer], const float* src,
                                                         float f) {
#pragma unroll
        for (int e = 0; e < kPer; e += 2) {
            const float2 v = __ldcg(reinterpret_cast<const float2*>(src + e));
            o[e] += f * v.x;
            o[e + 1] += f * v.y;
        }
    }

    // dst[e] = o[e] / l (0 when l is 0: no key reached the row).
    template <typename T>
    __device__ static __forceinline__ void store(T* dst, const float (&o)[kPer], float l) {
#pragma unroll
        for (int e = 0; e < kPer; e += 2) {
            *reinterpret_cast<uint32_t*>(dst + e) =
                l > 0.0f ? pack2<T>(o[e] / l, o[e + 1] / l) : pack2<T>(0.0f, 0.0f);
        }
    }

    __device__ static __forceinline__ void store_f32(float* dst, const float (&o)[kPer]) {
#pragma unroll
        for (int e = 0; e < kPer; e += 2) {
            *reinterpret_cast<float2*>(dst + e) = make_float2(o[e], o[e + 1]);
        }
    }
};

// Output rows of one CTA from the n_used splits' partials: out row (s, qi), head h = sum over
// splits of w_i * O_i / sum of w_i * l_i, w_i = 2^(m_i - M). Every split < n_used wrote its
// partial; one whose keys all lie past a row's position holds (-inf, 0, zeros) for that row and
// gets weight 0 (split 0 always holds key 0, so M is finite). Branch-free, so the loads of
// several splits are in flight together.
template <typename T, int HD, int kThreads, typename RowInfo>
__device__ __forceinline__ void merge_splits(const AttnParams& p, int s, int q_begin, int n_used,
                                             const RowInfo& row_info, int tid) {
    using Out = RowSlice<HD, kThreads>;
    const int d0 = (tid % Out::kThreadsPerRow) * Out::kPer;
    int qi, h;
    if (!row_info(tid / Out::kThreadsPerRow, qi, h)) {
        return;
    }
    const int64_t part0 =
        ((static_cast<int64_t>(s) * p.max_query_len + qi) * p.n_heads + h) * p.n_splits;
    float m = -INFINITY;
#pragma unroll 4
    for (int j = 0; j < n_used; ++j) {
        m = fmaxf(m, __ldcg(p.ws_ml + part0 + j).x);
    }
    const float m_use = m == -INFINITY ? 0.0f : m;
    float l = 0.0f;
    float o[Out::kPer];
#pragma unroll
    for (int e = 0; e < Out::kPer; ++e) {
        o[e] = 0.0f;
    }
#pragma unroll 4
    for (int j = 0; j < n_used; ++j) {
        const float2 ml = __ldcg(p.ws_ml + part0 + j);
        const float f = fast_exp2(ml.x - m_use);
        l += f * ml.y;
        Out::accumulate_l2(o, p.ws_acc + (part0 + j) * HD + d0, f);
    }
    T* out = static_cast<T*>(p.out) + static_cast<int64_t>(q_begin + qi) * p.out_stride +
             static_cast<int64_t>(h) * HD + d0;
    Out::store(out, o, l);
}

// The cluster's outputs from the n_used splits' partials in the peers' shared memory
// (part_o [16][HD] f32 and part_ml [16] (max, sum), at the same offsets in every CTA): the
// arithmetic and summation order of merge_splits, so both merges give the same bits. CTA `rank`
// of the cluster finishes every n_splits-th group of 4 outputs; the peers' loads of one group
// are independent (one distributed-shared-memory round trip, not one per peer).
template <typename T, int HD, int kThreads, typename RowInfo>
__device__ __forceinline__ void merge_cluster(const AttnParams& p, int q_begin, int n_used,
                                              int rank, const RowInfo& row_info,
                                              const float* part_o, const float2* part_ml,
                                              int tid) {
    constexpr int kQuads = HD / 4;
    for (int i = rank * kThreads + tid; i < 16 * kQuads; i += p.n_splits * kThreads) {
        const int r = i / kQuads;
        const int d0 = (i % kQuads) * 4;
        int qi, h;
        if (!row_info(r, qi, h)) {
            continue;
        }
        float2 ml[kMaxClusterSplits];
        float4 po[kMaxClusterSplits];
#pragma unroll
        for (int j = 0; j < kMaxClusterSplits; ++j) {
            if (j < n_used) {
                ml[j] = *cluster_peer(part_ml + r, j);
                po[j] = *reinterpret_cast<const float4*>(cluster_peer(part_o + r * HD + d0, j));
            }
        }
        float m = -INFINITY;
#pragma unroll
        for (int j = 0; j < kMaxClusterSplits; ++j) {
            if (j < n_used) {
                m = fmaxf(m, ml[j].x);
            }
        }
        const float m_use = m == -INFINITY ? 0.0f : m;
        float l = 0.0f;
        float o[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int j = 0; j < kMaxClusterSplits; ++j) {
            if (j < n_used) {
                const float f = fast_exp2(ml[j].x - m_use);
                l += f * ml[j].y;
                o[0] += f * po[j].x;
                o[1] += f * po[j].y;
                o[2] += f * po[j].z;
                o[3] += f * po[j].w;
            }
        }
        T* out = static_cast<T*>(p.out) + static_cast<int64_t>(q_begin + qi) * p.out_stride +
                 static_cast<int64_t>(h) * HD + d0;
        // As RowSlice::store: o / l, zeros when no key reached the row.
#pragma unroll
        for (int e = 0; e < 4; e += 2) {
            *reinterpret_cast<uint32_t*>(out + e) =
                l > 0.0f ? pack2<T>(o[e] / l, o[e + 1] / l) : pack2<T>(0.0f, 0.0f);
        }
    }
}

// How a decode grid's CTAs find their keys:
// - kPlanned: (split, unit, sequence), splits of the host's p.split_len keys;
// - kStepSplits: the same grid, splits of the step's own length (step_split_len);
// - kItems: (unit, item) over the balanced work list (AttnParams::n_items, balanced_item).
// A grid of one split a sequence, or of short splits, keeps kPlanned (launch_decode_cfg): one
// kernel for all three ran 32 streams 1.5-4% slower (run 23).
enum class DecodeGrid { kPlanned, kStepSplits, kItems };

// The split length of this step's contexts: the grid's p.n_splits over the longest, in whole
// tiles. The host planned p.split_len over the graph's width bound, a power of two up to twice
// the longest context, so a 33k-token context in a 64k bucket used 17 of 32 splits, each twice
// as long, while half the grid had nothing to do (run 23). Never above p.split_len (n_splits x
// split_len covers the bound), so no sequence uses more than n_splits splits. Every warp
// computes it from the step's context lengths (metadata, readable before the grid-dependency
// wait).
template <int kBlockN>
__device__ __forceinline__ int step_split_len(const AttnParams& p) {
    int longest = 0;
    for (int i = static_cast<int>(threadIdx.x % 32); i < p.n_seqs; i += 32) {
        longest = max(longest, min(max(p.context_len[i], 0), p.max_context_len));
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        longest = max(longest, __shfl_xor_sync(0xffffffffu, longest, off));
    }
    const int len = (longest + p.n_splits - 1) / p.n_splits;
    return max(kBlockN, (len + kBlockN - 1) / kBlockN * kBlockN);
}

// One item of the balanced work list (AttnParams::n_items): sequence s's split `split` of
// split_len keys.
struct DecodeItem {
    int s = 0;
    int split = 0;
    int split_len = 0;
};

// Item b of the balanced work list, from the step's context lengths (metadata: readable
// before the grid-dependency wait). Every warp computes it, so the CTA needs no barrier.
// - The split length is one wave slot's share of the step's keys: every context x
//   units_per_seq CTAs, over kDecodeWaveCtas, in whole tiles, at least p.split_len, and long
//   enough that no sequence takes more than p.n_splits splits.
// - Sequence i has max(1, ceil(ctx_i / split_len)) items. The sequences split more than once
//   come first, so the longest CTAs start first and the one-split sequences fill in around
//   them (a CTA streams at a fixed rate, ~17 GB/s on an H200: a long split dispatched last
//   would end the launch alone, run 23).
// False when b is past the last item.
template <int kBlockN>
__device__ __forceinline__ bool balanced_item(const AttnParams& p, int b, int units_per_seq,
                                              DecodeItem& it) {
    constexpr unsigned kAll = 0xffffffffu;
    const int lane = static_cast<int>(threadIdx.x % 32);
    auto ctx_of = [&p](int i) { return min(max(p.context_len[i], 0), p.max_context_len); };
    long long sum = 0;
    int longest = 0;
    for (int i = lane; i < p.n_seqs; i += 32) {
        const int c = ctx_of(i);
        sum += c;
        longest = max(longest, c);
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        sum += __shfl_xor_sync(kAll, sum, off);
        longest = max(longest, __shfl_xor_sync(kAll, longest, off));
    }
    const long long share = (sum * units_per_seq + kDecodeWaveCtas - 1) / kDecodeWaveCtas;
    const long long by_cap = (longest + p.n_splits - 1) / p.n_splits;
    long long len = max(share, by_cap);
    len = max(static_cast<long long>(p.split_len), (len + kBlockN - 1) / kBlockN * kBlockN);
    const int split_len = static_cast<int>(len);  // <= max_context_len + a tile: below 2^31
    auto items_of = [&](int i) {
        return i < p.n_seqs ? max(1, (ctx_of(i) + split_len - 1) / split_len) : 0;
    };
    int multi = 0;  // items of the sequences split more than once
    for (int c0 = 0; c0 < p.n_seqs; c0 += 32) {
        const int n = items_of(c0 + lane);
        multi += n > 1 ? n : 0;
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        multi += __shfl_xor_sync(kAll, multi, off);
    }
    const bool want_multi = b < multi;
    const int target = want_multi ? b : b - multi;  // index within its class
    int base = 0;
    for (int c0 = 0; c0 < p.n_seqs; c0 += 32) {
        const int n = items_of(c0 + lane);
        const int m = (n > 1) == want_multi ? n : 0;  // this class's items of the sequence
        int incl = m;  // inclusive prefix over this chunk's sequences
#pragma unroll
        for (int off = 1; off < 32; off <<= 1) {
            const int v = __shfl_up_sync(kAll, incl, off);
            incl += lane >= off ? v : 0;
        }
        const unsigned hit =
            __ballot_sync(kAll, m > 0 && target >= base + incl - m && target < base + incl);
        if (hit != 0) {
            const int l = __ffs(static_cast<int>(hit)) - 1;
            it.s = c0 + l;
            it.split = target - base - __shfl_sync(kAll, incl - m, l);
            it.split_len = split_len;
            return true;
        }
        base += __shfl_sync(kAll, incl, 31);
    }
    return false;
}

template <typename T, int HD, int kWarps, int kStages, bool kFused, DecodeGrid kGrid>
__global__ void __launch_bounds__(kWarps * 32)
    attention_decode_kernel(const AttnParams p) {
    constexpr bool kItems = kGrid == DecodeGrid::kItems;
    static_assert(!(kFused && kItems), "the work list's grids are never fused");
    // Before grid_dependency_wait() (launch.cuh) this kernel reads only what no kernel of the
    // running step writes: the step's metadata (query_start, context_len, block tables,
    // positions, slots: copied in before the step's first kernel), weights (the q/k norm
    // weights, inv_freq) and, with p.early_kv, the K/V of keys older than the step's query rows
    // (written by earlier steps; blocks a sequence reads are never rewritten while it holds
    // them). Every exit path passes the wait first, except a split past its sequence's keys
    // outside a cluster (below). With p.cluster_merge every CTA of a cluster that has a merge to
    // do reaches both cluster barriers (no early return past the first check, which is uniform
    // across the cluster).
    using Cfg = DecodeCfg<HD, kWarps, kStages>;
    constexpr int kBlockN = Cfg::kBlockN;
    constexpr int kStride = Cfg::kStride;
    constexpr int kThreads = Cfg::kThreads;
    constexpr int kChunks = HD / 8;

    // The work list's grid is (units, items): an item's CTAs are dispatched together.
    const unsigned unit = kItems ? blockIdx.x : blockIdx.y;
    const int kvh = unit / p.n_row_groups;
    const int row0 = (unit % p.n_row_groups) * 16;  // first packed row of this CTA
    DecodeItem item;
    if constexpr (kItems) {
        if (!balanced_item<kBlockN>(p, static_cast<int>(blockIdx.y),
                                    p.n_kv_heads * p.n_row_groups, item)) {
            // Past the step's items: nothing to do and nothing anyone reads (the split 0 of
            // every sequence is an item and waits, so the grid still ends after its
            // predecessor).
            return;
        }
    }
    const int s = kItems ? item.s : blockIdx.z;
    const int split = kItems ? item.split : blockIdx.x;
    const int q_begin = p.query_start[s];
    const int nq = min(max(p.query_start[s + 1] - q_begin, 0), p.max_query_len);
    const int n_rows = p.group * nq;  // valid packed rows of this sequence
    if (row0 >= n_rows) {
        grid_dependency_wait();
        allow_dependent_launch();
        return;  // no query row here (the whole cluster: it shares s and the row group)
    }
    const int ctx = min(max(p.context_len[s], 0), p.max_context_len);
    // After the row check, so the step's context lengths load beside this sequence's (one
    // round trip before the first tile's addresses, as without it).
    const int split_len = kItems                            ? item.split_len
                          : kGrid == DecodeGrid::kStepSplits ? step_split_len<kBlockN>(p)
                                                             : p.split_len;
    const int first_pos = ctx - nq;
    // Splits that start inside this sequence's context; the rest (the graph was captured for a
    // longer bound) have nothing to do, and the merge reads only the first n_used partials.
    const int n_used = min(p.n_splits, (ctx + split_len - 1) / split_len);
    const int k_begin = split * split_len;
    // The last query row sees keys [0, ctx); earlier rows are masked per key below.
    const int k_end = min(k_begin + split_len, ctx);

    const int tid = threadIdx.x;
    const int warp = tid / 32;
    const int lane = tid % 32;
    const int g = lane / 4;
    const int tq = lane % 4;
    // One split with keys: this CTA writes the output itself (uniform across a cluster).
    const bool direct = n_used <= 1;
    const bool cluster_merge = p.cluster_merge && !direct;

    // Where packed row r (0..15) of this CTA goes; rows past the sequence's rows are invalid.
    auto row_info = [&](int r, int& qi, int& h) {
        const int idx = row0 + r;
        qi = idx / p.group;
        h = kvh * p.group + idx % p.group;
        return idx < n_rows;
    };

    extern __shared__ uint4 smem_raw[];
    // The cluster partial (DecodeCfg::kPartialBytes), read by the peers in merge_cluster.
    float* part_o = reinterpret_cast<float*>(reinterpret_cast<unsigned char*>(smem_raw) +
                                             Cfg::kCombineBytes);
    auto* part_ml = reinterpret_cast<float2*>(part_o + 16 * HD);

    if (split >= n_used) {
        if (split > 0 && !cluster_merge) {
            // Nothing to do and nothing anyone reads: leave at once rather than hold a slot
            // through the wait (a balanced plan gives a short sequence's heads one split of
            // many: plan_splits). Split 0 of the same rows always waits, so this grid still
            // cannot complete before its predecessor has.
            return;
        }
        grid_dependency_wait();
        allow_dependent_launch();
        // Only an empty context (bad metadata) leaves split 0 without keys: it writes zeros.
        if (split == 0) {
            for (int i = tid; i < 16 * HD; i += kThreads) {
                int qi, h;
                if (row_info(i / HD, qi, h)) {
                    T* o = static_cast<T*>(p.out) +
                           static_cast<int64_t>(q_begin + qi) * p.out_stride;
                    o[static_cast<int64_t>(h) * HD + i % HD] = from_f32<T>(0.0f);
                }
            }
        }
        if (cluster_merge) {
            // Nothing of this CTA is read (the merge reads the first n_used peers), but it
            // shares the merge's work and its barriers.
            cluster_sync();
            merge_cluster<T, HD, kThreads>(p, q_begin, n_used, split, row_info, part_o, part_ml,
                                           tid);
            cluster_sync();
        }
        return;
    }
    const int n_tiles = (k_end - k_begin + kBlockN - 1) / kBlockN;

    T* smem = reinterpret_cast<T*>(smem_raw);
    auto sk = [smem](int b) { return smem + 2 * b * Cfg::kTileElems; };
    auto sv = [smem](int b) { return smem + (2 * b + 1) * Cfg::kTileElems; };
    T* sq = smem + 2 * Cfg::kStages * Cfg::kTileElems;

    const T* q = static_cast<const T*>(p.q);
    const T* k_pool = static_cast<const T*>(p.k_pool);
    const T* v_pool = static_cast<const T*>(p.v_pool);
    const int32_t* table = p.block_tables + static_cast<int64_t>(s) * p.max_blocks_per_seq;

    // Fused epilogue: this CTA computes the step's new key (ctx - 1) itself when its split holds
    // it; the tile loads skip that row and put_new_row() fills it.
    const int new_key = kFused && split == n_used - 1 ? ctx - 1 : -1;
    const int new_tile = new_key >= 0 ? (new_key - k_begin) / kBlockN : -1;
    // Fused-epilogue shared state: the position's cos/sin, and the new key and value rows.
    __shared__ __align__(16) float rot_cs[kFused ? HD : 4];
    __shared__ __align__(16) T new_kv[kFused ? 2 * HD : 8];

    // The prologue's loads, one cp.async group per tile (committed even when empty, so that
    // "tile t landed" is always "at most kStages - 1 newer groups pending"):
    // - load 0: the first tile's keys older than the step's rows, which head for shared memory
    //   while the previous kernel (the q/k epilogue or, fused, the qkv projection) finishes;
    // - load 1, after the wait: the rest of the first tile, with Q in the same group;
    // - loads 2..kStages-1: the next tiles.
    // One loop, not unrolled, so the per-row loader's code is here once rather than three times:
    // this kernel's code comes into an instruction cache gone cold under the step's GEMMs, and
    // code it never ran cost the model's 32-stream attention 2-3 us a layer (run 24).
    const int early_end = p.early_kv ? first_pos : k_begin;
    using HeadPack = Pack<T, 8>;
    HeadPack qw[1];
    HeadPack kw[1];
    const int gl = lane % attn::GroupHeadLanes<HD>::kGroupLanes;  // this lane's pack of a head
#pragma unroll 1
    for (int load = 0; load < Cfg::kStages; ++load) {
        const int tile = load < 2 ? 0 : load - 1;
        if (tile < n_tiles) {
            load_kv_tile<T, HD, kBlockN, kThreads>(sk(tile), sv(tile), k_pool, v_pool, table, p,
                                                   kvh, k_begin + tile * kBlockN, k_end, tid,
                                                   load == 1 ? early_end : INT_MIN,
                                                   load == 0 ? early_end : INT_MAX, new_key);
        }
        if (load > 0) {
            cp_async_commit();
            continue;
        }
        // Load 0 is out: what comes before the wait, the wait, and Q for load 1's group.
        // Fused: the norm weights and the position's table do not depend on the running step.
        if constexpr (kFused) {
            // (The table first: sincosf's slow path is a call, and nothing should be live
            // across it.)
            if (p.rotary_half > 0) {
                qkv_head::rotary_table<T>(rot_cs, p.positions[q_begin], p.inv_freq,
                                          p.rotary_half, p.attention_scaling, tid, kThreads);
            }
            if (p.q_norm_weight != nullptr) {
                qw[0] = load_pack<T, 8>(static_cast<const T*>(p.q_norm_weight) + gl * 8);
                kw[0] = load_pack<T, 8>(static_cast<const T*>(p.k_norm_weight) + gl * 8);
            }
        }
        grid_dependency_wait();
        allow_dependent_launch();
        if constexpr (!kFused) {
            // The 16 packed Q rows; invalid rows are zero-filled (finite scores, never written).
            for (int i = tid; i < 16 * kChunks; i += kThreads) {
                const int r = i / kChunks;
                const int c = i % kChunks;
                int qi, h;
                const bool valid = row_info(r, qi, h);
                const T* src = valid ? q + static_cast<int64_t>(q_begin + qi) * p.q_stride +
                                           static_cast<int64_t>(h) * HD + c * 8
                                     : q;
                cp_async16(sq + r * kStride + c * 8, src, valid);
            }
        }
    }

    // The new key's row of its tile, from new_kv (the tile's stage is this tile's from its load
    // until the barrier closing its iteration; new_kv is final before the first such load).
    auto put_new_row = [&](int stage) {
        const int r = new_key - (k_begin + new_tile * kBlockN);
        for (int i = tid; i < 2 * kChunks; i += kThreads) {
            T* dst = (i < kChunks ? sk(stage) : sv(stage)) + r * kStride + (i % kChunks) * 8;
            *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(new_kv + i * 8);
        }
    };
    if constexpr (kFused) {
        // qkv_epilogue.h's work for this CTA (group_head_prep.cuh), while the tiles above are in
        // flight: its group's q heads normalised and rotated into the Q tile (rows past the
        // group zeroed) and, when it holds the new key, that key and its value into new_kv and
        // the pools.
        attn::prepare_group_heads<T, HD, kWarps>(
            p, q_begin, kvh, new_key >= 0, sq, kStride, new_kv, qw[0], kw[0], rot_cs, warp, lane,
            [] { __syncthreads(); });
        for (int i = p.group * kChunks + tid; i < 16 * kChunks; i += kThreads) {
            *reinterpret_cast<uint4*>(sq + (i / kChunks) * kStride + (i % kChunks) * 8) =
                make_uint4(0u, 0u, 0u, 0u);
        }
        __syncthreads();  // Q and new_kv are final
        if (new_tile >= 0 && new_tile < Cfg::kStages - 1) {
            put_new_row(new_tile);  // already loading; later tiles get the row when issued
        }
    }

    const int a_row = lane % 16, a_col = (lane / 16) * 8;
    const int k_row = warp * 16 + (lane % 8) + 8 * (lane / 16), k_col = 8 * ((lane / 8) % 2);
    const int v_row = warp * 16 + (lane % 8) + 8 * ((lane / 8) % 2), v_col = 8 * (lane / 16);

    // Positions of this lane's rows g and g + 8 (invalid rows see every key: harmless).
    int pos[2];
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
        int qi, h;
        pos[hf] = row_info(g + 8 * hf, qi, h) ? first_pos + qi : 0x7fffffff;
    }

    uint32_t qf[Cfg::kQInRegs ? HD / 16 : 1][4];
    float acc_o[HD / 8][4];
#pragma unroll
    for (int i = 0; i < HD / 8; ++i) {
        acc_o[i][0] = acc_o[i][1] = acc_o[i][2] = acc_o[i][3] = 0.0f;
    }
    float row_max[2] = {-INFINITY, -INFINITY};
    float row_sum[2] = {0.0f, 0.0f};

    for (int t = 0; t < n_tiles; ++t) {
        const int stage = t % Cfg::kStages;
        const int k0 = k_begin + t * kBlockN;
        // Tile t + kStages - 1 refills the stage tile t - 1 used (everyone left it at the
        // barrier closing the previous iteration).
        if (const int ahead = t + Cfg::kStages - 1; ahead < n_tiles) {
            const int st = ahead % Cfg::kStages;
            load_kv_tile<T, HD, kBlockN, kThreads, true>(sk(st), sv(st), k_pool, v_pool, table,
                                                         p, kvh, k_begin + ahead * kBlockN, k_end,
                                                         tid, INT_MIN, INT_MAX, new_key);
            if (kFused && ahead == new_tile) {
                put_new_row(st);
            }
        }
        cp_async_commit();
        cp_async_wait<Cfg::kStages - 1>();
        __syncthreads();
        if constexpr (Cfg::kQInRegs) {
            if (t == 0) {
#pragma unroll
                for (int kk = 0; kk < HD / 16; ++kk) {
                    ldsm_x4(qf[kk], sq + a_row * kStride + kk * 16 + a_col);
                }
            }
        }

        const int wk0 = k0 + warp * 16;  // this warp's 16 keys of the tile
        if (wk0 < k_end) {
            const T* tk = sk(stage);
            const T* tv = sv(stage);
            float sc[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
#pragma unroll
            for (int kk = 0; kk < HD / 16; ++kk) {
                uint32_t a[4];
                if constexpr (Cfg::kQInRegs) {
                    a[0] = qf[kk][0];
                    a[1] = qf[kk][1];
                    a[2] = qf[kk][2];
                    a[3] = qf[kk][3];
                } else {
                    ldsm_x4(a, sq + a_row * kStride + kk * 16 + a_col);
                }
                uint32_t b[4];
                ldsm_x4(b, tk + k_row * kStride + kk * 16 + k_col);
                mma_16816<T>(sc[0], a, b[0], b[1]);
                mma_16816<T>(sc[1], a, b[2], b[3]);
            }
            // Keys up to first_pos are visible to every row of the CTA: only a tile that crosses
            // k_end or the step's own rows needs the per-key mask (warp-uniform test).
            if (wk0 + 16 <= k_end && wk0 + 15 <= first_pos) {
#pragma unroll
                for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        sc[nt][e] *= p.scale_log2;
                    }
                }
            } else {
#pragma unroll
                for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int key = wk0 + nt * 8 + 2 * tq + (e & 1);
                        const float v = sc[nt][e] * p.scale_log2;
                        sc[nt][e] = (key >= k_end || key > pos[e >> 1]) ? -INFINITY : v;
                    }
                }
            }
#pragma unroll
            for (int hf = 0; hf < 2; ++hf) {
                float mx = fmaxf(fmaxf(sc[0][2 * hf], sc[0][2 * hf + 1]),
                                 fmaxf(sc[1][2 * hf], sc[1][2 * hf + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                const float m_new = fmaxf(row_max[hf], mx);
                const float m_use = m_new == -INFINITY ? 0.0f : m_new;
                const float alpha = fast_exp2(row_max[hf] - m_use);
                row_max[hf] = m_new;
                float sum = 0.0f;
#pragma unroll
                for (int nt = 0; nt < 2; ++nt) {
                    sc[nt][2 * hf] = fast_exp2(sc[nt][2 * hf] - m_use);
                    sc[nt][2 * hf + 1] = fast_exp2(sc[nt][2 * hf + 1] - m_use);
                    sum += sc[nt][2 * hf] + sc[nt][2 * hf + 1];
                }
                row_sum[hf] = row_sum[hf] * alpha + sum;
#pragma unroll
                for (int nt = 0; nt < HD / 8; ++nt) {
                    acc_o[nt][2 * hf] *= alpha;
                    acc_o[nt][2 * hf + 1] *= alpha;
                }
            }
            uint32_t a[4];
            a[0] = pack2<T>(sc[0][0], sc[0][1]);
            a[1] = pack2<T>(sc[0][2], sc[0][3]);
            a[2] = pack2<T>(sc[1][0], sc[1][1]);
            a[3] = pack2<T>(sc[1][2], sc[1][3]);
#pragma unroll
            for (int j = 0; j < HD / 16; ++j) {
                uint32_t b[4];
                ldsm_x4_trans(b, tv + v_row * kStride + j * 16 + v_col);
                mma_16816<T>(acc_o[2 * j], a, b[0], b[1]);
                mma_16816<T>(acc_o[2 * j + 1], a, b[2], b[3]);
            }
        }
        __syncthreads();  // this stage is refilled by the next iteration's load
    }

    // Combine the warps: each publishes (max, sum, O) for its 16 rows, then all threads merge.
    float* so = reinterpret_cast<float*>(smem_raw);            // [kWarps][16][kOStride]
    float* sm = so + kWarps * 16 * Cfg::kOStride;               // [kWarps][16] max
    float* sl = sm + kWarps * 16;                               // [kWarps][16] sum
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
        float l = row_sum[hf];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        const int r = g + 8 * hf;
        float* orow = so + (warp * 16 + r) * Cfg::kOStride;
#pragma unroll
        for (int nt = 0; nt < HD / 8; ++nt) {
            *reinterpret_cast<float2*>(orow + nt * 8 + 2 * tq) =
                make_float2(acc_o[nt][2 * hf], acc_o[nt][2 * hf + 1]);
        }
        if (tq == 0) {
            sm[warp * 16 + r] = row_max[hf];
            sl[warp * 16 + r] = l;
        }
    }
    __syncthreads();

    // Each thread finishes kPer consecutive outputs of one row: its loads (every warp's max, sum
    // and O slice) are independent, so the combine costs one shared-memory round trip rather
    // than one per output element (this tail dominated short-context decode).
    using Out = RowSlice<HD, kThreads>;
    const int r = tid / Out::kThreadsPerRow;
    const int d0 = (tid % Out::kThreadsPerRow) * Out::kPer;
    int qi, h;
    const bool row_valid = row_info(r, qi, h);
    float m = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
        m = fmaxf(m, sm[w * 16 + r]);
    }
    const float m_use = m == -INFINITY ? 0.0f : m;
    float l = 0.0f;
    float o[Out::kPer];
#pragma unroll
    for (int e = 0; e < Out::kPer; ++e) {
        o[e] = 0.0f;
    }
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
        const float f = fast_exp2(sm[w * 16 + r] - m_use);
        l += f * sl[w * 16 + r];
        Out::accumulate(o, so + (w * 16 + r) * Cfg::kOStride + d0, f);
    }
    if (direct) {
        if (row_valid) {
            T* out = static_cast<T*>(p.out) + static_cast<int64_t>(q_begin + qi) * p.out_stride +
                     static_cast<int64_t>(h) * HD + d0;
            Out::store(out, o, l);
        }
        return;
    }
    if (cluster_merge) {
        // Publish this split's partial in its own shared memory (outside the combine scratch,
        // which other threads may still be reading), then merge with the peers.
        Out::store_f32(part_o + r * HD + d0, o);
        if (d0 == 0) {
            part_ml[r] = make_float2(m, l);
        }
        cluster_sync();  // every partial of the cluster is written and visible
        merge_cluster<T, HD, kThreads>(p, q_begin, n_used, split, row_info, part_o, part_ml, tid);
        cluster_sync();  // the peers are done reading this CTA's shared memory
        return;
    }
    if (row_valid) {
        const int64_t part =
            ((static_cast<int64_t>(s) * p.max_query_len + qi) * p.n_heads + h) * p.n_splits + split;
        Out::store_f32(p.ws_acc + part * HD + d0, o);
        if (d0 == 0) {
            p.ws_ml[part] = make_float2(m, l);
        }
    }

    // The last of the n_used splits of this (sequence, KV head, row group) to arrive merges all
    // of them (the threadfence-reduction pattern: publish, fence, count; the last arrival
    // fences again and reads the partials through L2). It puts the counter back to zero for the
    // next launch; every other split has already counted.
    __shared__ bool merge_here;
    __threadfence();
    __syncthreads();
    if (tid == 0) {
        int32_t* counter =
            p.ws_count + (static_cast<int64_t>(s) * p.n_kv_heads + kvh) * p.n_row_groups +
            row0 / 16;
        merge_here = atomicAdd(counter, 1) == n_used - 1;
        if (merge_here) {
            atomicExch(counter, 0);
        }
    }
    __syncthreads();
    if (!merge_here) {
        return;
    }
    __threadfence();
    merge_splits<T, HD, kThreads>(p, s, q_begin, n_used, row_info, tid);
}

template <typename T, int HD, int kWarps, int kStages, bool kFused, DecodeGrid kGrid>
cudaError_t launch_decode_typed(const AttnParams& p, cudaStream_t stream) {
    using Cfg = DecodeCfg<HD, kWarps, kStages>;
    const size_t smem = Cfg::kSmemBytes;
    auto kernel = attention_decode_kernel<T, HD, kWarps, kStages, kFused, kGrid>;
    static std::atomic<uint64_t> smem_raised{0};
    const cudaError_t smem_err = ensure_dynamic_smem(kernel, smem, smem_raised);
    if (smem_err != cudaSuccess) {
        return smem_err;
    }
    const auto units = static_cast<unsigned>(p.n_kv_heads * p.n_row_groups);
    const dim3 grid = kGrid == DecodeGrid::kItems
                          ? dim3(units, static_cast<unsigned>(p.n_items), 1)
                          : dim3(static_cast<unsigned>(p.n_splits), units,
                                 static_cast<unsigned>(p.n_seqs));
    const unsigned cluster = p.cluster_merge ? static_cast<unsigned>(p.n_splits) : 1u;
    return launch_kernel_in_clusters(kernel, grid, dim3(Cfg::kThreads), smem, stream, cluster, p);
}

template <typename T, int HD, int kWarps, int kStages>
cudaError_t launch_decode_cfg(const AttnParams& p, cudaStream_t stream) {
    using G = DecodeGrid;
    if (p.n_items > 0) {
        return p.fused_epilogue ? cudaErrorInvalidValue
                                : launch_decode_typed<T, HD, kWarps, kStages, false, G::kItems>(
                                      p, stream);
    }
    // The step's own split length only where the host's split holds 4+ tiles: below that it
    // cannot come out materially shorter, and its reduction costs ~0.5 us a launch at batch 1
    // (run 23).
    if (p.n_splits > 1 && p.split_len >= 4 * DecodeCfg<HD, kWarps, kStages>::kBlockN) {
        return p.fused_epilogue
                   ? launch_decode_typed<T, HD, kWarps, kStages, true, G::kStepSplits>(p, stream)
                   : launch_decode_typed<T, HD, kWarps, kStages, false, G::kStepSplits>(p, stream);
    }
    return p.fused_epilogue
               ? launch_decode_typed<T, HD, kWarps, kStages, true, G::kPlanned>(p, stream)
               : launch_decode_typed<T, HD, kWarps, kStages, false, G::kPlanned>(p, stream);
}

// K/V tiles in flight per CTA: with two, a CTA walking a long split waited one load latency per
// tile (32 streams x 640 keys: 0.64 of copy bandwidth on an H200); three keep two loads in
// flight while one tile is consumed and still fit two CTAs per SM at head_dim 128 (109 KB).
// head_dim 256 stays double buffered (shared memory). HELEXA_ATTN_STAGES=2 (A/B measurements)
// double-buffers head_dim 128 too; read once per process.
int decode_stages() {
    static const int stages = env_positive("HELEXA_ATTN_STAGES", 3) == 2 ? 2 : 3;
    return stages;
}

template <typename T>
cudaError_t launch_decode_hd(const AttnParams& p, int head_dim, cudaStream_t stream) {
    switch (head_dim) {
        case 16:
            return launch_decode_cfg<T, 16, 4, 3>(p, stream);
        case 32:
            return launch_decode_cfg<T, 32, 4, 3>(p, stream);
        case 64:
            return launch_decode_cfg<T, 64, 4, 3>(p, stream);
        case 128:
            return decode_stages() == 2 ? launch_decode_cfg<T, 128, 4, 2>(p, stream)
                                        : launch_decode_cfg<T, 128, 4, 3>(p, stream);
        case 256:
            return launch_decode_cfg<T, 256, 2, 2>(p, stream);
        default:
            return cudaErrorInvalidValue;
    }
}

}  // namespace

cudaError_t launch_attention_decode(const AttnParams& p, int head_dim, bool bf16,
                                    cudaStream_t stream) {
    return bf16 ? launch_decode_hd<__nv_bfloat16>(p, head_dim, stream)
                : launch_decode_hd<__half>(p, head_dim, stream);
}

}  // namespace helexa::kernels::attn
