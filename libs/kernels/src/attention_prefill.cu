// Prefill attention over the paged KV cache: FlashAttention-2 style tiles on tensor cores.
//
// One CTA per (query tile of 64 rows, query head, sequence); 4 warps, each owning 16 query rows
// for the whole key loop, so softmax statistics never leave a warp. K/V tiles of 64 keys (32 at
// head_dim 256) are gathered through the block table with 16-byte cp.async into padded shared
// tiles (row pitch head_dim + 8 elements: ldmatrix rows land in distinct bank groups), double
// buffered so the next tile loads while the current one is multiplied. S = Q.K^T and O += P.V
// run on mma.sync m16n8k16 with f32 accumulators; P is rounded to the activation type in
// registers (its C fragments are the A fragments of P.V). Causality uses absolute positions:
// query row i of a sequence sits at context_len - n_query + i, so a chunk that starts after a
// cached prefix sees the prefix. Key tiles past the tile's last query position are never loaded;
// a warp skips tiles above its own diagonal. Query tiles are walked last-first so the heaviest
// (latest) tiles start first.
#include "attention_common.cuh"

namespace helexa::kernels::attn {
namespace {

template <int HD>
struct PrefillCfg {
    static constexpr int kWarps = 4;
    static constexpr int kThreads = kWarps * 32;
    static constexpr int kBlockM = 16 * kWarps;
    static constexpr int kBlockN = HD <= 128 ? 64 : 32;
    // Q fragments stay in registers up to head_dim 128; at 256 they would not fit beside the
    // 128-register O accumulator, so they are re-read from shared memory each tile.
    static constexpr bool kQInRegs = HD <= 128;
    static constexpr int kStride = HD + 8;
    static constexpr int kTileElems = kBlockN * kStride;
    static constexpr int kQElems = kBlockM * kStride;
    // [K0][V0][K1][V1] (+ Q when it is not kept in registers; otherwise Q is staged in the
    // stage-1 tiles, which are free until the first prefetch).
    static constexpr int kSmemElems = 4 * kTileElems + (kQInRegs ? 0 : kQElems);
    static_assert(!kQInRegs || kQElems <= 2 * kTileElems, "Q must fit in stage 1");
    static_assert(HD % 16 == 0 && HD <= 256, "head_dim must be a multiple of 16, <= 256");
};

template <typename T, int HD>
__global__ void __launch_bounds__(PrefillCfg<HD>::kThreads, 2)
    attention_prefill_kernel(const AttnParams p) {
    // Nothing before this reads or writes what other kernels touch (launch.cuh).
    grid_dependency_wait();
    allow_dependent_launch();
    using Cfg = PrefillCfg<HD>;
    constexpr int kBlockM = Cfg::kBlockM;
    constexpr int kBlockN = Cfg::kBlockN;
    constexpr int kStride = Cfg::kStride;
    constexpr int kThreads = Cfg::kThreads;
    constexpr int kChunks = HD / 8;

    const int s = blockIdx.z;
    const int h = blockIdx.y;
    const int tile = gridDim.x - 1 - blockIdx.x;  // heaviest tiles first
    const int q_begin = p.query_start[s];
    int nq = p.query_start[s + 1] - q_begin;
    nq = min(max(nq, 0), p.max_query_len);
    const int q0 = tile * kBlockM;
    if (q0 >= nq) {
        return;
    }
    const int ctx = min(max(p.context_len[s], 0), p.max_context_len);
    const int first_pos = ctx - nq;  // absolute position of query row 0
    // Keys any row of this tile sees: up to the last row's position, inclusive.
    const int n_keys = max(0, min(ctx, first_pos + min(nq, q0 + kBlockM)));
    const int n_tiles = (n_keys + kBlockN - 1) / kBlockN;
    const int kvh = h / p.group;

    const int tid = threadIdx.x;
    const int warp = tid / 32;
    const int lane = tid % 32;
    const int g = lane / 4;
    const int tq = lane % 4;

    extern __shared__ uint4 smem_raw[];
    T* smem = reinterpret_cast<T*>(smem_raw);
    // Stage b's K tile at smem + 2b * kTileElems, its V tile right after.
    auto sk = [smem](int b) { return smem + 2 * b * Cfg::kTileElems; };
    auto sv = [smem](int b) { return smem + (2 * b + 1) * Cfg::kTileElems; };
    T* sq = Cfg::kQInRegs ? smem + 2 * Cfg::kTileElems : smem + 4 * Cfg::kTileElems;

    const T* q = static_cast<const T*>(p.q);
    const T* k_pool = static_cast<const T*>(p.k_pool);
    const T* v_pool = static_cast<const T*>(p.v_pool);
    const int32_t* table = p.block_tables + static_cast<int64_t>(s) * p.max_blocks_per_seq;

    // Q tile: rows q0.. of head h; rows past the sequence are zero-filled (never written out).
    for (int i = tid; i < kBlockM * kChunks; i += kThreads) {
        const int r = i / kChunks;
        const int c = i % kChunks;
        const bool valid = q0 + r < nq;
        const T* src = valid ? q + static_cast<int64_t>(q_begin + q0 + r) * p.q_stride +
                                   static_cast<int64_t>(h) * HD + c * 8
                             : q;
        cp_async16(sq + r * kStride + c * 8, src, valid);
    }
    if (n_tiles > 0) {
        load_kv_tile<T, HD, kBlockN, kThreads>(sk(0), sv(0), k_pool, v_pool, table, p, kvh, 0,
                                               n_keys, tid);
    }
    cp_async_commit();

    // Per-lane address offsets of the ldmatrix patterns (see attention_common.cuh).
    const int a_row = lane % 16, a_col = (lane / 16) * 8;                   // A from Q
    const int k_row = (lane % 8) + 8 * (lane / 16), k_col = 8 * ((lane / 8) % 2);  // B from K
    const int v_row = (lane % 8) + 8 * ((lane / 8) % 2), v_col = 8 * (lane / 16);  // B from V^T

    uint32_t qf[Cfg::kQInRegs ? HD / 16 : 1][4];
    if constexpr (Cfg::kQInRegs) {
        cp_async_wait<0>();
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < HD / 16; ++kk) {
            ldsm_x4(qf[kk], sq + (warp * 16 + a_row) * kStride + kk * 16 + a_col);
        }
        __syncthreads();  // stage 1 (holding Q) is overwritten by the first prefetch
    }

