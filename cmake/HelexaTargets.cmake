# helexa_add_library / helexa_add_test / helexa_add_fuzzer / helexa_add_benchmark.
include(GoogleTest)

# Warnings for our own code only (third-party headers come in as SYSTEM).
function(helexa_target_warnings target)
    if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
        target_compile_options(${target} PRIVATE
            $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wnon-virtual-dtor
            -Wno-missing-field-initializers>
            $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU>>:-Wshadow=local>)
        if(HELEXA_WERROR)
            target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
        endif()
    endif()
endfunction()

function(helexa_sanitize target)
    if(HELEXA_SANITIZE)
        target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
            -fno-sanitize-recover=undefined)
        target_link_options(${target} PRIVATE -fsanitize=address,undefined)
    endif()
    if(HELEXA_FUZZ)
        # -fno-sanitize=function: clang 14 cannot emit UBSan's function-type prologue for split
        # C++20 coroutines ("Cannot represent a difference across sections"), so libs/net and
        # everything on it would not build for fuzzing.
        target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link,address,undefined
            -fno-sanitize=function)
    endif()
endfunction()

# helexa_add_library(<lib> SOURCES ... PUBLIC_DEPS ... PRIVATE_DEPS ...)
# Creates target helexa_<lib> (alias helexa::<lib>) with include/ as its public include dir.
function(helexa_add_library lib)
    cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
    add_library(helexa_${lib} STATIC ${ARG_SOURCES})
    add_library(helexa::${lib} ALIAS helexa_${lib})
    target_include_directories(helexa_${lib}
        PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
        PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
    target_link_libraries(helexa_${lib} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
    helexa_target_warnings(helexa_${lib})
    helexa_sanitize(helexa_${lib})
    if(HELEXA_SANITIZE OR HELEXA_FUZZ)
        target_link_options(helexa_${lib} INTERFACE -fsanitize=address,undefined)
    endif()
endfunction()

# helexa_add_test(<name> SOURCES ... LIBS ... [LABELS unit|integration|e2e|gpu|slow] [TIMEOUT s]
#                  [ONE_PROCESS])
# One GoogleTest executable; each TEST is its own CTest case, unless ONE_PROCESS makes the whole
# executable one case (for suites whose fixture is too expensive to start per case).
function(helexa_add_test name)
    cmake_parse_arguments(ARG "ONE_PROCESS" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
    if(NOT ARG_LABELS)
        set(ARG_LABELS unit)
    endif()
    if(NOT ARG_TIMEOUT)
        set(ARG_TIMEOUT 120)
    endif()
    add_executable(${name} ${ARG_SOURCES})
    target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gtest_main GTest::gmock)
    target_compile_definitions(${name} PRIVATE
        HELEXA_SOURCE_DIR="${PROJECT_SOURCE_DIR}" HELEXA_BINARY_DIR="${PROJECT_BINARY_DIR}")
    helexa_target_warnings(${name})
    helexa_sanitize(${name})
    if(ARG_ONE_PROCESS)
        # The cases share an expensive suite-level fixture (e.g. daemons started once): run the
        # executable as one CTest test instead of one process per case.
        add_test(NAME ${name} COMMAND ${name})
        set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
    else()
        gtest_discover_tests(${name}
            PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
            DISCOVERY_TIMEOUT 60)
    endif()
endfunction()

# helexa_add_fuzzer(<name> SOURCES ... LIBS ...): a libFuzzer target, built only with
# -DHELEXA_FUZZ=ON under clang (see docs/fuzzing.md).
function(helexa_add_fuzzer name)
    cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
    if(NOT HELEXA_FUZZ)
        return()
    endif()
    add_executable(${name} ${ARG_SOURCES})
    target_link_libraries(${name} PRIVATE ${ARG_LIBS})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined
        -fno-sanitize=function)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    helexa_target_warnings(${name})
endfunction()

# helexa_add_benchmark(<name> SOURCES ... LIBS ...): a program that prints numbers.
function(helexa_add_benchmark name)
    cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
    if(NOT HELEXA_BENCHMARKS)
        return()
    endif()
    add_executable(${name} ${ARG_SOURCES})
    target_link_libraries(${name} PRIVATE ${ARG_LIBS})
    helexa_target_warnings(${name})
endfunction()
