// Hardware discovery for GET /discovery and GET /health. GPU facts come from NVML, loaded at run
// time with dlopen (libnvidia-ml.so.1), so the binary has no link dependency on the driver and a
// CPU-only host (library absent) runs silently with no devices.
//
// Three outcomes matter (features §4, #19):
//   absent   -> CPU host, no devices, no reason, no log noise;
//   mismatch -> "Driver/library version mismatch" (NVML_ERROR_LIB_RM_VERSION_MISMATCH, the
//               un-rebooted driver update): cuda_unavailable_reason names the userspace NVML
//               version and the loaded kernel module version (/proc/driver/nvidia/version) and
//               says to reboot; neuron logs one ERROR, skips default loads, 503s loads;
//   other failures (no devices, permissions) -> no devices, a warning, no reason.
// GpuMonitor is the seam tests use to inject these outcomes.
// Thread-safety: GpuMonitor implementations are thread-safe (NVML calls are serialised).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "helexa/wire/neuron_protocol.h"

namespace helexa::node {

enum class GpuStatus { kAbsent, kOk, kVersionMismatch, kFailed };

struct GpuDiscovery {
    GpuStatus status = GpuStatus::kAbsent;
    std::optional<std::string> driver_version;
    std::optional<std::string> cuda_version;  // "12.4"
    std::vector<wire::DeviceInfo> devices;
    std::optional<std::string> userspace_version;      // NVML library version, when known
    std::optional<std::string> kernel_module_version;  // read on a mismatch
    std::string error;                             // the failing call and its message
};

class GpuMonitor {
public:
    virtual ~GpuMonitor() = default;
    // Static facts, probed once at start-up.
    virtual GpuDiscovery discover() = 0;
    // Live per-device stats (empty when there is no usable GPU).
    virtual std::vector<wire::DeviceHealth> health() = 0;
};

// NVML through dlopen. `library` is the soname or path to load; `proc_version_path` is where
// the kernel module version is read from.
std::unique_ptr<GpuMonitor> make_nvml_monitor(
    std::string library = "libnvidia-ml.so.1",
    std::string proc_version_path = "/proc/driver/nvidia/version");

// "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 ..." -> "550.54.14".
std::optional<std::string> parse_kernel_module_version(std::string_view proc_text);

// The operator-facing reason for a mismatch host (nullopt for any other status).
std::optional<std::string> cuda_unavailable_reason(const GpuDiscovery& discovery);

// "12040" style CUDA driver version -> "12.4".
std::string format_cuda_version(int version);

// hostname and "Linux 6.1.0-18-amd64" (uname).
std::string host_name();
std::string os_description();

}  // namespace helexa::node
