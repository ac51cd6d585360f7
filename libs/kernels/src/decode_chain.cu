// A decode step's layer work in one persistent launch (decode_chain.h).
//
// Design (why it is shaped this way):
// - One CTA per SM, each a producer warp and 8 consumer warps around a ring of 64 KiB slots in
//   shared memory (as many as the x rows leave room for: 3 next to a 12288-wide x row). Large
//   slots, because the copy engine streams large copies best: at 1 row the Qwen3-8B layer chain
//   took 154 / 111 / 104 us with 16 / 32 / 64 KiB slots, against 108 us for the four kernels
//   apart (run 16, docs/perf/cuda-engine.md). The producer fills slots
//   with plain bulk copies (cp.async.bulk, completion counted in bytes on the slot's mbarrier,
//   L2 evict-first: weights are read once); consumers release a slot by arriving on its "empty"
//   barrier. The producer never waits for another CTA: it runs through the links' weights back
//   to back, so while the consumers wait at the grid barrier between two links (the next link
//   reads what every CTA wrote) the ring keeps filling with the next link's weights, and HBM
//   keeps streaming. Before the grid dependency wait it already streams the first link's
//   weights (they depend on no kernel), i.e. under the attention that precedes the chain.
// - Work is handed out dynamically: a link's rows come in groups of 8 (one row per consumer
//   warp; SwiGLU: 8 gate/up pairs), and the producer takes the next group from a counter in the
//   workspace when it needs one. A CTA that became resident late (its SM still held the
//   attention) or streams slowly takes fewer groups, so no CTA's share ends far after the rest.
// - A unit is one group's rows over a slice of K (4096 columns, SwiGLU 2048: 64 KiB), taken
//   from the ring's slot by 8 bulk copies (SwiGLU 16), one per row segment; each
//   consumer warp dots its row(s) against x from shared memory, keeps the f32 sums in
//   registers across the group's units and finishes the row at its last unit (warp shuffle,
//   bias, residual or SwiGLU, one rounding), exactly as skinny_matmul.cu's store does. Each row
//   is summed by one warp in a fixed order wherever it runs: the same bits on every run.
// - Between links, every consumer thread first stores its outputs, then the CTA arrives on the
//   link's grid counter (release) and polls it (acquire) until every CTA has (grid_sync.cuh),
//   then loads the next link's x (T rows, through L2) into shared
//   memory, normalising it when the link has an input norm (rounded as launch_rms_norm stores
//   it). A CTA with no rows of a link still passes its barrier. NOTE: two ways around the
//   barrier lost on the H200 (run 18, Qwen3-8B batch 1, ratio to roofline 0.838 as built): down
//   waiting per K chunk for the gate_up rows that wrote it (0.792), and a producer whose ring is
//   full asking L2 for the unit it waits to copy (0.809; with the unit after it too, 0.764).
// - The workspace holds two sets of counters (one 128-byte line each: a group counter and a
//   barrier counter per link, an exit counter), used by alternate launches; the last CTA to exit
//   zeroes its set, so recorded graphs replay the launches unchanged. Two sets, because the
//   producer takes groups before the grid dependency wait: a launch may start while the one
//   before it still runs (the chain itself lets its dependents launch early), but never before
//   the one before that has completed.
// - An attention link (chain_attention.cuh) has no weights: the producer skips it, and the
//   consumers run its items between the barriers around it, in the shared memory the x rows
//   use otherwise (the previous link's x is dead after its barrier, the next one's not loaded
//   before the attention's barrier).
// - All CTAs wait for each other, so all must be resident at once: one CTA per SM (its shared
//   memory alone rules out two), never on a device shared with another process's kernels that
//   hold SMs indefinitely.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "chain_attention.cuh"
#include "device_clock.cuh"
#include "elem_access.cuh"
#include "grid_sync.cuh"
#include "helexa/kernels/decode_chain.h"
#include "launch.cuh"
#include "fused_rms_norm.cuh"
#include "tma.cuh"

