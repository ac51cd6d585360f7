#include "helexa/node/discovery.h"

#include <dlfcn.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <mutex>
#include <sstream>

#include <fmt/format.h>

namespace helexa::node {

namespace {

// The few NVML declarations we need (no nvml.h at build time). Values from NVML's public API.
using NvmlReturn = int;
using NvmlDevice = void*;
constexpr NvmlReturn kNvmlSuccess = 0;
constexpr NvmlReturn kNvmlErrorLibraryNotFound = 12;
constexpr NvmlReturn kNvmlErrorLibRmVersionMismatch = 18;
constexpr unsigned kNvmlTemperatureGpu = 0;

struct NvmlMemory {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
};
struct NvmlUtilization {
    unsigned gpu;
    unsigned memory;
};

struct NvmlApi {
    NvmlReturn (*init)() = nullptr;
    NvmlReturn (*shutdown)() = nullptr;
    const char* (*error_string)(NvmlReturn) = nullptr;
    NvmlReturn (*driver_version)(char*, unsigned) = nullptr;
    NvmlReturn (*nvml_version)(char*, unsigned) = nullptr;
    NvmlReturn (*cuda_driver_version)(int*) = nullptr;
    NvmlReturn (*device_count)(unsigned*) = nullptr;
    NvmlReturn (*device_by_index)(unsigned, NvmlDevice*) = nullptr;
    NvmlReturn (*device_name)(NvmlDevice, char*, unsigned) = nullptr;
    NvmlReturn (*memory_info)(NvmlDevice, NvmlMemory*) = nullptr;
    NvmlReturn (*compute_capability)(NvmlDevice, int*, int*) = nullptr;
    NvmlReturn (*utilization)(NvmlDevice, NvmlUtilization*) = nullptr;
    NvmlReturn (*temperature)(NvmlDevice, unsigned, unsigned*) = nullptr;
};

template <typename F>
bool bind(void* lib, const char* name, F& out) {
    out = reinterpret_cast<F>(dlsym(lib, name));
    return out != nullptr;
}

constexpr int64_t kMiB = 1024 * 1024;

class NvmlMonitor final : public GpuMonitor {
public:
    NvmlMonitor(std::string library, std::string proc_path)
        : library_(std::move(library)), proc_path_(std::move(proc_path)) {}

    ~NvmlMonitor() override {
        if (initialised_ && api_.shutdown) {
            api_.shutdown();
        }
        if (handle_) {
            dlclose(handle_);
        }
    }

    GpuDiscovery discover() override {
        std::lock_guard lock(mutex_);
        GpuDiscovery d;
        if (!open_locked(d)) {
            return d;
        }
        char buf[96] = {};
        if (api_.nvml_version && api_.nvml_version(buf, sizeof buf) == kNvmlSuccess) {
            d.userspace_version = buf;
        }
        NvmlReturn rc = api_.init();
        if (rc == kNvmlErrorLibRmVersionMismatch) {
            d.status = GpuStatus::kVersionMismatch;
            d.error = "nvmlInit: " + error_text(rc);
            std::ifstream proc(proc_path_);
            std::stringstream text;
            text << proc.rdbuf();
            d.kernel_module_version = parse_kernel_module_version(text.str());
            return d;
        }
        if (rc == kNvmlErrorLibraryNotFound) {
            d.status = GpuStatus::kAbsent;
            return d;
        }
        if (rc != kNvmlSuccess) {
            d.status = GpuStatus::kFailed;
            d.error = "nvmlInit: " + error_text(rc);
            return d;
        }
        initialised_ = true;
        d.status = GpuStatus::kOk;
        std::array<char, 96> version{};
        if (api_.driver_version(version.data(), version.size()) == kNvmlSuccess) {
            d.driver_version = version.data();
        }
        int cuda = 0;
        if (api_.cuda_driver_version && api_.cuda_driver_version(&cuda) == kNvmlSuccess) {
            d.cuda_version = format_cuda_version(cuda);
        }
        unsigned count = 0;
        if ((rc = api_.device_count(&count)) != kNvmlSuccess) {
            d.status = GpuStatus::kFailed;
            d.error = "nvmlDeviceGetCount: " + error_text(rc);
            return d;
        }
        for (unsigned i = 0; i < count; ++i) {
            NvmlDevice dev = nullptr;
            if (api_.device_by_index(i, &dev) != kNvmlSuccess) {
                continue;
            }
            wire::DeviceInfo info;
            info.index = i;
            std::array<char, 96> name{};
            if (api_.device_name(dev, name.data(), name.size()) == kNvmlSuccess) {
                info.name = name.data();
            }
            NvmlMemory mem{};
            if (api_.memory_info(dev, &mem) == kNvmlSuccess) {
                info.total_vram_mb = static_cast<int64_t>(mem.total / kMiB);
            }
            int major = 0;
            int minor = 0;
            if (api_.compute_capability &&
                api_.compute_capability(dev, &major, &minor) == kNvmlSuccess) {
                info.compute_capability = fmt::format("{}.{}", major, minor);
            }
            d.devices.push_back(std::move(info));
        }
        return d;
    }

