// Kernel timeline of one window of GPU work, from CUPTI's kernel activity records: when each
// kernel started and ended on the device, including kernels replayed inside CUDA graphs and
// launched with programmatic dependent launch (overlaps show as negative gaps). The GPU host has
// no Nsight Systems (../.library/device/KINDS.md); this is the in-repo substitute, used by
// cuda_engine_bench (HELEXA_KERNEL_TRACE=FILE) to see where a decode step's time goes between
// and inside kernels without serialising them the way Nsight Compute does.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace helexa::bench {

struct KernelRecord {
    std::string name;
    uint64_t start_ns = 0;
    uint64_t end_ns = 0;
    int32_t grid[3] = {0, 0, 0};
    int32_t block[3] = {0, 0, 0};
};

class KernelTrace {
public:
    // Starts recording kernel activity for the whole process (call before the graphs of the
    // window are launched; cheap enough to leave on). False when CUPTI refuses (message on
    // stderr).
    static bool enable();
    // Drops everything recorded so far (device work must be complete: synchronise first).
    static void clear();
    // The kernels recorded since the last clear(), in start order (synchronise first).
    static std::vector<KernelRecord> collect();
    // A table of one window: each kernel's start (from the first kernel's start), duration and
    // how far it pushed the window's end (its share of the critical path when kernels overlap),
    // then the same per kernel and grid, and the window's span against the sum of kernel time.
    static void report(const std::vector<KernelRecord>& kernels, std::FILE* out);
};

}  // namespace helexa::bench