namespace helexa::kernels {
namespace {

using Output = SkinnyFusion::Output;

constexpr int kWarp = 32;
constexpr int kConsumerWarps = 8;
constexpr int kConsumers = kConsumerWarps * kWarp;
constexpr int kThreads = kConsumers + kWarp;  // + the producer warp
static_assert(chain_attn::kThreads == kConsumers, "the attention link runs on the consumer warps");
constexpr int kPack = 8;                      // 2-byte elements per 16-byte pack
constexpr int kSlotBytes = 64 * 1024;
constexpr int kChains = 2;  // independent FMA chains per (row, x row)
[[maybe_unused]] constexpr int kConsumerBarrier = 1;  // named barrier of the consumer warps
// The dynamic shared memory the ring and the x rows share: past half an SM's, so one CTA per
// SM whatever the split, and as many slots as the x rows leave (3 at most).
constexpr size_t kSmemBudget = 220 * 1024;
constexpr int kMaxSlots = static_cast<int>(kSmemBudget / kSlotBytes);
constexpr int kCounterStride = 32;  // unsigned per 128-byte line
constexpr int kMaxNormWarps = 1024 / kWarp;  // norm_reduce_threads' most, in warps

struct LinkParams {
    void* out;
    int64_t out_stride;
    const void* x;
    int64_t x_stride;
    const void* w;
    const void* bias;         // or null
    const void* norm_weight;  // or null
    float eps;
    int norm_threads;         // launch_rms_norm's reduction threads for K (rms_norm_order.cuh)
    Output output;
    int rows_per_warp;  // 1; SwiGLU 2 (a gate row and its up row)
    int chunk_cols;     // columns of w per unit: kSlotBytes / (2 * kConsumerWarps * rows_per_warp)
    int chunks;         // units per row group
    int n;
    int k;
    int groups;  // row groups of kConsumerWarps rows (SwiGLU: pairs)
};

struct ChainParams {
    LinkParams link[kDecodeChainMaxLinks];
    attn::AttnParams attn;  // the attention link's (attn_link >= 0)
    int attn_link;          // or -1
    int head_dim;           // the attention link's
    unsigned* sync;  // the workspace's counters
    int n_links;
    int slots;
    bool static_groups;  // CTA c takes groups c, c + G, ... instead of from the counter
    // The producer streams nothing past the attention link until the grid has passed its
    // barrier (HELEXA_CHAIN_ATTN_HOLD=1: an A/B of streaming weights under the attention).
    bool hold_for_attention;
    unsigned long long* trace;  // decode_chain_set_trace, or null
};

// Debugging (decode_chain_set_trace): per CTA kTraceWords words: {SM id, consumer start (after
// the dependency wait), producer's first copy issued, exit, the attention's first item's end of
// epilogue, of passes and of merge, 0}, then per link {x ready, last unit done, barrier passed,
// units consumed} (globaltimer nanoseconds; zero where a CTA never got there).
constexpr int kTraceWords = 8 + 4 * kDecodeChainMaxLinks;

// One launch's counters, each on its own 128-byte line: per link a group counter and a barrier
// counter, then the exit counter. The workspace holds two such sets.
constexpr size_t kCounterSetBytes =
    static_cast<size_t>(2 * kDecodeChainMaxLinks + 1) * kCounterStride * sizeof(unsigned);

[[maybe_unused]] __device__ __forceinline__ unsigned* group_counter(unsigned* sync, int link) {
    return sync + link * kCounterStride;
}
[[maybe_unused]] __device__ __forceinline__ unsigned* barrier_counter(unsigned* sync, int link) {
    return sync + (kDecodeChainMaxLinks + link) * kCounterStride;
}
[[maybe_unused]] __device__ __forceinline__ unsigned* exit_counter(unsigned* sync) {
    return sync + 2 * kDecodeChainMaxLinks * kCounterStride;
}

// Group g's row slot of consumer warp `warp` (SwiGLU: its pair), and the row of w it reads as
// its row r there, clamped into w (the sums of rows past the end are never stored).
[[maybe_unused]] __device__ __forceinline__ int row_slot(int g, int warp) {
    return g * kConsumerWarps + warp;
}
[[maybe_unused]] __device__ __forceinline__ int64_t weight_row(const LinkParams& L, int j, int r) {
    if (L.output == Output::kSwiGlu) {
        const int half = L.n / 2;
        j = min(j, half - 1);
        return r == 0 ? j : half + j;
    }
    return min(j, L.n - 1);
}

// The columns of w a group's unit `chunk` holds: [begin, begin + count).
[[maybe_unused]] __device__ __forceinline__ int2 segment(const LinkParams& L, int chunk) {
    const int begin = chunk * L.chunk_cols;
    return make_int2(begin, min(L.chunk_cols, L.k - begin));
}

// A 2-byte activation another CTA may have written, read through L2.
template <typename W>
__device__ __forceinline__ float load_cg(const W* p) {
    const unsigned short bits = __ldcg(reinterpret_cast<const unsigned short*>(p));
    W v;
    memcpy(&v, &bits, sizeof(v));
    return to_f32(v);
}

// The producer warp: every unit of every link this CTA takes, in order, then an empty
// end-of-chain unit. unit_of[s] = (link, group, chunk) of the unit in slot s.
__device__ void produce(const ChainParams& p, unsigned char* ring, uint64_t* full,
                        uint64_t* empty, int4* unit_of, const volatile int* attention_over,
                        int lane) {
    const uint64_t policy = l2_evict_first_policy();
    int s = 0;
    uint32_t phase = 0;
    bool first = true;
    for (int i = 0; i < p.n_links; ++i) {
        if (i == p.attn_link) {
            while (p.hold_for_attention && *attention_over == 0) {
            }
            continue;  // no weights
        }
        const LinkParams& L = p.link[i];
        const int copies = kConsumerWarps * L.rows_per_warp;
        // Groups are taken one ahead, so the unit that ends this CTA's share of the link is
        // flagged (unit_of[s].w) and the consumers go to the barrier at once, instead of
        // learning it from the next link's first unit, a DRAM latency later. Taken before the
        // grid dependency wait: this launch's set of counters was last used by the launch
        // before the previous one, which completed before this grid could start (the previous
        // launch waits for it before letting this one launch: launch.cuh). Only lane 0 holds
        // the next group: the atomic's latency is paid where its flag is written, not here.
        int m = 0;
        auto take = [&]() {
            unsigned taken = 0;
            if (p.static_groups) {
                taken = blockIdx.x + static_cast<unsigned>(m) * gridDim.x;
            } else if (lane == 0) {
                taken = atomicAdd(group_counter(p.sync, i), 1u);
            }
            ++m;
            return taken;
        };
        unsigned next = take();
        for (;;) {
            const int g = static_cast<int>(__shfl_sync(0xffffffffu, next, 0));
            if (g >= L.groups) {
                break;
            }
            next = take();
            for (int c = 0; c < L.chunks; ++c) {
                const int2 seg = segment(L, c);
                const auto bytes = static_cast<uint32_t>(seg.y * 2);
                // This lane's source before the wait for the slot: the copy issues as soon as
                // the consumers free it (slot segment q = warp * rows_per_warp + r holds that
                // warp's row r).
                const unsigned char* src = nullptr;
                if (lane < copies) {
                    const int64_t row = weight_row(L, row_slot(g, lane / L.rows_per_warp),
                                                   lane % L.rows_per_warp);
                    src = static_cast<const unsigned char*>(L.w) + (row * L.k + seg.x) * 2;
                }
                if (lane == 0) {
                    mbarrier_wait(&empty[s], phase ^ 1u);
                    const bool ends = c == L.chunks - 1 && static_cast<int>(next) >= L.groups;
                    unit_of[s] = make_int4(i, g, c, ends ? 1 : 0);
                    mbarrier_arrive_expect_tx(&full[s], bytes * static_cast<uint32_t>(copies));
                }
                __syncwarp();
                if (lane < copies) {
                    bulk_load(ring + s * kSlotBytes + lane * L.chunk_cols * 2, src, bytes,
                              &full[s], policy);
                }
                if (first && p.trace != nullptr && lane == 0) {
                    p.trace[blockIdx.x * kTraceWords + 2] = global_ns();
                }
                first = false;
                if (++s == p.slots) {
                    s = 0;
                    phase ^= 1u;
                }
            }
        }
    }
    if (lane == 0) {
        mbarrier_wait(&empty[s], phase ^ 1u);
        unit_of[s] = make_int4(p.n_links, 0, 0, 0);
        mbarrier_arrive(&full[s]);
    }
}

// The grid barrier after link `link`: this CTA's outputs of it are stored (the named barrier)
// and published, then every CTA's are visible.
[[maybe_unused]] __device__ void grid_barrier(unsigned* sync, int link, int tid) {
    named_barrier_sync(kConsumerBarrier, kConsumers);
    if (tid == 0) {
        // The release is cumulative over the CTA's stores the named barrier ordered before it,
        // and the acquire over the other CTAs' (no extra fences: each costs a round trip under
        // the weight stream).
        unsigned* counter = barrier_counter(sync, link);
        add_release(counter, 1u);
        while (load_acquire(counter) < gridDim.x) {
        }
    }
    named_barrier_sync(kConsumerBarrier, kConsumers);
}

// Link L's T rows of x into shared memory ([T][K], packed), through L2 (other CTAs wrote them),
// normalised when L has an input norm as launch_rms_norm normalises it: the squares summed in
// its order (rms_norm_order.cuh; the consumer warps play its reduction warps w, w + 8, ...),
// y = round(x * inv_rms), out = round(norm_weight * y). The same order as the unchained path's,
// so the single-row chain and the batched kernels see the same normalised x (rms_norm_order.cuh
// says why that matters).
//
// Every load is on the critical path (the ring holds the link's first weights already), so a
// thread issues its norm-weight packs (up to kNormHeld of them: K <= kNormHeld * 2048) with its x
// loads, and its x packs kXAtOnce at a time (over the rows) before storing any: one L2 round trip
// where the x copy took one per 4 packs (down's 12288 columns: 6 packs a thread) and the weights
// one more after the reduction. The kernels with the attention link, whose registers the
// attention holds, keep the copy loop and the weights loaded in the normalising pass
// (kXAtOnce 0, kNormHeld 0): held loads there spill.
template <typename W, int T, int kXAtOnce, int kNormHeld>
__device__ void load_x(const LinkParams& L, W* xs, float (*red)[T], int tid, int warp, int lane) {
    const int k_packs = L.k / kPack;
    const auto* src = static_cast<const uint4*>(L.x);
    const int64_t stride_packs = L.x_stride / kPack;
    auto* dst = reinterpret_cast<uint4*>(xs);
    const auto* norm_packs = static_cast<const uint4*>(L.norm_weight);
    const bool norm_held =
        kNormHeld > 0 && norm_packs != nullptr && k_packs <= kNormHeld * kConsumers;
    uint4 nw[kNormHeld > 0 ? kNormHeld : 1];
    if (norm_held) {
#pragma unroll
        for (int j = 0; j < kNormHeld; ++j) {
            const int i = tid + j * kConsumers;
            if (i < k_packs) {
                nw[j] = __ldg(norm_packs + i);
            }
        }
    }
    if constexpr (kXAtOnce == 0) {
#pragma unroll 4
        for (int i = tid; i < k_packs; i += kConsumers) {
#pragma unroll
            for (int t = 0; t < T; ++t) {
                dst[t * k_packs + i] = __ldcg(src + t * stride_packs + i);
            }
        }
    } else {
        constexpr int kAtOnce = kXAtOnce / T > 0 ? kXAtOnce / T : 1;
        for (int i0 = tid; i0 < k_packs; i0 += kAtOnce * kConsumers) {
            uint4 v[kAtOnce][T];
#pragma unroll
            for (int j = 0; j < kAtOnce; ++j) {
                const int i = i0 + j * kConsumers;
                if (i < k_packs) {
#pragma unroll
                    for (int t = 0; t < T; ++t) {
                        v[j][t] = __ldcg(src + t * stride_packs + i);
                    }
                }
            }
#pragma unroll
            for (int j = 0; j < kAtOnce; ++j) {
                const int i = i0 + j * kConsumers;
                if (i < k_packs) {
#pragma unroll
                    for (int t = 0; t < T; ++t) {
                        dst[t * k_packs + i] = v[j][t];
                    }
                }
            }
        }
    }
    named_barrier_sync(kConsumerBarrier, kConsumers);
    if (norm_packs == nullptr) {
        return;
    }
    const int norm_warps = L.norm_threads / kWarp;
    for (int vw = warp; vw < norm_warps; vw += kConsumerWarps) {
        float ss[T];
        norm_warp_sums<W, T>(vw, lane, k_packs, L.norm_threads,
                             [&](int t, int64_t i) { return dst[t * k_packs + i]; }, ss);
#pragma unroll
        for (int t = 0; t < T; ++t) {
            if (lane == 0) {
                red[vw][t] = ss[t];
            }
        }
    }
    named_barrier_sync(kConsumerBarrier, kConsumers);
    float inv[T];
#pragma unroll
    for (int t = 0; t < T; ++t) {
        float total = 0.0f;
        for (int q = 0; q < norm_warps; ++q) {
            total += red[q][t];
        }
        inv[t] = rsqrtf(total / static_cast<float>(L.k) + L.eps);
    }
    auto normalise = [&](int i, const uint4& w) {
        float nf[kPack];
        unpack8<W>(w, nf);
#pragma unroll
        for (int t = 0; t < T; ++t) {
            dst[t * k_packs + i] = normalised_pack<W>(dst[t * k_packs + i], nf, inv[t]);
        }
    };
    if (norm_held) {
#pragma unroll
        for (int j = 0; j < kNormHeld; ++j) {
            const int i = tid + j * kConsumers;
            if (i < k_packs) {
                normalise(i, nw[j]);
            }
        }
    } else {
#pragma unroll 2
        for (int i = tid; i < k_packs; i += kConsumers) {
            normalise(i, __ldg(norm_packs + i));
        }
    }
    named_barrier_sync(kConsumerBarrier, kConsumers);
}

// One unit: this warp's R rows of the slot against the unit's columns of x.
template <typename W, int T, int R>
__device__ __forceinline__ void consume_unit(const LinkParams& L, const unsigned char* slot,
                                             const W* xs, int chunk, int warp, int lane,
                                             float (&acc)[2][T][kChains]) {
    const int chunk_packs = L.chunk_cols / kPack;
    const int2 seg = segment(L, chunk);
    const int packs = seg.y / kPack;
    const int k_packs = L.k / kPack;
    const auto* wq = reinterpret_cast<const uint4*>(slot) + warp * R * chunk_packs;
    const auto* xq = reinterpret_cast<const uint4*>(xs) + seg.x / kPack;
#pragma unroll 4
    for (int v = lane; v < packs; v += kWarp) {
        float wf[R][kPack];
#pragma unroll
        for (int r = 0; r < R; ++r) {
            unpack8<W>(wq[r * chunk_packs + v], wf[r]);
        }
#pragma unroll
        for (int t = 0; t < T; ++t) {
            float xf[kPack];
            unpack8<W>(xq[t * k_packs + v], xf);
#pragma unroll
            for (int r = 0; r < R; ++r) {
#pragma unroll
                for (int j = 0; j < kPack; ++j) {
                    acc[r][t][j % kChains] = fmaf(wf[r][j], xf[j], acc[r][t][j % kChains]);
                }
            }
        }
    }
}

// Row slot j's output for x row t from its R row sums, with the link's epilogue
// (skinny_matmul.cu's store_group).
template <typename W, int R>
__device__ __forceinline__ void store_output(const LinkParams& L, int j, int t,
                                             const float (&sums)[R]) {
    const auto* bias = static_cast<const W*>(L.bias);
    W* out = static_cast<W*>(L.out) + t * L.out_stride;
    if constexpr (R == 2) {
        const int half = L.n / 2;
        if (j < half) {
            const float gate = round_to<W>(sums[0] + (bias != nullptr ? to_f32(bias[j]) : 0.0f));
            const float up =
                round_to<W>(sums[1] + (bias != nullptr ? to_f32(bias[half + j]) : 0.0f));
            out[j] = from_f32<W>(silu_mul_of<W>(gate, up));
        }
    } else if (j < L.n) {
        float v = sums[0] + (bias != nullptr ? to_f32(bias[j]) : 0.0f);
        if (L.output == Output::kAccumulate) {
            v += load_cg(out + j);
        }
        out[j] = from_f32<W>(v);
    }
}

// The end of a row group: each warp's row sums (xor butterfly), then lane t stores x row t's
// output of the warp's row. Zeroes acc.
template <typename W, int T, int R>
__device__ __forceinline__ void finish_group(const LinkParams& L, int g, int warp, int lane,
                                             float (&acc)[2][T][kChains]) {
    float sum[R][T];
#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int t = 0; t < T; ++t) {
            float s = acc[r][t][0];
#pragma unroll
            for (int c = 1; c < kChains; ++c) {
                s += acc[r][t][c];
            }
#pragma unroll
            for (int off = kWarp / 2; off > 0; off >>= 1) {
                s += __shfl_xor_sync(0xffffffffu, s, off);
            }
            sum[r][t] = s;
#pragma unroll
            for (int c = 0; c < kChains; ++c) {
                acc[r][t][c] = 0.0f;
            }
        }
    }
#pragma unroll
    for (int t = 0; t < T; ++t) {
        if (lane == t) {
            float sums[R];
#pragma unroll
            for (int r = 0; r < R; ++r) {
                sums[r] = sum[r][t];
            }
            store_output<W, R>(L, row_slot(g, warp), t, sums);
        }
    }
}