    float acc_o[HD / 8][4];
#pragma unroll
    for (int i = 0; i < HD / 8; ++i) {
        acc_o[i][0] = acc_o[i][1] = acc_o[i][2] = acc_o[i][3] = 0.0f;
    }
    float row_max[2] = {-INFINITY, -INFINITY};
    float row_sum[2] = {0.0f, 0.0f};  // this lane's share; reduced over the quad at the end
    const int warp_row0 = q0 + warp * 16;         // first query row of this warp
    const int pos0 = first_pos + warp_row0 + g;   // absolute position of row g (and +8)
    const bool warp_has_rows = warp_row0 < nq;

    for (int t = 0; t < n_tiles; ++t) {
        const int stage = t & 1;
        if (t + 1 < n_tiles) {
            load_kv_tile<T, HD, kBlockN, kThreads>(sk(stage ^ 1), sv(stage ^ 1), k_pool, v_pool,
                                                   table, p, kvh, (t + 1) * kBlockN, n_keys,
                                                   tid);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();

        const int k0 = t * kBlockN;
        // A warp whose last row precedes this tile's first key has nothing to add.
        if (warp_has_rows && k0 <= first_pos + warp_row0 + 15) {
            const T* tk = sk(stage);
            const T* tv = sv(stage);
            float sc[kBlockN / 8][4];
#pragma unroll
            for (int i = 0; i < kBlockN / 8; ++i) {
                sc[i][0] = sc[i][1] = sc[i][2] = sc[i][3] = 0.0f;
            }
#pragma unroll
            for (int kk = 0; kk < HD / 16; ++kk) {
                uint32_t a[4];
                if constexpr (Cfg::kQInRegs) {
                    a[0] = qf[kk][0];
                    a[1] = qf[kk][1];
                    a[2] = qf[kk][2];
                    a[3] = qf[kk][3];
                } else {
                    ldsm_x4(a, sq + (warp * 16 + a_row) * kStride + kk * 16 + a_col);
                }
#pragma unroll
                for (int j = 0; j < kBlockN / 16; ++j) {
                    uint32_t b[4];
                    ldsm_x4(b, tk + (j * 16 + k_row) * kStride + kk * 16 + k_col);
                    mma_16816<T>(sc[2 * j], a, b[0], b[1]);
                    mma_16816<T>(sc[2 * j + 1], a, b[2], b[3]);
                }
            }

            // Scale into the exp2 domain; mask keys past the row's position or the tile's end.
            const bool need_mask = k0 + kBlockN > n_keys || k0 + kBlockN - 1 > pos0;
#pragma unroll
            for (int nt = 0; nt < kBlockN / 8; ++nt) {
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    float v = sc[nt][e] * p.scale_log2;
                    if (need_mask) {
                        const int key = k0 + nt * 8 + 2 * tq + (e & 1);
                        const int pos = pos0 + (e >= 2 ? 8 : 0);
                        if (key >= n_keys || key > pos) {
                            v = -INFINITY;
                        }
                    }
                    sc[nt][e] = v;
                }
            }

            // Online softmax for rows g (hf 0) and g + 8 (hf 1); a row's 4 lanes share a quad.
#pragma unroll
            for (int hf = 0; hf < 2; ++hf) {
                float mx = -INFINITY;
#pragma unroll
                for (int nt = 0; nt < kBlockN / 8; ++nt) {
                    mx = fmaxf(mx, fmaxf(sc[nt][2 * hf], sc[nt][2 * hf + 1]));
                }
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                const float m_new = fmaxf(row_max[hf], mx);
                // A row with no visible key yet keeps max -inf; subtract 0 so exp2 gives 0.
                const float m_use = m_new == -INFINITY ? 0.0f : m_new;
                const float alpha = fast_exp2(row_max[hf] - m_use);
                row_max[hf] = m_new;
                float sum = 0.0f;
#pragma unroll
                for (int nt = 0; nt < kBlockN / 8; ++nt) {
                    const float p0 = fast_exp2(sc[nt][2 * hf] - m_use);
                    const float p1 = fast_exp2(sc[nt][2 * hf + 1] - m_use);
                    sc[nt][2 * hf] = p0;
                    sc[nt][2 * hf + 1] = p1;
                    sum += p0 + p1;
                }
                row_sum[hf] = row_sum[hf] * alpha + sum;
#pragma unroll
                for (int nt = 0; nt < HD / 8; ++nt) {
                    acc_o[nt][2 * hf] *= alpha;
                    acc_o[nt][2 * hf + 1] *= alpha;
                }
            }

            // O += P.V: the score C fragments become P's A fragments, V^T via ldmatrix.trans.
#pragma unroll
            for (int kk = 0; kk < kBlockN / 16; ++kk) {
                uint32_t a[4];
                a[0] = pack2<T>(sc[2 * kk][0], sc[2 * kk][1]);
                a[1] = pack2<T>(sc[2 * kk][2], sc[2 * kk][3]);
                a[2] = pack2<T>(sc[2 * kk + 1][0], sc[2 * kk + 1][1]);
                a[3] = pack2<T>(sc[2 * kk + 1][2], sc[2 * kk + 1][3]);
#pragma unroll
                for (int j = 0; j < HD / 16; ++j) {
                    uint32_t b[4];
                    ldsm_x4_trans(b, tv + (kk * 16 + v_row) * kStride + j * 16 + v_col);
                    mma_16816<T>(acc_o[2 * j], a, b[0], b[1]);
                    mma_16816<T>(acc_o[2 * j + 1], a, b[2], b[3]);
                }
            }
        }
        __syncthreads();  // this stage is refilled by the next iteration's prefetch
    }
    if (n_tiles == 0) {
        cp_async_wait<0>();  // nothing may be in flight when the CTA exits
    }