    std::vector<wire::DeviceHealth> health() override {
        std::lock_guard lock(mutex_);
        std::vector<wire::DeviceHealth> out;
        if (!initialised_) {
            return out;
        }
        unsigned count = 0;
        if (api_.device_count(&count) != kNvmlSuccess) {
            return out;
        }
        for (unsigned i = 0; i < count; ++i) {
            NvmlDevice dev = nullptr;
            if (api_.device_by_index(i, &dev) != kNvmlSuccess) {
                continue;
            }
            wire::DeviceHealth h;
            h.index = i;
            std::array<char, 96> name{};
            if (api_.device_name(dev, name.data(), name.size()) == kNvmlSuccess) {
                h.name = name.data();
            }
            NvmlMemory mem{};
            if (api_.memory_info(dev, &mem) == kNvmlSuccess) {
                h.vram_total_mb = static_cast<int64_t>(mem.total / kMiB);
                h.vram_used_mb = static_cast<int64_t>(mem.used / kMiB);
                h.vram_free_mb = static_cast<int64_t>(mem.free / kMiB);
            }
            NvmlUtilization util{};
            if (api_.utilization && api_.utilization(dev, &util) == kNvmlSuccess) {
                h.utilization_percent = util.gpu;
            }
            unsigned temp = 0;
            if (api_.temperature && api_.temperature(dev, kNvmlTemperatureGpu, &temp) ==
                                        kNvmlSuccess) {
                h.temperature_c = temp;
            }
            out.push_back(std::move(h));
        }
        return out;
    }

private:
    bool open_locked(GpuDiscovery& d) {
        if (handle_) {
            return true;
        }
        handle_ = dlopen(library_.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!handle_) {
            d.status = GpuStatus::kAbsent;  // CPU-only host: silent
            return false;
        }
        bool okay = bind(handle_, "nvmlInit_v2", api_.init) &&
                    bind(handle_, "nvmlShutdown", api_.shutdown) &&
                    bind(handle_, "nvmlErrorString", api_.error_string) &&
                    bind(handle_, "nvmlSystemGetDriverVersion", api_.driver_version) &&
                    bind(handle_, "nvmlDeviceGetCount_v2", api_.device_count) &&
                    bind(handle_, "nvmlDeviceGetHandleByIndex_v2", api_.device_by_index) &&
                    bind(handle_, "nvmlDeviceGetName", api_.device_name) &&
                    bind(handle_, "nvmlDeviceGetMemoryInfo", api_.memory_info);
        // Optional entry points (older drivers lack some).
        bind(handle_, "nvmlSystemGetNVMLVersion", api_.nvml_version);
        bind(handle_, "nvmlSystemGetCudaDriverVersion_v2", api_.cuda_driver_version);
        bind(handle_, "nvmlDeviceGetCudaComputeCapability", api_.compute_capability);
        bind(handle_, "nvmlDeviceGetUtilizationRates", api_.utilization);
        bind(handle_, "nvmlDeviceGetTemperature", api_.temperature);
        if (!okay) {
            d.status = GpuStatus::kFailed;
            d.error = fmt::format("{} lacks required NVML entry points", library_);
            dlclose(handle_);
            handle_ = nullptr;
            api_ = NvmlApi{};
            return false;
        }
        return true;
    }

    std::string error_text(NvmlReturn rc) const {
        const char* s = api_.error_string ? api_.error_string(rc) : nullptr;
        return s ? fmt::format("{} (code {})", s, rc) : fmt::format("NVML error {}", rc);
    }

    std::mutex mutex_;
    std::string library_;
    std::string proc_path_;
    void* handle_ = nullptr;
    NvmlApi api_;
    bool initialised_ = false;
};

}  // namespace

std::unique_ptr<GpuMonitor> make_nvml_monitor(std::string library, std::string proc_version_path) {
    return std::make_unique<NvmlMonitor>(std::move(library), std::move(proc_version_path));
}

std::optional<std::string> parse_kernel_module_version(std::string_view text) {
    auto pos = text.find("Kernel Module");
    if (pos == std::string_view::npos) {
        return std::nullopt;
    }
    pos += std::string_view("Kernel Module").size();
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t')) {
        ++pos;
    }
    // Some builds print "for x86_64" or a flavour word first; take the first dotted number.
    while (pos < text.size()) {
        auto end = text.find_first_of(" \t\n", pos);
        auto word = text.substr(pos, end == std::string_view::npos ? std::string_view::npos
                                                                   : end - pos);
        bool dotted = !word.empty() && word.find('.') != std::string_view::npos &&
                      std::all_of(word.begin(), word.end(),
                                  [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
        if (dotted) {
            return std::string(word);
        }
        if (end == std::string_view::npos || text[end] == '\n') {
            break;
        }
        pos = text.find_first_not_of(" \t", end);
        if (pos == std::string_view::npos) {
            break;
        }
    }
    return std::nullopt;
}

std::optional<std::string> cuda_unavailable_reason(const GpuDiscovery& d) {
    if (d.status != GpuStatus::kVersionMismatch) {
        return std::nullopt;
    }
    return fmt::format(
        "NVIDIA driver/library version mismatch: userspace NVML {} but kernel module {} is "
        "loaded (the driver was updated without a reboot); reboot the host to reload the kernel "
        "module",
        d.userspace_version.value_or("(unknown)"), d.kernel_module_version.value_or("(unknown)"));
}

std::string format_cuda_version(int version) {
    return fmt::format("{}.{}", version / 1000, (version % 1000) / 10);
}

std::string host_name() {
    std::array<char, 256> buf{};
    if (gethostname(buf.data(), buf.size() - 1) != 0) {
        return "unknown";
    }
    return buf.data();
}

std::string os_description() {
    utsname u{};
    if (uname(&u) != 0) {
        return "unknown";
    }
    return fmt::format("{} {}", u.sysname, u.release);
}

}  // namespace helexa::node