// kAttnHd > 0: the chain has an attention link (p.attn_link) of that head_dim and a group of at
// most kAttnGroup q heads; 0: none, and the attention's code is left out. One kernel per
// attention shape, so each keeps its registers: the projections' loop alone takes 63-72, the
// attention ~165 of the 168 a 9-warp CTA gets (chain_attention.cuh).
template <typename W, int T, int kAttnHd, int kAttnGroup>
__global__ void __launch_bounds__(kThreads, 1)
    decode_chain_kernel(const __grid_constant__ ChainParams p) {
    constexpr bool kAttention = kAttnHd > 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    extern __shared__ __align__(128) unsigned char smem[];
    __shared__ __align__(8) uint64_t full[kMaxSlots];
    __shared__ __align__(8) uint64_t empty[kMaxSlots];
    __shared__ int4 unit_of[kMaxSlots];
    __shared__ float red[kMaxNormWarps][T];
    __shared__ volatile int attention_over;  // p.hold_for_attention
    const int tid = static_cast<int>(threadIdx.x);
    const int warp = tid / kWarp;
    const int lane = tid % kWarp;
    if (tid == 0) {
        attention_over = 0;
        for (int s = 0; s < p.slots; ++s) {
            mbarrier_init(&full[s], 1);
            mbarrier_init(&empty[s], kConsumerWarps);
        }
        mbarrier_init_fence();
    }
    __syncthreads();
    if (warp == kConsumerWarps) {
        produce(p, smem, full, empty, unit_of, &attention_over, lane);
        grid_dependency_wait();
        return;
    }
    W* xs = reinterpret_cast<W*>(smem + p.slots * kSlotBytes);
    bool rotary_ready = false;
    if constexpr (kAttention) {
        chain_attn::prefetch_link<W, kAttnHd>(p.attn, tid);
        if (p.attn_link == 0) {
            rotary_ready =
                chain_attn::early_rotary<W>(p.attn, reinterpret_cast<unsigned char*>(xs), tid);
        }
    }
    // x, the residual and the outputs are the previous kernels' (or earlier links').
    grid_dependency_wait();
    allow_dependent_launch();
    unsigned long long* trace =
        p.trace != nullptr ? p.trace + blockIdx.x * kTraceWords : nullptr;
    if (trace != nullptr && tid == 0) {
        trace[0] = sm_id();
        trace[1] = global_ns();
    }
    float acc[2][T][kChains];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
#pragma unroll
        for (int t = 0; t < T; ++t) {
#pragma unroll
            for (int c = 0; c < kChains; ++c) {
                acc[r][t][c] = 0.0f;
            }
        }
    }
    int s = 0;
    uint32_t phase = 0;
    for (int j = 0; j < p.n_links; ++j) {
        if (kAttention && j == p.attn_link) {
            if constexpr (kAttention) {
                if (trace != nullptr && tid == 0) {
                    trace[8 + 4 * j] = global_ns();
                }
                const chain_attn::Where at{reinterpret_cast<unsigned char*>(xs),
                                           kConsumerBarrier, tid, warp, lane, trace,
                                           rotary_ready};
                chain_attn::run_items<W, kAttnHd, kAttnGroup>(p.attn, at);
                if (trace != nullptr && tid == 0) {
                    trace[8 + 4 * j + 1] = global_ns();
                }
            }
        } else {
            // The next unit: this link's first, or a later link's (or the end) when this CTA
            // took no rows of it; then it stays in its slot for that link.
            mbarrier_wait(&full[s], phase);
            int4 u = unit_of[s];
            if (u.x == j) {
                const LinkParams& L = p.link[j];
                load_x<W, T, kAttention ? 0 : 8, kAttention ? 0 : 4>(L, xs, red, tid, warp,
                                                                     lane);
                if (trace != nullptr && tid == 0) {
                    trace[8 + 4 * j] = global_ns();
                }
                int units = 0;
                for (;;) {
                    const unsigned char* slot = smem + s * kSlotBytes;
                    if (L.rows_per_warp == 2) {
                        consume_unit<W, T, 2>(L, slot, xs, u.z, warp, lane, acc);
                    } else {
                        consume_unit<W, T, 1>(L, slot, xs, u.z, warp, lane, acc);
                    }
                    __syncwarp();
                    if (lane == 0) {
                        mbarrier_arrive(&empty[s]);
                    }
                    if (u.z == L.chunks - 1) {
                        if (L.rows_per_warp == 2) {
                            finish_group<W, T, 2>(L, u.y, warp, lane, acc);
                        } else {
                            finish_group<W, T, 1>(L, u.y, warp, lane, acc);
                        }
                    }
                    ++units;
                    if (trace != nullptr && tid == 0) {
                        trace[8 + 4 * j + 1] = global_ns();
                        trace[8 + 4 * j + 3] = static_cast<unsigned long long>(units);
                    }
                    if (++s == p.slots) {
                        s = 0;
                        phase ^= 1u;
                    }
                    if (u.w != 0) {
                        break;  // this CTA's last unit of the link: to the barrier now
                    }
                    mbarrier_wait(&full[s], phase);
                    u = unit_of[s];
                }
            }
        }
        if (j < p.n_links - 1) {
            grid_barrier(p.sync, j, tid);
            if (trace != nullptr && tid == 0) {
                trace[8 + 4 * j + 2] = global_ns();
            }
        }
        if (j == p.attn_link && tid == 0) {
            attention_over = 1;
        }
    }
    // Every CTA has passed every barrier and taken its last group once all have exited: the
    // last one zeroes the counters for the next launch.
    named_barrier_sync(kConsumerBarrier, kConsumers);
    if (tid == 0) {
        if (trace != nullptr) {
            trace[3] = global_ns();
        }
        __threadfence();
        if (atomicAdd(exit_counter(p.sync), 1u) == gridDim.x - 1) {
            __threadfence();
            for (int i = 0; i < kDecodeChainMaxLinks; ++i) {
                *group_counter(p.sync, i) = 0;
                *barrier_counter(p.sync, i) = 0;
            }
            *exit_counter(p.sync) = 0;
        }
    }
