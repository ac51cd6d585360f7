#include "helexa/common/build_info.h"

#include <fmt/format.h>

namespace helexa {

const BuildInfo& build_info() {
    static const BuildInfo info = [] {
        const auto& v = detail::kBuildInfoValues;
        BuildInfo b;
        b.version = v.version;
        b.git_sha = v.git_sha;
        b.dirty = v.dirty;
        b.build_time = v.build_time;
        b.compiler = v.compiler;
        b.build_type = v.build_type[0] != '\0' ? v.build_type : "unspecified";
        b.cuda = v.cuda;
        b.cuda_archs = v.cuda_archs;
        b.dependencies = {{"boost", v.boost},
                          {"spdlog", v.spdlog},
                          {"nlohmann_json", v.nlohmann_json},
                          {"tomlplusplus", v.tomlplusplus}};
        return b;
    }();
    return info;
}

nlohmann::json build_info_json() {
    const BuildInfo& b = build_info();
    return {{"version", b.version},       {"git_sha", b.git_sha},
            {"dirty", b.dirty},           {"build_time", b.build_time},
            {"compiler", b.compiler},     {"build_type", b.build_type},
            {"cuda", b.cuda},             {"cuda_archs", b.cuda_archs},
            {"dependencies", b.dependencies}};
}

std::string build_info_text(const std::string& program) {
    const BuildInfo& b = build_info();
    std::string out = fmt::format("{} {} ({}{})\n", program, b.version,
                                  b.git_sha.substr(0, 12), b.dirty ? ", dirty" : "");
    out += fmt::format("git_sha:    {}\n", b.git_sha);
    out += fmt::format("dirty:      {}\n", b.dirty);
    out += fmt::format("built:      {}\n", b.build_time);
    out += fmt::format("compiler:   {}\n", b.compiler);
    out += fmt::format("build_type: {}\n", b.build_type);
    out += fmt::format("cuda:       {}{}\n", b.cuda ? "on" : "off",
                       b.cuda ? " (" + b.cuda_archs + ")" : "");
    for (const auto& [name, version] : b.dependencies.items()) {
        out += fmt::format("{:<11} {}\n", name + ":", version.get<std::string>());
    }
    return out;
}

}  // namespace helexa
