// The draw rule (helexa/engine/draw_rule.h) on the device: one token per logits row, so a sampled
// step copies rows int32 ids to the host instead of rows x vocab floats and the host samples
// nothing.
//
// Each row is read by a thread-block cluster of kCluster CTAs of 1024 threads; CTA `rank` owns a
// contiguous eighth of the row, copied once (after the penalties were written into it) into shared
// memory, where each thread owns kPerThread logits: ids begin + thread + i * 1024 (96 KB a CTA;
// held in registers they spilled). Reductions run over warps (shuffles), then the CTA (shared memory), then the
// cluster (distributed shared memory, two alternating slots so one cluster barrier a reduction
// suffices). A row then takes one of three ends:
//   greedy: the argmax reduction that also found the maximum;
//   no top-k: every thread keys its finite logits (z + Gumbel), one more argmax reduction;
//   top-k: each warp picks its k best by a k-round tournament over its lanes (only the lane whose
//   candidate won rescans its registers), warp 0 merges the 32 sorted warp lists, CTA 0 merges the
//   8 CTA lists, and warp 0 of CTA 0 runs top-p (one lane: the f32 sum in list order, as on the
//   host), min-p and the keyed argmax over the survivors.
// Every order is the rule's total order (higher key, then lower id), so the result does not depend
// on which thread saw what, and equals the host's draw_row bit for bit.
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "helexa/engine/draw_rule.h"
#include "async_copy.cuh"
#include "helexa/kernels/sampling.h"
#include "launch.cuh"

