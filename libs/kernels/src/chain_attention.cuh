// The decode chain's attention link (decode_chain.h): decode attention over the paged cache with
// the q/k/v epilogue fused, for sequences of one query row each, run by the chain's consumer
// warps of every CTA between the q/k/v projection's grid barrier and the output projection's.
//
// Why it is shaped this way:
// - At batch 1 the attention is a few hundred keys per KV head: its cost is latency, not bytes.
//   As a kernel of its own (attention_decode.cu) it added ~11 us to each Qwen3-8B layer (run 17
//   trace): the chain's end, the attention grid's start and end, and the next chain's CTAs that
//   could only start on the attention's SMs once it left. Inside the chain it should cost a
//   grid barrier and a pass or two of loads while every CTA's producer keeps streaming the next
//   links' weights. Measured so far (run 17, H200) it does not: the attention phase took 14-30
//   us on the CTAs with items (the chain's trace), so the backend keeps it off by default
//   (HELEXA_CUDA_CHAIN_ATTENTION=1). Suspects: register spills (a call, a group of 8, or all
//   shapes in one kernel spilled to L2 past the small L1 beside the ring; now inlined, groups
//   of at most 4, one kernel per shape), the latency of each dependent load while every
//   producer saturates HBM with the weight stream, and 8-11 dependent round trips (the rotary
//   table now before the grid dependency wait, block ids a pass ahead).
// - Work items are (sequence, KV head, split of the context); item i runs on CTA i mod grid.
//   A CTA's 8 warps take passes of the split's keys in turn. In a pass each lane holds one
//   16-byte pack of kRowsPerPass keys' K and V rows (kKeyLanes lanes a row), so all of a pass's
//   loads are in flight at once (their K/V rows prefetched into L2 before the grid dependency
//   wait: prefetch_link); scores are reduced across a row's lanes by shuffles, and each warp
//   keeps an online softmax (max, sum, O) per q head of the group, its max shared by the whole
//   warp so the lanes' sums add up at the end.
// - The warps meet through shared memory; with one split the CTA writes the output, otherwise
//   the split's partial goes to the attention workspace and the last split of the (sequence, KV
//   head) to arrive merges them (attention_decode.cu's merge_splits arithmetic).
// - Numerics: q and the new key as launch_qkv_epilogue rounds them (group_head_prep.cuh), scores
//   in f32 scaled into the exp2 domain, P rounded to the activation type before P.V as the
//   tensor-core kernel's fragments are, sums and O in f32, one rounding of O / sum.
#pragma once

#include "device_clock.cuh"
#include "group_head_prep.cuh"
#include "tma.cuh"

