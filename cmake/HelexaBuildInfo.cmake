# Build info (git SHA, dirty flag, time, compiler, build type, CUDA, dependency versions).
# The values file is regenerated on every build so the SHA is never stale; HELEXA_BUILD_SHA in the
# environment (at build time) overrides git, as in the original.
set(HELEXA_BUILD_INFO_CPP "${PROJECT_BINARY_DIR}/generated/build_info_values.cpp")
set(HELEXA_CUDA_ARCHS_STR "")
if(HELEXA_CUDA)
    set(HELEXA_CUDA_ARCHS_STR "${CMAKE_CUDA_ARCHITECTURES}")
endif()
add_custom_target(helexa_build_info_gen ALL
    COMMAND ${CMAKE_COMMAND}
        -DOUT=${HELEXA_BUILD_INFO_CPP}
        -DSRC=${PROJECT_SOURCE_DIR}
        -DVERSION=${PROJECT_VERSION}
        -DCOMPILER=${CMAKE_CXX_COMPILER_ID}-${CMAKE_CXX_COMPILER_VERSION}
        -DBUILD_TYPE=${CMAKE_BUILD_TYPE}
        -DCUDA=${HELEXA_CUDA}
        -DCUDA_ARCHS=${HELEXA_CUDA_ARCHS_STR}
        -DBOOST=${Boost_VERSION}
        -DSPDLOG=${spdlog_VERSION}
        -DJSON=${nlohmann_json_VERSION}
        -DTOMLPP=${tomlplusplus_VERSION}
        -P ${PROJECT_SOURCE_DIR}/cmake/write_build_info.cmake
    BYPRODUCTS ${HELEXA_BUILD_INFO_CPP}
    COMMENT "build info")
