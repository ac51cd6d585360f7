# CUDA: sm_90a (H100/H200) by default; release bundles pass "86;89;90a;120".
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
    set(CMAKE_CUDA_ARCHITECTURES 90a)
endif()
enable_language(CUDA)
# CMake 3.25 does not know how to ask nvcc 13 for C++20; device code is C++17 (host code in .cpp
# files stays C++20).
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
find_package(CUDAToolkit REQUIRED)

# Marks a target whose object files `make cuda-check` compiles (see the top-level CMakeLists).
function(helexa_cuda_compile_check target)
    set_property(GLOBAL APPEND PROPERTY HELEXA_CUDA_CHECK_TARGETS ${target})
endfunction()
