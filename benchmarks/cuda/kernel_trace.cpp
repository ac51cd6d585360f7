// CUPTI activity plumbing for kernel_trace.h: CUPTI hands filled buffers to a callback on its own
// thread; the records are copied out under a mutex (names included: CUPTI may reuse its string
// storage).
#include "kernel_trace.h"

#include <cupti.h>
#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <regex>

namespace helexa::bench {
namespace {

constexpr size_t kBufferBytes = size_t{8} << 20;

std::mutex g_mutex;
std::vector<KernelRecord> g_records;

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
    *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
    *size = *buffer != nullptr ? kBufferBytes : 0;
    *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
    CUpti_Activity* rec = nullptr;
    std::lock_guard lock(g_mutex);
    while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
        if (rec->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL &&
            rec->kind != CUPTI_ACTIVITY_KIND_KERNEL) {
            continue;
        }
        const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(rec);
        KernelRecord r;
        r.name = k->name != nullptr ? k->name : "?";
        r.start_ns = k->start;
        r.end_ns = k->end;
        r.grid[0] = k->gridX;
        r.grid[1] = k->gridY;
        r.grid[2] = k->gridZ;
        r.block[0] = k->blockX;
        r.block[1] = k->blockY;
        r.block[2] = k->blockZ;
        g_records.push_back(std::move(r));
    }
    std::free(buffer);
}

// "void helexa::kernels::(anonymous namespace)::skinny_matmul_kernel<__nv_bfloat16, ...>(...)"
// -> "skinny_matmul_kernel<__nv_bfloat16, ...>", at most 90 characters.
std::string short_name(const std::string& mangled) {
    int status = 0;
    char* demangled = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
    const std::string name = status == 0 && demangled != nullptr ? demangled : mangled;
    std::free(demangled);
    // Scopes first ("(anonymous namespace)::" holds a parenthesis), then the parameter list.
    static const std::regex scope(R"((\(anonymous namespace\)::|\b[A-Za-z_][A-Za-z_0-9]*::))");
    std::string s = std::regex_replace(name, scope, "");
    int depth = 0;  // the parameter list: the first '(' outside template arguments
    for (size_t i = 0; i < s.size(); ++i) {
        depth += s[i] == '<' ? 1 : s[i] == '>' ? -1 : 0;
        if (s[i] == '(' && depth == 0) {
            s.resize(i);
            break;
        }
    }
    if (s.rfind("void ", 0) == 0) {
        s = s.substr(5);
    }
    return s.size() > 90 ? s.substr(0, 90) : s;
}

}  // namespace

bool KernelTrace::enable() {
    if (cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed) != CUPTI_SUCCESS ||
        cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS) {
        std::fprintf(stderr, "kernel trace: CUPTI refused kernel activity recording\n");
        return false;
    }
    return true;
}

void KernelTrace::clear() {
    cuptiActivityFlushAll(1);
    std::lock_guard lock(g_mutex);
    g_records.clear();
}

std::vector<KernelRecord> KernelTrace::collect() {
    cuptiActivityFlushAll(1);
    std::lock_guard lock(g_mutex);
    std::vector<KernelRecord> out = g_records;
    std::sort(out.begin(), out.end(),
              [](const KernelRecord& a, const KernelRecord& b) { return a.start_ns < b.start_ns; });
    return out;
}

void KernelTrace::report(const std::vector<KernelRecord>& kernels, std::FILE* out) {
    if (kernels.empty()) {
        std::fprintf(out, "kernel trace: no kernels recorded\n");
        return;
    }
    // "adds": how far the kernel pushed the window's end (its end past every earlier kernel's
    // end): the kernel's share of the critical path when kernels overlap under PDL.
    struct Sum {
        int count = 0;
        double busy_us = 0;
        double adds_us = 0;
    };
    std::map<std::string, Sum> by_kernel;
    const uint64_t t0 = kernels.front().start_ns;
    uint64_t max_end = t0;
    double busy_us = 0;
    double idle_us = 0;  // time no kernel was running
    std::fprintf(out, "| # | kernel | grid | start us | dur us | adds us |\n"
                      "|---:|---|---|---:|---:|---:|\n");
    for (size_t i = 0; i < kernels.size(); ++i) {
        const KernelRecord& k = kernels[i];
        const double dur = static_cast<double>(k.end_ns - k.start_ns) * 1e-3;
        if (k.start_ns > max_end) {
            idle_us += static_cast<double>(k.start_ns - max_end) * 1e-3;
        }
        const double adds =
            k.end_ns > max_end ? static_cast<double>(k.end_ns - max_end) * 1e-3 : 0.0;
        const std::string name = short_name(k.name);
        char grid[48];
        std::snprintf(grid, sizeof grid, "%dx%dx%d", k.grid[0], k.grid[1], k.grid[2]);
        std::fprintf(out, "| %zu | %s | %s | %.2f | %.2f | %.2f |\n", i, name.c_str(), grid,
                     static_cast<double>(k.start_ns - t0) * 1e-3, dur, i == 0 ? dur : adds);
        Sum& s = by_kernel[name + " | " + grid];
        s.count += 1;
        s.busy_us += dur;
        s.adds_us += i == 0 ? dur : adds;
        busy_us += dur;
        max_end = std::max(max_end, k.end_ns);
    }
    const double span_us = static_cast<double>(max_end - t0) * 1e-3;
    std::fprintf(out, "\n| kernel | grid | count | adds us | adds each | dur each |\n"
                      "|---|---|---:|---:|---:|---:|\n");
    std::vector<std::pair<std::string, Sum>> rows(by_kernel.begin(), by_kernel.end());
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.second.adds_us > b.second.adds_us; });
    for (const auto& [key, s] : rows) {
        std::fprintf(out, "| %s | %d | %.1f | %.2f | %.2f |\n", key.c_str(), s.count, s.adds_us,
                     s.adds_us / s.count, s.busy_us / s.count);
    }
    std::fprintf(out,
                 "\nwindow: %zu kernels, span %.1f us, kernel time %.1f us (overlaps counted "
                 "twice), no kernel running for %.1f us\n",
                 kernels.size(), span_us, busy_us, idle_us);
}

}  // namespace helexa::bench