#endif
}

bool plan_link(const DecodeChainLink& in, LinkParams& out) {
    const bool swiglu = in.fusion.output == Output::kSwiGlu;
    if (in.out == nullptr || in.x == nullptr || in.w == nullptr || in.n <= 0 || in.k <= 0 ||
        in.k % kPack != 0 || in.x_stride % kPack != 0 || in.x_stride < in.k ||
        in.n > (int64_t{1} << 30) || in.k > (int64_t{1} << 30) || (swiglu && in.n % 2 != 0) ||
        !aligned16(in.x) || !aligned16(in.w) ||
        (in.fusion.norm_weight != nullptr && !aligned16(in.fusion.norm_weight))) {
        return false;
    }
    out.out = in.out;
    out.out_stride = in.out_stride;
    out.x = in.x;
    out.x_stride = in.x_stride;
    out.w = in.w;
    out.bias = in.bias;
    out.norm_weight = in.fusion.norm_weight;
    out.eps = in.fusion.eps;
    out.norm_threads = static_cast<int>(norm_reduce_threads(in.k, kPack));
    out.output = in.fusion.output;
    out.rows_per_warp = swiglu ? 2 : 1;
    out.n = static_cast<int>(in.n);
    out.k = static_cast<int>(in.k);
    out.chunk_cols = kSlotBytes / (2 * kConsumerWarps * out.rows_per_warp);
    out.chunks = (out.k + out.chunk_cols - 1) / out.chunk_cols;
    const int rows = swiglu ? out.n / 2 : out.n;
    out.groups = (rows + kConsumerWarps - 1) / kConsumerWarps;
    return true;
}