namespace helexa::kernels::chain_attn {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kMaxHeadDim = 128;

// Where the link runs: the consumer thread (tid, warp, lane) of its CTA, the shared memory it
// may use (scratch_bytes()), the named barrier of the consumer warps, and the CTA's chain trace
// words (decode_chain_set_trace) or null.
struct Where {
    unsigned char* scratch;
    int barrier;
    int tid;
    int warp;
    int lane;
    unsigned long long* trace;
    bool rotary_ready;  // the CTA's first item's rotary table is in scratch (early_rotary)
};

// K and V rows one lane loads per pass (registers: 2 * kRowsPerPass 16-byte packs).
constexpr int kRowsPerPass = 4;

// The shared memory of one CTA's items, in bytes: the rotary table f32[kMaxHeadDim], the group's
// q rows T[G][hd] and the new k / v rows T[2][hd] (2-byte T), each warp's partial O
// f32[kWarps][G][hd] and (max, sum) f32[kWarps][G][2], then the merge flag.
constexpr size_t scratch_bytes(int g, int hd) {
    return static_cast<size_t>(kMaxHeadDim) * 4 + static_cast<size_t>(g + 2) * hd * 2 +
           static_cast<size_t>(kWarps) * g * hd * 4 + static_cast<size_t>(kWarps) * g * 8 + 16;
}

// Four outputs O / sum, rounded to T; zeros when no key reached the row (sum 0), as the decode
// kernel stores them.
template <typename T>
__device__ __forceinline__ void store_quad(T* dst, const float4& o, float sum) {
    const bool any = sum > 0.0f;
    *reinterpret_cast<uint32_t*>(dst) =
        any ? attn::pack2<T>(o.x / sum, o.y / sum) : attn::pack2<T>(0.0f, 0.0f);
    *reinterpret_cast<uint32_t*>(dst + 2) =
        any ? attn::pack2<T>(o.z / sum, o.w / sum) : attn::pack2<T>(0.0f, 0.0f);
}

// This lane's 8-column share of a q . k dot product, from two packs.
template <typename T>
__device__ __forceinline__ float dot8(const uint4& a, const uint4& b) {
    const uint32_t aw[4] = {a.x, a.y, a.z, a.w};
    const uint32_t bw[4] = {b.x, b.y, b.z, b.w};
    float d = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const float2 x = unpack2<T>(aw[i]);
        const float2 y = unpack2<T>(bw[i]);
        d = fmaf(x.x, y.x, d);
        d = fmaf(x.y, y.y, d);
    }
    return d;
}

