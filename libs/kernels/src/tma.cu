// Host side of tma.cuh: the device check and the tensor-map encoding, through the driver's
// cuTensorMapEncodeTiled found by the runtime (no link against libcuda).
#include "tma.cuh"

#include <cudaTypedefs.h>

#include "launch.cuh"

namespace helexa::kernels {
namespace {

PFN_cuTensorMapEncodeTiled_v12000 encoder() {
    static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
        void* p = nullptr;
        cudaDriverEntryPointQueryResult found{};
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000,
                                             cudaEnableDefault, &found) != cudaSuccess ||
            found != cudaDriverEntryPointSuccess) {
            p = nullptr;
        }
        return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
    }();
    return fn;
}

}  // namespace

bool tma_supported() {
    // TMA arrived with thread-block clusters (compute capability 9.0).
    static const bool supported = clusters_supported() && encoder() != nullptr;
    return supported;
}

bool encode_tensor_map(CUtensorMap* map, const void* base, int rank, const uint64_t* dims,
                       const uint64_t* strides, const uint32_t* box) {
    const auto encode = encoder();
    if (encode == nullptr || rank < 2 || rank > 4 || box[0] * 2 != 128) {
        return false;
    }
    cuuint64_t d[4];
    cuuint64_t s[3];
    cuuint32_t b[4];
    cuuint32_t e[4] = {1, 1, 1, 1};
    for (int i = 0; i < rank; ++i) {
        d[i] = dims[i];
        b[i] = box[i];
        if (i + 1 < rank) {
            s[i] = strides[i];
        }
    }
    // bf16 and f16 are both 2-byte elements to the copy engine; only the swizzle and the
    // zero fill matter, and zero is zero in both.
    return encode(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, static_cast<cuuint32_t>(rank),
                  const_cast<void*>(base), d, s, b, e, CU_TENSOR_MAP_INTERLEAVE_NONE,
                  CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                  CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

}  // namespace helexa::kernels