// The columns a projection link stores per x row.
int64_t out_width(const DecodeChainLink& l) {
    return l.fusion.output == Output::kSwiGlu ? l.n / 2 : l.n;
}

// Keys an attention split takes at most: 64, one pass of each warp (4 rows of 2 keys at head_dim
// 128). Of 64, 128 and 256, 64 was best in run 17 (Qwen3-8B batch 1, H200: 0.670 / 0.66 /
// 0.638 and 0.636 / 0.627 / 0.613 in two calls). HELEXA_CHAIN_ATTN_SPLIT_KEYS overrides it
// (A/B measurements; read once per process).
int64_t chain_split_keys() {
    static const auto keys =
        static_cast<int64_t>(env_positive("HELEXA_CHAIN_ATTN_SPLIT_KEYS", 64));
    return keys;
}

// The attention link's parameters (chain_attention.cuh): launch_paged_attention's checks and
// fields, its epilogue, and the chain's own split plan: splits of at most chain_split_keys()
// keys, no more than the attention workspace is sized for (paged_attention_workspace_bytes'
// bound), partials merged through that workspace.
bool plan_attention(const DecodeChainLink& in, int64_t T, attn::AttnParams& p, int& head_dim) {
    const PagedAttentionArgs& a = *in.attention;
    if (a.n_seqs != T || a.max_query_len != 1 || a.epilogue == nullptr ||
        !attn::epilogue_fusable(a) || attn::common_params(a, p) != cudaSuccess ||
        !chain_attn::takes(p.group, a.layout.head_dim)) {
        return false;
    }
    attn::fuse_epilogue(*a.epilogue, p);
    head_dim = static_cast<int>(a.layout.head_dim);
    p.n_row_groups = 1;
    p.cluster_merge = false;
    const int64_t ctx = a.max_context_len;
    const int64_t n_splits = std::min(attn::ceil_div(ctx, chain_split_keys()),
                                      attn::decode_split_bound(a.n_seqs, ctx));
    p.split_len = static_cast<int32_t>(attn::ceil_div(ctx, n_splits));
    p.n_splits = static_cast<int32_t>(attn::ceil_div(ctx, p.split_len));
    return p.n_splits == 1 || attn::place_split_workspace(a, p.n_splits, p);
}