// One item: query row of sequence s against keys [split * split_len, ...) of KV head kvh, for
// the G (rounded-up) q heads of its group; the output, or the split's partial and, for the last
// split to arrive, the merge. Called by all kThreads consumer threads of the CTA.
template <typename T, int HD, int G>
__device__ __forceinline__ void run_item(const attn::AttnParams& p, int s, int kvh, int split,
                                         const Where& at, bool first_item) {
    unsigned char* scratch = at.scratch;
    const int tid = at.tid;
    const int warp = at.warp;
    const int lane = at.lane;
    const int barrier = at.barrier;
    // Debugging: the first item's end of the epilogue, of the passes and of the merge
    // (decode_chain.h's trace words 4-6).
    auto mark = [&](int word) {
        if (first_item && at.trace != nullptr && tid == 0) {
            at.trace[word] = global_ns();
        }
    };
    static_assert(HD % 8 == 0 && HD <= kMaxHeadDim, "head_dim the scratch is laid out for");
    constexpr int kKeyLanes = HD / 8;          // lanes of one K / V row
    constexpr int kKeysPerLoad = 32 / kKeyLanes;
    constexpr int kRows = kRowsPerPass;
    constexpr int kKeysPerPass = kRows * kKeysPerLoad;
    auto* cs = reinterpret_cast<float*>(scratch);
    T* qs = reinterpret_cast<T*>(scratch + kMaxHeadDim * 4);  // [G][HD]
    T* kv = qs + G * HD;                                       // [2][HD]
    auto* part_o = reinterpret_cast<float*>(kv + 2 * HD);      // [kWarps][G][HD]
    auto* part_ml = reinterpret_cast<float2*>(part_o + kWarps * G * HD);  // [kWarps][G]
    auto* merge_here = reinterpret_cast<int*>(part_ml + kWarps * G);
    auto sync = [barrier] { named_barrier_sync(barrier, kThreads); };

    const int row = p.query_start[s];
    const int ctx = min(max(p.context_len[s], 0), p.max_context_len);
    const int n_used = min(p.n_splits, (ctx + p.split_len - 1) / p.split_len);
    T* out = static_cast<T*>(p.out) + static_cast<int64_t>(row) * p.out_stride +
             static_cast<int64_t>(kvh) * p.group * HD;
    if (split >= n_used) {
        // Only an empty context (bad metadata) leaves split 0 without keys: it writes zeros.
        if (split == 0) {
            for (int i = tid; i < p.group * HD; i += kThreads) {
                out[i] = from_f32<T>(0.0f);
            }
        }
        return;
    }
    const int k_begin = split * p.split_len;
    const int k_end = min(k_begin + p.split_len, ctx);
    const int new_key = split == n_used - 1 ? ctx - 1 : -1;

    // The epilogue: the group's q heads (rows past the group zeroed) and the new key and value.
    if (p.rotary_half > 0 && !(first_item && at.rotary_ready)) {
        qkv_head::rotary_table<T>(cs, p.positions[row], p.inv_freq, p.rotary_half,
                                  p.attention_scaling, tid, kThreads);
    }
    Pack<T, 8> qw{};
    Pack<T, 8> kw{};
    if (p.q_norm_weight != nullptr) {
        const int gl = lane % attn::GroupHeadLanes<HD>::kGroupLanes;
        qw = load_pack<T, 8>(static_cast<const T*>(p.q_norm_weight) + gl * 8);
        kw = load_pack<T, 8>(static_cast<const T*>(p.k_norm_weight) + gl * 8);
    }
    attn::prepare_group_heads<T, HD, kWarps>(p, row, kvh, new_key >= 0, qs, HD, kv, qw, kw, cs,
                                             warp, lane, sync);
    for (int i = p.group * HD / 8 + tid; i < G * HD / 8; i += kThreads) {
        reinterpret_cast<uint4*>(qs)[i] = make_uint4(0u, 0u, 0u, 0u);
    }
    sync();  // q rows and the new key / value are final
    mark(4);

    const int sub = lane / kKeyLanes;  // which key of a load this lane's row is
    const int d0 = (lane % kKeyLanes) * 8;
    // This lane's 8 columns of each q head, packed (4 registers a head).
    uint4 q[G];
#pragma unroll
    for (int h = 0; h < G; ++h) {
        q[h] = *reinterpret_cast<const uint4*>(qs + h * HD + d0);
    }
    float m[G];
    float l[G];
    float o[G][8];
#pragma unroll
    for (int h = 0; h < G; ++h) {
        m[h] = -INFINITY;
        l[h] = 0.0f;
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            o[h][j] = 0.0f;
        }
    }
    const T* k_pool = static_cast<const T*>(p.k_pool);
    const T* v_pool = static_cast<const T*>(p.v_pool);
    const int32_t* table = p.block_tables + static_cast<int64_t>(s) * p.max_blocks_per_seq;
    const int32_t block_elems = p.n_kv_heads * p.block_size * HD;
    const int32_t head_off = kvh * p.block_size * HD + d0;
    // Block ids of a pass's rows (-1 past the split, and for the new key, computed here).
    auto block_ids = [&](int key0, int32_t (&blk)[kRows]) {
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
            const int key = key0 + r * kKeysPerLoad;
            const int b = p.block_shift >= 0 ? key >> p.block_shift : key / p.block_size;
            blk[r] = key < k_end && key != new_key ? __ldg(table + b) : -1;
        }
    };
    // The next pass's block ids are asked for while this pass's K and V are in flight, so a
    // pass after the first costs one round trip, not two.
    int32_t blk_next[kRows];
    block_ids(k_begin + warp * kKeysPerPass + sub, blk_next);
    for (int pass = warp; k_begin + pass * kKeysPerPass < k_end; pass += kWarps) {
        const int key0 = k_begin + pass * kKeysPerPass + sub;
        int32_t blk[kRows];
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
            blk[r] = blk_next[r];
        }
        uint4 kr[kRows];
        uint4 vr[kRows];
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
            // Keys past the split and block ids outside the pool (bad metadata) read zeros.
            const int key = key0 + r * kKeysPerLoad;
            const int b = p.block_shift >= 0 ? key >> p.block_shift : key / p.block_size;
            const bool valid = blk[r] >= 0 && blk[r] < p.n_blocks;
            const int64_t off = valid ? static_cast<int64_t>(blk[r]) * block_elems +
                                            (key - b * p.block_size) * HD + head_off
                                      : 0;
            kr[r] = valid ? __ldcg(reinterpret_cast<const uint4*>(k_pool + off))
                          : make_uint4(0u, 0u, 0u, 0u);
            vr[r] = valid ? __ldcg(reinterpret_cast<const uint4*>(v_pool + off))
                          : make_uint4(0u, 0u, 0u, 0u);
            if (key == new_key) {
                kr[r] = *reinterpret_cast<const uint4*>(kv + d0);
                vr[r] = *reinterpret_cast<const uint4*>(kv + HD + d0);
            }
        }
        block_ids(key0 + kWarps * kKeysPerPass, blk_next);
        // Scores (exp2 domain), reduced over a row's lanes; -inf past the split.
        float sc[kRows][G];
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
#pragma unroll
            for (int h = 0; h < G; ++h) {
                sc[r][h] = dot8<T>(q[h], kr[r]);
            }
        }
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
#pragma unroll
            for (int h = 0; h < G; ++h) {
                float d = sc[r][h];
#pragma unroll
                for (int off = kKeyLanes / 2; off > 0; off >>= 1) {
                    d += __shfl_xor_sync(0xffffffffu, d, off);
                }
                sc[r][h] = key0 + r * kKeysPerLoad < k_end ? d * p.scale_log2 : -INFINITY;
            }
        }
        // The online softmax per head, its max shared by the whole warp.
        float m_use[G];
