// Thread-block clusters where the compilation target has them (compute capability 9.0 and later;
// the host pass, which only launches, counts as having them). The kernels that use clusters are
// compiled for every target of a build (cuda-release: 8.6 to 12.0), and their launchers ask for
// clusters only where clusters_supported() (launch.cuh): on an older target the cluster calls
// below compile to a trap that no launch reaches, and the kernel runs its one-CTA form there.
// The group_* helpers serve kernels written for C CTAs a row: a cluster of C, or for C == 1 the
// CTA alone, on every device.
#pragma once

#include <cooperative_groups.h>

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
#define HELEXA_HAS_CLUSTERS 1
#else
#define HELEXA_HAS_CLUSTERS 0
#endif

namespace helexa::kernels {

// Every CTA of the cluster reaches it before any leaves; memory written before is visible after.
__device__ __forceinline__ void cluster_sync() {
#if HELEXA_HAS_CLUSTERS
    cooperative_groups::this_cluster().sync();
#else
    __trap();
#endif
}

__device__ __forceinline__ int cluster_rank() {
#if HELEXA_HAS_CLUSTERS
    return static_cast<int>(cooperative_groups::this_cluster().block_rank());
#else
    __trap();
    return 0;
#endif
}

// `p` (this CTA's shared memory) as CTA `rank` of the cluster holds it (distributed shared
// memory).
template <typename T>
__device__ __forceinline__ T* cluster_peer(T* p, int rank) {
#if HELEXA_HAS_CLUSTERS
    return cooperative_groups::this_cluster().map_shared_rank(p, rank);
#else
    __trap();
    (void)rank;
    return p;
#endif
}

template <int C>
__device__ __forceinline__ void group_sync() {
    if constexpr (C == 1) {
        __syncthreads();
    } else {
        cluster_sync();
    }
}

template <int C>
__device__ __forceinline__ int group_rank() {
    if constexpr (C == 1) {
        return 0;
    } else {
        return cluster_rank();
    }
}

template <int C, typename T>
__device__ __forceinline__ T* group_peer(T* p, int rank) {
    if constexpr (C == 1) {
        (void)rank;
        return p;
    } else {
        return cluster_peer(p, rank);
    }
}

}  // namespace helexa::kernels