// Bytes of shared memory beside the ring: T rows of the widest x, or the attention link's
// scratch when larger.
size_t x_bytes(const DecodeChainLink* links, int n_links, int64_t T) {
    size_t bytes = 0;
    for (int i = 0; i < n_links; ++i) {
        const DecodeChainLink& l = links[i];
        size_t b = 0;
        if (l.attention != nullptr) {
            const int64_t heads = l.attention->layout.n_kv_heads;
            const int group = heads > 0 ? static_cast<int>(l.attention->n_heads / heads) : 1;
            b = chain_attn::scratch_bytes(chain_attn::group_bucket(group),
                                          static_cast<int>(l.attention->layout.head_dim));
        } else {
            b = static_cast<size_t>(T * l.k * 2);
        }
        bytes = std::max(bytes, b);
    }
    return (bytes + 127) / 128 * 128;
}

int ring_slots(size_t xb) {
    return xb >= kSmemBudget ? 0
                             : std::min<int>(kMaxSlots, static_cast<int>((kSmemBudget - xb) /
                                                                         kSlotBytes));
}

std::atomic<unsigned long long*> g_trace{nullptr};

template <typename W, int T, int kAttnHd, int kAttnGroup>
cudaError_t launch_t(const ChainParams& p, size_t smem, int ctas, cudaStream_t stream) {
    auto* kernel = decode_chain_kernel<W, T, kAttnHd, kAttnGroup>;
    static std::atomic<uint64_t> smem_raised{0};
    if (const cudaError_t err = ensure_dynamic_smem(kernel, kSmemBudget, smem_raised);
        err != cudaSuccess) {
        return err;
    }
    // The CTAs wait for each other: one must fit on every SM.
    static const bool one_per_sm = [kernel] {
        int per_sm = 0;
        return cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads,
                                                             kSmemBudget) == cudaSuccess &&
               per_sm >= 1;
    }();
    if (!one_per_sm) {
        return cudaErrorInvalidConfiguration;
    }
    // One CTA per SM unless DecodeChainWorkspace::ctas asks for fewer (a smaller device's grid).
    const int sms = device_sm_count();
    const int grid = ctas > 0 && ctas < sms ? ctas : sms;
    return launch_kernel(kernel, dim3(static_cast<unsigned>(grid)), dim3(kThreads), smem, stream,
                         p);
}