#pragma unroll
        for (int h = 0; h < G; ++h) {
            float mx = sc[0][h];
#pragma unroll
            for (int r = 1; r < kRows; ++r) {
                mx = fmaxf(mx, sc[r][h]);
            }
#pragma unroll
            for (int off = kKeyLanes; off < 32; off <<= 1) {
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
            }
            const float m_new = fmaxf(m[h], mx);
            m_use[h] = m_new == -INFINITY ? 0.0f : m_new;
            const float alpha = attn::fast_exp2(m[h] - m_use[h]);
            m[h] = m_new;
            l[h] *= alpha;
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                o[h][j] *= alpha;
            }
        }
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
            float vf[8];
            unpack8<T>(vr[r], vf);
#pragma unroll
            for (int h = 0; h < G; ++h) {
                const float e = attn::fast_exp2(sc[r][h] - m_use[h]);
                l[h] += e;
                const float pr = round_to<T>(e);
#pragma unroll
                for (int j = 0; j < 8; ++j) {
                    o[h][j] = fmaf(pr, vf[j], o[h][j]);
                }
            }
        }
    }
    // The warp's keys: the lanes of each row position hold sums over different keys under one
    // max; add them up, then lanes 0..kKeyLanes-1 publish the warp's partial.
#pragma unroll
    for (int h = 0; h < G; ++h) {
#pragma unroll
        for (int off = kKeyLanes; off < 32; off <<= 1) {
            l[h] += __shfl_xor_sync(0xffffffffu, l[h], off);
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                o[h][j] += __shfl_xor_sync(0xffffffffu, o[h][j], off);
            }
        }
        if (sub == 0) {
            float* dst = part_o + (warp * G + h) * HD + d0;
            *reinterpret_cast<float4*>(dst) = make_float4(o[h][0], o[h][1], o[h][2], o[h][3]);
            *reinterpret_cast<float4*>(dst + 4) = make_float4(o[h][4], o[h][5], o[h][6], o[h][7]);
            if (d0 == 0) {
                part_ml[warp * G + h] = make_float2(m[h], l[h]);
            }
        }
    }
    sync();
    mark(5);

    // The warps' partials merged: each thread finishes groups of 4 outputs of the group's heads.
    const bool direct = n_used == 1;
    const int64_t part0 =
        (static_cast<int64_t>(s) * p.max_query_len * p.n_heads + kvh * p.group) * p.n_splits;
    for (int i = tid; i < p.group * HD / 4; i += kThreads) {
        const int h = i / (HD / 4);
        const int e0 = (i % (HD / 4)) * 4;
        float mx = -INFINITY;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) {
            mx = fmaxf(mx, part_ml[w * G + h].x);
        }
        const float m_use = mx == -INFINITY ? 0.0f : mx;
        float sum = 0.0f;
        float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
        for (int w = 0; w < kWarps; ++w) {
            const float2 ml = part_ml[w * G + h];
            const float f = attn::fast_exp2(ml.x - m_use);
            sum += f * ml.y;
            const float4 v = *reinterpret_cast<const float4*>(part_o + (w * G + h) * HD + e0);
            acc.x += f * v.x;
            acc.y += f * v.y;
            acc.z += f * v.z;
            acc.w += f * v.w;
        }
        if (direct) {
            store_quad<T>(out + h * HD + e0, acc, sum);
        } else {
            const int64_t part = part0 + static_cast<int64_t>(h) * p.n_splits + split;
            *reinterpret_cast<float4*>(p.ws_acc + part * HD + e0) = acc;
            if (e0 == 0) {
                p.ws_ml[part] = make_float2(mx, sum);
            }
        }
    }
    if (direct) {
        sync();  // the scratch is the next item's
        mark(6);
        return;
    }
    // The last split of the (sequence, KV head) to arrive merges them all (publish, fence,
    // count; the last one fences again and reads the partials through L2) and puts the counter
    // back to zero.
    __threadfence();
    sync();
    if (tid == 0) {
        int32_t* counter =
            p.ws_count + (static_cast<int64_t>(s) * p.n_kv_heads + kvh) * p.n_row_groups;
        *merge_here = atomicAdd(counter, 1) == n_used - 1;
        if (*merge_here) {
            atomicExch(counter, 0);
        }
    }
    sync();
    if (*merge_here) {
        __threadfence();
        for (int i = tid; i < p.group * HD / 4; i += kThreads) {
            const int h = i / (HD / 4);
            const int e0 = (i % (HD / 4)) * 4;
            const int64_t first = part0 + static_cast<int64_t>(h) * p.n_splits;
            float mx = -INFINITY;
            for (int j = 0; j < n_used; ++j) {
                mx = fmaxf(mx, __ldcg(p.ws_ml + first + j).x);
            }
            const float m_use = mx == -INFINITY ? 0.0f : mx;
            float sum = 0.0f;
            float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            for (int j = 0; j < n_used; ++j) {
                const float2 ml = __ldcg(p.ws_ml + first + j);
                const float f = attn::fast_exp2(ml.x - m_use);
                sum += f * ml.y;
                const float4 v =
                    __ldcg(reinterpret_cast<const float4*>(p.ws_acc + (first + j) * HD + e0));
                acc.x += f * v.x;
                acc.y += f * v.y;
                acc.z += f * v.z;
                acc.w += f * v.w;
            }
            store_quad<T>(out + h * HD + e0, acc, sum);
        }
    }
    sync();  // the scratch and the flag are the next item's
    mark(6);
}