namespace helexa::kernels {
namespace {

namespace cg = cooperative_groups;
namespace draw = engine::draw;

constexpr int kThreads = 1024;
constexpr int kWarp = 32;
constexpr int kWarps = kThreads / kWarp;
constexpr int kCluster = 8;
constexpr int kPerThread = 24;
static_assert(int64_t{kCluster} * kThreads * kPerThread == draw::kMaxVocab,
              "the rule's vocabulary limit is what one cluster holds in registers");
static_assert(kWarps == kWarp, "the CTA merge is one warp over every warp's result");
constexpr size_t kValueBytes = size_t{kThreads} * kPerThread * sizeof(float);

struct Best {
    float key;
    int32_t id;       // -1: none
    int32_t pos_inf;  // a +inf was seen (the row is broken)
};

__device__ __forceinline__ Best no_best() {
    return Best{0.0F, -1, 0};
}

__device__ __forceinline__ void merge(Best& b, const Best& o) {
    if (draw::before(o.key, o.id, b.key, b.id)) {
        b.key = o.key;
        b.id = o.id;
    }
    b.pos_inf |= o.pos_inf;
}

// The best of the warp's 32 values, in every lane.
__device__ __forceinline__ Best warp_best(Best b) {
#pragma unroll
    for (int off = kWarp / 2; off > 0; off >>= 1) {
        Best o;
        o.key = __shfl_xor_sync(0xffffffffu, b.key, off);
        o.id = __shfl_xor_sync(0xffffffffu, b.id, off);
        o.pos_inf = __shfl_xor_sync(0xffffffffu, b.pos_inf, off);
        merge(b, o);
    }
    return b;
}

// Shared memory of one CTA.
struct DrawShared {
    Best warp_slots[kWarps];
    Best result;
    Best cluster_slots[2];          // read by the other CTAs of the cluster
    Best warp_lists[kWarps][draw::kMaxTopK];
    Best cta_list[draw::kMaxTopK];  // read by CTA 0 of the cluster
    float top_z[draw::kMaxTopK];
    float top_key[draw::kMaxTopK];
    int32_t keep;
};

// The best over the CTA, in every thread.
__device__ __forceinline__ Best cta_best(Best b, DrawShared& s) {
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
    b = warp_best(b);
    if (lane == 0) {
        s.warp_slots[warp] = b;
    }
    __syncthreads();
    if (warp == 0) {
        b = warp_best(s.warp_slots[lane]);
        if (lane == 0) {
            s.result = b;
        }
    }
    __syncthreads();
    return s.result;
}

// The best over the cluster (`b`: this CTA's best, the same in every thread), in every thread.
// Slot `phase` is rewritten two reductions later, after every CTA passed the barrier between.
__device__ __forceinline__ Best cluster_best(Best b, DrawShared& s, cg::cluster_group& cluster,
                                             int& phase) {
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    if (threadIdx.x == 0) {
        s.cluster_slots[phase] = b;
    }
    cluster.sync();
    if (threadIdx.x < kWarp) {
        Best o = no_best();
        if (lane < kCluster) {
            o = *cluster.map_shared_rank(&s.cluster_slots[phase], lane);
        }
        o = warp_best(o);
        if (lane == 0) {
            s.result = o;
        }
    }
    __syncthreads();
    phase ^= 1;
    return s.result;
}

// The best of this thread's logits that comes after (after_key, after_id) in the rule's order
// (none when after_id < 0: the best of all).
// v: this thread's values (stride kThreads).
__device__ __forceinline__ Best best_after(const float* v, int64_t first, float after_key,
                                           int32_t after_id) {
    Best b = no_best();
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
        const auto id = static_cast<int32_t>(first + int64_t{i} * kThreads);
        const float x = v[i * kThreads];
        if (draw::finite(x) && (after_id < 0 || draw::before(after_key, after_id, x, id)) &&
            draw::before(x, id, b.key, b.id)) {
            b.key = x;
            b.id = id;
        }
    }
    return b;
}

// Merges 32 sorted lists (lane L's list at `list`, k entries, padded with none) by a k-round
// tournament; lane 0 writes the merged k best to `out`. One warp.
__device__ __forceinline__ void merge_lists(const Best* list, int k, Best* out) {
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    int next = 0;
    Best head = list != nullptr ? list[0] : no_best();
    for (int j = 0; j < k; ++j) {
        const Best w = warp_best(head);
        if (lane == 0) {
            out[j] = w;
        }
        if (w.id >= 0 && head.id == w.id) {
            ++next;
            head = next < k ? list[next] : no_best();
        }
    }
}

// logits: [rows, vocab] f32 contiguous (penalties are applied in place); draws: [rows] RowDraw;
// entries: the PenaltyEntry array the rows index; out_ids: int32 [rows]. Grid (kCluster, row
// slots) in clusters of kCluster along x; every thread reaches every barrier of every row.
__global__ void __launch_bounds__(kThreads, 1)
    draw_rows_kernel(float* logits, int64_t rows, int64_t vocab, const draw::RowDraw* draws,
                     const draw::PenaltyEntry* entries, int32_t* out_ids) {
    // Nothing before this reads or writes what other kernels touch (launch.cuh).
    grid_dependency_wait();
    allow_dependent_launch();
    __shared__ DrawShared s;
    extern __shared__ float values[];  // [kPerThread][kThreads]: this CTA's slice of the row
    float* v = values + threadIdx.x;   // this thread's values, stride kThreads
    cg::cluster_group cluster = cg::this_cluster();
    const int rank = static_cast<int>(cluster.block_rank());
    const int lane = static_cast<int>(threadIdx.x) % kWarp;
    const int warp = static_cast<int>(threadIdx.x) / kWarp;
    const int64_t slice = (vocab + kCluster - 1) / kCluster;
    const int64_t begin = rank * slice < vocab ? rank * slice : vocab;
    const int64_t end = begin + slice < vocab ? begin + slice : vocab;
    const int64_t first = begin + threadIdx.x;  // this thread's first id
    int phase = 0;
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
        const draw::RowDraw d = draws[r];
        if (d.mode == draw::kDrawHost) {
            if (rank == 0 && threadIdx.x == 0) {
                out_ids[r] = -2;
            }
            continue;
        }
        float* row = logits + r * vocab;
        for (uint32_t e = threadIdx.x; e < d.n_entries; e += kThreads) {
            const draw::PenaltyEntry pe = entries[d.first_entry + e];
            if (pe.id >= begin && pe.id < end) {
                row[pe.id] = draw::apply_penalty(row[pe.id], pe, d.repetition_penalty);
            }
        }
        __syncthreads();  // the penalised logits are visible to the whole CTA

        Best top = no_best();
#pragma unroll
        for (int i = 0; i < kPerThread; ++i) {
            const int64_t c = first + int64_t{i} * kThreads;
            const float x = c < end ? row[c] : __int_as_float(0x7fc00000);  // NaN: no candidate
            v[i * kThreads] = x;
            if (draw::finite(x)) {
                if (top.id < 0 || x > top.key) {
                    top.key = x;
                    top.id = static_cast<int32_t>(c);
                }
            } else if (x > 0.0F) {
                top.pos_inf = 1;
            }
        }
        top = cluster_best(cta_best(top, s), s, cluster, phase);
        if (top.pos_inf != 0 || top.id < 0 || d.mode == draw::kDrawGreedy) {
            if (rank == 0 && threadIdx.x == 0) {
                out_ids[r] = top.pos_inf != 0 ? -1 : top.id;
            }
            continue;
        }
        const float max_l = top.key;
        const uint64_t seed = draw::seed_of(d);

        if (d.top_k == 0) {
            Best b = no_best();
#pragma unroll
            for (int i = 0; i < kPerThread; ++i) {
                const auto id = static_cast<int32_t>(first + int64_t{i} * kThreads);
                const float x = v[i * kThreads];
                if (draw::finite(x)) {
                    const float z = draw::mul(draw::sub(x, max_l), d.inv_temperature);
                    if (z >= d.log_min_p) {
                        const float key = draw::add(
                            z, draw::gumbel(draw::draw_bits(seed, d.position,
                                                            static_cast<uint32_t>(id))));
                        if (draw::before(key, id, b.key, b.id)) {
                            b.key = key;
                            b.id = id;
                        }
                    }
                }
            }
            b = cluster_best(cta_best(b, s), s, cluster, phase);
            if (rank == 0 && threadIdx.x == 0) {
                out_ids[r] = b.id;
            }
            continue;
        }

        // top-k: each warp's k best, by a tournament over its lanes.
        const int k = d.top_k;
        Best cur = best_after(v, first, 0.0F, -1);
        for (int j = 0; j < k; ++j) {
            const Best w = warp_best(cur);
            if (lane == 0) {
                s.warp_lists[warp][j] = w;
            }
            if (w.id >= 0 && cur.id == w.id) {
                cur = best_after(v, first, w.key, w.id);
            }
        }
        __syncthreads();
        if (warp == 0) {
            merge_lists(s.warp_lists[lane], k, s.cta_list);
        }
        cluster.sync();  // every CTA's list is published
        if (rank == 0 && warp == 0) {
            // The row's k best, into this CTA's (now free) first warp list.
            Best* top_k = s.warp_lists[0];
            merge_lists(lane < kCluster ? cluster.map_shared_rank(s.cta_list, lane) : nullptr, k,
                        top_k);
            __syncwarp();
            for (int j = lane; j < k; j += kWarp) {
                if (top_k[j].id >= 0) {
                    const float z = draw::mul(draw::sub(top_k[j].key, max_l), d.inv_temperature);
                    s.top_z[j] = z;
                    s.top_key[j] = draw::add(
                        z, draw::gumbel(draw::draw_bits(seed, d.position,
                                                        static_cast<uint32_t>(top_k[j].id))));
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
                        total = draw::add(total, draw::exp_nonpositive(s.top_z[j]));
                    }
                    const float threshold = draw::mul(d.top_p, total);
                    float cumulative = 0.0F;
                    for (int j = 0; j < n; ++j) {
                        cumulative = draw::add(cumulative, draw::exp_nonpositive(s.top_z[j]));
                        if (cumulative >= threshold) {
                            keep = j + 1;
                            break;
                        }
                    }
                }
                int survivors = 0;
                while (survivors < keep && s.top_z[survivors] >= d.log_min_p) {
                    ++survivors;
                }
                s.keep = survivors;
            }
            __syncwarp();
            Best b = no_best();
            for (int j = lane; j < s.keep; j += kWarp) {
                if (draw::before(s.top_key[j], top_k[j].id, b.key, b.id)) {
                    b.key = s.top_key[j];
                    b.id = top_k[j].id;
                }
            }
            b = warp_best(b);
            if (lane == 0) {
                out_ids[r] = b.id;
            }
        }
        cluster.sync();  // CTA 0 is done with the other CTAs' lists
    }
    cluster.sync();  // no CTA leaves while another may still read its cluster slots
}

}  // namespace