// The kernel for the chain's attention shape (none, or head_dim x group), then T.
template <typename W, int kAttnHd, int kAttnGroup>
cudaError_t launch_rows(const ChainParams& p, int64_t T, size_t smem, int ctas,
                        cudaStream_t stream) {
    return T == 1 ? launch_t<W, 1, kAttnHd, kAttnGroup>(p, smem, ctas, stream)
                  : launch_t<W, 2, kAttnHd, kAttnGroup>(p, smem, ctas, stream);
}

template <typename W, int kAttnHd>
cudaError_t launch_group(const ChainParams& p, int64_t T, size_t smem, int ctas,
                         cudaStream_t stream) {
    switch (chain_attn::group_bucket(p.attn.group)) {
        case 1:
            return launch_rows<W, kAttnHd, 1>(p, T, smem, ctas, stream);
        case 2:
            return launch_rows<W, kAttnHd, 2>(p, T, smem, ctas, stream);
        default:
            return launch_rows<W, kAttnHd, 4>(p, T, smem, ctas, stream);
    }
}

template <typename W>
cudaError_t launch_shape(const ChainParams& p, int64_t T, size_t smem, int ctas,
                         cudaStream_t stream) {
    if (p.attn_link < 0) {
        return launch_rows<W, 0, 0>(p, T, smem, ctas, stream);
    }
    return p.head_dim == 64 ? launch_group<W, 64>(p, T, smem, ctas, stream)
                            : launch_group<W, 128>(p, T, smem, ctas, stream);
}