// Every item of the link this CTA takes (items blockIdx.x, blockIdx.x + gridDim.x, ...), by all
// kThreads consumer threads. Inlined: as a call it spilled (the call convention takes
// registers), and its spills left for L2 past the small L1 beside the ring.
template <typename T, int HD, int G>
__device__ __forceinline__ void run_items(const attn::AttnParams& p, const Where& at) {
    const int per_seq = p.n_kv_heads * p.n_splits;
    const int n_items = p.n_seqs * per_seq;
    for (int item = static_cast<int>(blockIdx.x); item < n_items;
         item += static_cast<int>(gridDim.x)) {
        run_item<T, HD, G>(p, item / per_seq, (item % per_seq) / p.n_splits, item % p.n_splits,
                           at, item == static_cast<int>(blockIdx.x));
    }
}

// L2 prefetches of the K and V rows of the keys older than the step (they do not depend on the
// running step: earlier steps wrote them, and blocks a sequence reads are never rewritten while
// it holds them) for the items this CTA will run, so the attention's passes find them in L2
// while the links before it still stream. Reads only the step's metadata (context lengths and
// block tables, copied in before the step's first kernel): callable before the grid dependency
// wait. By all kThreads consumer threads; nothing to wait for.
template <typename T, int HD>
__device__ __forceinline__ void prefetch_link(const attn::AttnParams& p, int tid) {
    constexpr int head_dim = HD;
    const int lines = head_dim * 2 / 128;  // 128-byte lines of one K (or V) row
    const int per_seq = p.n_kv_heads * p.n_splits;
    const int n_items = p.n_seqs * per_seq;
    const int32_t block_elems = p.n_kv_heads * p.block_size * head_dim;
    for (int item = static_cast<int>(blockIdx.x); item < n_items;
         item += static_cast<int>(gridDim.x)) {
        const int s = item / per_seq;
        const int kvh = (item % per_seq) / p.n_splits;
        const int split = item % p.n_splits;
        const int ctx = min(max(p.context_len[s], 0), p.max_context_len);
        const int k_begin = split * p.split_len;
        const int k_end = min(k_begin + p.split_len, ctx - 1);  // the new key is computed
        const int32_t* table = p.block_tables + static_cast<int64_t>(s) * p.max_blocks_per_seq;
        for (int i = tid; i < (k_end - k_begin) * lines; i += kThreads) {
            const int key = k_begin + i / lines;
            const int b = p.block_shift >= 0 ? key >> p.block_shift : key / p.block_size;
            const int32_t blk = __ldg(table + b);
            if (blk < 0 || blk >= p.n_blocks) {
                continue;
            }
            const int64_t off = static_cast<int64_t>(blk) * block_elems +
                                (kvh * p.block_size + (key - b * p.block_size)) * head_dim +
                                (i % lines) * 64;
            const T* k = static_cast<const T*>(p.k_pool) + off;
            const T* v = static_cast<const T*>(p.v_pool) + off;
            asm volatile("prefetch.global.L2 [%0];" ::"l"(k));
            asm volatile("prefetch.global.L2 [%0];" ::"l"(v));
        }
    }
}