    // Normalise and write rows g and g + 8 of this warp (4-byte stores of two elements).
    T* out = static_cast<T*>(p.out);
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
        float l = row_sum[hf];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;
        const int row = warp_row0 + g + 8 * hf;
        if (row < nq) {
            T* o = out + static_cast<int64_t>(q_begin + row) * p.out_stride +
                   static_cast<int64_t>(h) * HD;
#pragma unroll
            for (int nt = 0; nt < HD / 8; ++nt) {
                *reinterpret_cast<uint32_t*>(o + nt * 8 + 2 * tq) =
                    pack2<T>(acc_o[nt][2 * hf] * inv, acc_o[nt][2 * hf + 1] * inv);
            }
        }
    }
}

template <typename T, int HD>
cudaError_t launch_prefill_typed(const AttnParams& p, cudaStream_t stream) {
    using Cfg = PrefillCfg<HD>;
    const size_t smem = static_cast<size_t>(Cfg::kSmemElems) * sizeof(T);
    auto kernel = attention_prefill_kernel<T, HD>;
    static std::atomic<uint64_t> smem_raised{0};
    const cudaError_t smem_err = ensure_dynamic_smem(kernel, smem, smem_raised);
    if (smem_err != cudaSuccess) {
        return smem_err;
    }
    const dim3 grid(static_cast<unsigned>(ceil_div(p.max_query_len, Cfg::kBlockM)),
                    static_cast<unsigned>(p.n_heads), static_cast<unsigned>(p.n_seqs));
    if (const cudaError_t launched = launch_kernel(
            kernel, grid, Cfg::kThreads, smem, stream, p);
        launched != cudaSuccess) {
        return launched;
    }
    return cudaGetLastError();
}

template <typename T>
cudaError_t launch_prefill_hd(const AttnParams& p, int head_dim, cudaStream_t stream) {
    switch (head_dim) {
        case 16:
            return launch_prefill_typed<T, 16>(p, stream);
        case 32:
            return launch_prefill_typed<T, 32>(p, stream);
        case 64:
            return launch_prefill_typed<T, 64>(p, stream);
        case 128:
            return launch_prefill_typed<T, 128>(p, stream);
        case 256:
            return launch_prefill_typed<T, 256>(p, stream);
        default:
            return cudaErrorInvalidValue;
    }
}

}  // namespace

cudaError_t launch_attention_prefill(const AttnParams& p, int head_dim, bool bf16,
                                     cudaStream_t stream) {
    return bf16 ? launch_prefill_hd<__nv_bfloat16>(p, head_dim, stream)
                : launch_prefill_hd<__half>(p, head_dim, stream);
}

}  // namespace helexa::kernels::attn
