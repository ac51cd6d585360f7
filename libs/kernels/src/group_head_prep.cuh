// The fused q/k/v epilogue of one decode row for one KV head's group (qkv_epilogue.h's work,
// with qkv_head_ops.cuh's arithmetic): the group's q heads normalised and rotated into shared
// memory, and, where the caller holds the row's new key, that key and its value normalised,
// rotated and written to the pools and to shared memory. Shared by the decode attention kernel
// (attention_decode.cu) and the decode chain's attention link (chain_attention.cuh), so both
// give launch_qkv_epilogue's bits.
#pragma once

#include "attention_common.cuh"
#include "qkv_head_ops.cuh"

namespace helexa::kernels::attn {

// A head is held by kGroupLanes lanes of a warp, one 16-byte pack (8 elements) each.
template <int HD>
struct GroupHeadLanes {
    static constexpr int kGroupLanes = HD / 8 < 32 ? HD / 8 : 32;
    static constexpr int kHeadsPerWarp = 32 / kGroupLanes;
};

// For query row `row` (one row per sequence) and KV head kvh: tasks 0..group-1 are the q heads
// (into q_dst + task * q_dst_stride), then, with holds_new, k and v (into kv_dst and kv_dst + HD,
// and the pools at slots[row]). A warp takes kHeadsPerWarp tasks per pass; a head's rotary
// exchange goes through its own destination row. qw / kw: this lane's pack of the q / k norm
// weights (loaded when p.q_norm_weight is set). rot_cs: rotary_table() of the row's position,
// complete once `table_ready` (called by every one of the kWarps warps, once, before the first
// rotary) returns. Called by all threads of kWarps warps.
template <typename T, int HD, int kWarps, typename TableReady>
__device__ __forceinline__ void prepare_group_heads(const AttnParams& p, int row, int kvh,
                                                    bool holds_new, T* q_dst, int q_dst_stride,
                                                    T* kv_dst, const Pack<T, 8>& qw,
                                                    const Pack<T, 8>& kw, const float* rot_cs,
                                                    int warp, int lane, TableReady table_ready) {
    using Lanes = GroupHeadLanes<HD>;
    using HeadPack = Pack<T, 8>;
    const HeadPack qw_[1] = {qw};
    const HeadPack kw_[1] = {kw};
    const int gl = lane % Lanes::kGroupLanes;
    const int gi = lane / Lanes::kGroupLanes;
    const bool has_norm = p.q_norm_weight != nullptr;
    const T* src = static_cast<const T*>(p.q) + static_cast<int64_t>(row) * p.q_stride;
    const int64_t slot = holds_new ? p.slots[row] : -1;
    const int64_t n_slots = p.n_blocks * p.block_size;
    const bool slot_ok = slot >= 0 && slot < n_slots;
    if (holds_new && !slot_ok && p.bad_slot != nullptr && warp == 0 && lane == 0) {
        *p.bad_slot = 1;
    }
    const int64_t blk = slot_ok ? slot / p.block_size : 0;
    const int64_t pool_row =
        ((blk * p.n_kv_heads + kvh) * p.block_size + (slot_ok ? slot - blk * p.block_size : 0)) *
        HD;
    const int n_tasks = p.group + (holds_new ? 2 : 0);
    constexpr int kPerPass = kWarps * Lanes::kHeadsPerWarp;
    for (int base = 0; base < n_tasks; base += kPerPass) {
        const int task = base + warp * Lanes::kHeadsPerWarp + gi;
        const bool is_q = task < p.group;
        const bool is_k = task == p.group && task < n_tasks;
        const bool is_v = task == p.group + 1 && task < n_tasks;
        const bool is_qk = is_q || is_k;
        const int head_col = is_q ? kvh * p.group + task
                                  : (is_k ? p.n_heads + kvh : p.n_heads + p.n_kv_heads + kvh);
        T* dst = is_q ? q_dst + task * q_dst_stride : kv_dst + (is_k ? 0 : HD);
        HeadPack v[1];
        if (is_qk || is_v) {
            v[0] = load_pack<T, 8>(src + static_cast<int64_t>(head_col) * HD + gl * 8);
        }
        if (has_norm) {
            const float ss = qkv_head::sum_squares<T, 8, 1>(v, gl, Lanes::kGroupLanes, HD, is_qk);
            qkv_head::apply_norm<T, 8, 1>(v, is_q ? qw_ : kw_, ss, gl, Lanes::kGroupLanes, HD,
                                          p.norm_eps, is_qk);
        }
        if (p.rotary_half > 0) {
            if (base == 0) {
                table_ready();  // uniform: every thread runs pass 0
            }
            qkv_head::apply_rotary<T, 8, 1>(v, dst, rot_cs, gl, Lanes::kGroupLanes, HD,
                                            p.rotary_half, is_qk);
        }
        if (is_qk || is_v) {
            qkv_head::store_shared<T, 8>(dst + gl * 8, v[0]);
        }
        if ((is_k || is_v) && slot_ok) {
            T* pool = static_cast<T*>(is_k ? p.k_pool_out : p.v_pool_out);
            store_pack<T, 8>(pool + pool_row + gl * 8, v[0]);
        }
        __syncwarp();  // the next pass's heads are other rows
    }
}

}  // namespace helexa::kernels::attn
