// CK(call): the GPU check programs' way of failing on a CUDA error — print it with the call site
// and exit 2 (a check program has nothing to recover).
#pragma once

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

#define CK(x)                                                                         \
    do {                                                                              \
        cudaError_t e_ = (x);                                                         \
        if (e_ != cudaSuccess) {                                                      \
            std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, \
                        __LINE__);                                                    \
            std::exit(2);                                                             \
        }                                                                             \
    } while (0)