// The rotary table of the CTA's first item into scratch, before the grid dependency wait (the
// position and inv_freq are the step's metadata and weights): two dependent round trips and the
// sincos off the attention's critical path. Only while the scratch is free then (the attention
// is the chain's first link). Returns whether it wrote the table (Where::rotary_ready).
template <typename T>
__device__ __forceinline__ bool early_rotary(const attn::AttnParams& p, unsigned char* scratch,
                                             int tid) {
    const int per_seq = p.n_kv_heads * p.n_splits;
    const int item = static_cast<int>(blockIdx.x);
    if (p.rotary_half <= 0 || item >= p.n_seqs * per_seq) {
        return false;
    }
    const int row = p.query_start[item / per_seq];
    qkv_head::rotary_table<T>(reinterpret_cast<float*>(scratch), p.positions[row], p.inv_freq,
                              p.rotary_half, p.attention_scaling, tid, kThreads);
    return true;
}

// The group sizes the chain's kernels are built for, a group rounded up to a power of two, and
// the shapes the link takes: groups of at most 4 q heads, head_dim 64 or 128. Each (head_dim,
// group) is a kernel of its own (decode_chain.cu): all of them inlined into one spilled ~150-550
// bytes a thread next to the projections' code, each alone spills nothing.
inline int group_bucket(int group) { return group <= 1 ? 1 : group <= 2 ? 2 : 4; }
inline bool takes(int group, int64_t head_dim) {
    return group >= 1 && group <= 4 && (head_dim == 64 || head_dim == 128);
}

}  // namespace helexa::kernels::chain_attn
