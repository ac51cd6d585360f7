// A comma-separated list of integers from a benchmark flag ("8,32,64"; "" gives none; empty
// items are skipped). The GPU benchmarks' list flags share it.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

inline std::vector<int64_t> parse_list(const std::string& s) {
    std::vector<int64_t> out;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');) {
        if (!item.empty()) {
            out.push_back(std::stoll(item));
        }
    }
    return out;
}
