// Hopper's warpgroup MMA (wgmma.mma_async, sm_90a): both operands read straight from shared
// memory through 64-bit descriptors, f32 accumulators in registers, issued by a whole warpgroup
// (four warps). Thin inline-PTX wrappers for the shapes the small-batch matmul uses: M = 64 rows
// of the weight tile (A, K-major), N = 8 * NT rows of x (B, K-major), K = 16 per instruction.
//
// Why: the mma.sync path issues T / 8 mma plus their ldmatrix loads per warp and 16 rows of
// weights, so its work per weight byte grows with the rows; one wgmma covers 64 weight rows and
// every x row at once and reads shared memory itself (docs/perf/cuda-engine.md, run 13).
//
// The accumulator layout is mma.sync m16n8's, warp by warp: warp i of the warpgroup holds rows
// 16i + g and 16i + g + 8 (g = lane / 4), columns 8j + 2 (lane % 4) + {0, 1} of n-tile j, as
// d[j][0..1] and d[j][2..3]. Compiled only for sm_90a (__CUDA_ARCH_FEAT_SM90_ALL); the callers
// keep an mma.sync path for other targets.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "async_copy.cuh"

namespace helexa::kernels {

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

// The descriptor of a K-major operand in 128-byte-swizzled rows (what the TMA writes with
// CU_TENSOR_MAP_SWIZZLE_128B and a 64-element box row): start address / 16, leading byte offset
// unused (1), stride byte offset 1024 (from one 8-row group to the next), swizzle mode 1 (128B).
// The start must lie in a 1024-byte-aligned swizzle pattern; a k16 step adds 32 bytes (2 in the
// descriptor's units) to it.
__device__ __forceinline__ uint64_t wgmma_desc_sw128(const void* smem) {
    const uint64_t start = (smem_u32(smem) & 0x3FFFFu) >> 4;
    return start | (uint64_t{1} << 16) | (uint64_t{1024 >> 4} << 32) | (uint64_t{1} << 62);
}

// Orders this thread's earlier register and shared-memory accesses before the warpgroup's next
// wgmma (required before the first wgmma that reads accumulators written by other instructions).
__device__ __forceinline__ void wgmma_fence() {
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_commit() {
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
// Waits until at most N committed groups are still running.
template <int N>
__device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// Keeps the compiler from moving accesses of the accumulators across a wait.
template <int NT>
__device__ __forceinline__ void wgmma_hold(float (&d)[NT][4]) {
#pragma unroll
    for (int j = 0; j < NT; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            asm volatile("" : "+f"(d[j][e])::"memory");
        }
    }
}

// d += A (64 x 16, descriptor a) * B^T (8 NT x 16, descriptor b), T the element type (bf16/f16).
template <int NT>
struct Wgmma;

// One wgmma of SHAPE on T's element type: REGS names d's registers (%0..%(4 NT - 1)), A / B / P
// the operand numbers of a, b and the scale-d flag that follow them, the rest d's constraints.
#define HELEXA_WGMMA_ASM(TY, SHAPE, REGS, A, B, P, ...)                                        \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" P ", 0;\n"                              \
                 "wgmma.mma_async.sync.aligned." SHAPE ".f32." TY "." TY " {" REGS "}, %" A    \
                 ", %" B ", p, 1, 1, 0, 0;\n}\n"                                                \
                 : __VA_ARGS__                                                                \
                 : "l"(a), "l"(b), "r"(1)                                                     \
                 : "memory")
#define HELEXA_WGMMA(NT, SHAPE, REGS, A, B, P, ...)                                            \
    template <>                                                                               \
    struct Wgmma<NT> {                                                                        \
        template <typename T>                                                                 \
        __device__ __forceinline__ static void mma(float (&d)[NT][4], uint64_t a, uint64_t b) { \
            if constexpr (std::is_same_v<T, __nv_bfloat16>) {                                 \
                HELEXA_WGMMA_ASM("bf16", SHAPE, REGS, A, B, P, __VA_ARGS__);                  \
            } else {                                                                          \
                HELEXA_WGMMA_ASM("f16", SHAPE, REGS, A, B, P, __VA_ARGS__);                   \
            }                                                                                 \
        }                                                                                     \
    }

HELEXA_WGMMA(1, "m64n8k16",
             "%0, %1, %2, %3",
             "4", "5", "6",
             "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]));
HELEXA_WGMMA(2, "m64n16k16",
             "%0, %1, %2, %3, %4, %5, %6, %7",
             "8", "9", "10",
             "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]),
             "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]));
HELEXA_WGMMA(4, "m64n32k16",
             "%0, %1, %2, %3, %4, %5, %6, %7,"
             "%8, %9, %10, %11, %12, %13, %14, %15",
             "16", "17", "18",
             "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]),
             "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]),
             "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]),
             "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]));
HELEXA_WGMMA(8, "m64n64k16",
             "%0, %1, %2, %3, %4, %5, %6, %7,"
             "%8, %9, %10, %11, %12, %13, %14, %15,"
             "%16, %17, %18, %19, %20, %21, %22, %23,"
             "%24, %25, %26, %27, %28, %29, %30, %31",
             "32", "33", "34",
             "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]),
             "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]), "+f"(d[1][3]),
             "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]),
             "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]),
             "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]),
             "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]),
             "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]),
             "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3]));

#undef HELEXA_WGMMA
#undef HELEXA_WGMMA_ASM

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

}  // namespace helexa::kernels