cudaError_t launch_typed(const ChainParams& p, ElemType type, int64_t T, size_t smem, int ctas,
                         cudaStream_t stream) {
    return type == ElemType::kBF16 ? launch_shape<__nv_bfloat16>(p, T, smem, ctas, stream)
                                   : launch_shape<__half>(p, T, smem, ctas, stream);
}

}  // namespace

bool decode_chain_supported() {
    // Bulk copies and mbarrier transaction counts arrived with compute capability 9.0, as
    // clusters did.
    return clusters_supported();
}

bool decode_chain_fits(const DecodeChainLink* links, int n_links, int64_t T) {
    if (T < 1 || T > kDecodeChainMaxRows || n_links < 1 || n_links > kDecodeChainMaxLinks ||
        links == nullptr) {
        return false;
    }
    LinkParams scratch{};
    attn::AttnParams attn_scratch;
    int head_dim = 0;
    int attention_links = 0;
    for (int i = 0; i < n_links; ++i) {
        if (links[i].attention != nullptr) {
            if (++attention_links > 1 || !plan_attention(links[i], T, attn_scratch, head_dim)) {
                return false;
            }
            continue;
        }
        if (!plan_link(links[i], scratch) ||
            (T > 1 && links[i].out_stride < out_width(links[i]))) {
            return false;
        }
    }
    return ring_slots(x_bytes(links, n_links, T)) >= 2;
}

size_t decode_chain_workspace_bytes() { return 2 * kCounterSetBytes; }

void decode_chain_set_trace(unsigned long long* device_buffer) { g_trace.store(device_buffer); }

int decode_chain_trace_words() { return kTraceWords; }

cudaError_t launch_decode_chain(const DecodeChainLink* links, int n_links, int64_t T,
                                ElemType type, DecodeChainWorkspace& workspace,
                                cudaStream_t stream) {
    if ((type != ElemType::kBF16 && type != ElemType::kF16) || workspace.device == nullptr ||
        !decode_chain_fits(links, n_links, T)) {
        return cudaErrorInvalidValue;
    }
    ChainParams p{};
    p.attn_link = -1;
    for (int i = 0; i < n_links; ++i) {
        if (links[i].attention != nullptr) {
            p.attn_link = i;
            (void)plan_attention(links[i], T, p.attn, p.head_dim);
        } else {
            (void)plan_link(links[i], p.link[i]);
        }
    }
    p.sync = reinterpret_cast<unsigned*>(static_cast<unsigned char*>(workspace.device) +
                                         workspace.next_set * kCounterSetBytes);
    workspace.next_set ^= 1u;
    p.n_links = n_links;
    const size_t xb = x_bytes(links, n_links, T);
    p.slots = ring_slots(xb);
    // HELEXA_CHAIN_DYNAMIC=0: each CTA takes the same groups every launch (A/B measurements).
    static const bool static_groups = !env_on_unless_zero("HELEXA_CHAIN_DYNAMIC");
    p.static_groups = static_groups;
    static const bool hold = env_positive("HELEXA_CHAIN_ATTN_HOLD", 0) == 1;
    p.hold_for_attention = hold;
    p.trace = g_trace.load(std::memory_order_relaxed);
    const size_t smem = static_cast<size_t>(p.slots) * kSlotBytes + xb;
    return launch_typed(p, type, T, smem, workspace.ctas, stream);
}

}  // namespace helexa::kernels
