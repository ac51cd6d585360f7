// Build information: git SHA (HELEXA_BUILD_SHA at build time overrides git), dirty flag, build
// time, compiler, build type, CUDA on/off and architectures, key dependency versions.
// Printed by `--version` and served as JSON by neuron's GET /version. Immutable; thread-safe.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace helexa {

namespace detail {
struct BuildInfoValues {
    const char* version;
    const char* git_sha;
    bool dirty;
    const char* build_time;
    const char* compiler;
    const char* build_type;
    bool cuda;
    const char* cuda_archs;
    const char* boost;
    const char* spdlog;
    const char* nlohmann_json;
    const char* tomlplusplus;
};
extern const BuildInfoValues kBuildInfoValues;
}  // namespace detail

struct BuildInfo {
    std::string version;
    std::string git_sha;
    bool dirty = false;
    std::string build_time;
    std::string compiler;
    std::string build_type;
    bool cuda = false;
    std::string cuda_archs;
    nlohmann::json dependencies;  // {"boost": "...", ...}
};

const BuildInfo& build_info();
nlohmann::json build_info_json();
// "cortex 0.1.0 (abc1234, dirty) built ... " followed by one line per field.
std::string build_info_text(const std::string& program);

}  // namespace helexa