cudaError_t launch_draw_rows(float* logits, int64_t rows, int64_t vocab, const void* draws,
                             int32_t* out_ids, cudaStream_t stream) {
    if (rows < 0 || vocab <= 0 || vocab > draw::kMaxVocab) {
        return cudaErrorInvalidValue;
    }
    if (rows == 0) {
        return cudaSuccess;
    }
    if (logits == nullptr || draws == nullptr || out_ids == nullptr) {
        return cudaErrorInvalidValue;
    }
    static std::atomic<uint64_t> smem_raised{0};
    if (const cudaError_t raised = ensure_dynamic_smem(draw_rows_kernel, kValueBytes, smem_raised);
        raised != cudaSuccess) {
        return raised;
    }
    const auto* row_draws = static_cast<const draw::RowDraw*>(draws);
    const auto* entries = reinterpret_cast<const draw::PenaltyEntry*>(row_draws + rows);
    const dim3 grid(kCluster, static_cast<unsigned>(rows < 65535 ? rows : 65535));
    if (const cudaError_t launched =
            launch_kernel_in_clusters(draw_rows_kernel, grid, kThreads, kValueBytes, stream, kCluster,
                                      logits, rows, vocab, row_draws, entries, out_ids);
        launched != cudaSuccess) {
        return launched;
    }
    return cudaGetLastError();
}

}  // namespace helexa::kernels
