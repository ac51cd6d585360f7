#include "programmatic_edges.h"

#include <cstring>
#include <vector>

#include "cuda_status.h"
#include "helexa/kernels/grid_wait_probe.h"

namespace helexa::cuda {
namespace {

// Far longer than any matmul the probe meets runs before its first reads: a kernel that does not
// wait has read its x (NaNs) long before the fill lands.
constexpr uint64_t kFillDelayNs = 200'000;

// Device buffers of the probe, freed on every path.
struct ProbeBuffers {
    void* x = nullptr;
    void* out = nullptr;
    ~ProbeBuffers() {
        cudaFree(out);
        cudaFree(x);
    }
};

Status copy_out(std::vector<unsigned char>& host, const void* out, cudaStream_t stream) {
    HELEXA_TRY_STATUS(cuda_status(
        cudaMemcpyAsync(host.data(), out, host.size(), cudaMemcpyDeviceToHost, stream),
        "probe copy"));
    return cuda_status(cudaStreamSynchronize(stream), "probe sync");
}

// Captures fill-then-call with the programmatic edge; null when CUDA refuses any part of it (the
// capture is ended and its error cleared either way).
cudaGraphExec_t capture_delayed_fill_then_call(const LibraryCall& call, void* x, size_t x_elems,
                                               uint16_t one_bits, void* out,
                                               cudaStream_t stream) {
    if (cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) {
        (void)cudaGetLastError();
        return nullptr;
    }
    bool captured = kernels::launch_delayed_fill16(x, one_bits, x_elems, kFillDelayNs, stream) ==
                    cudaSuccess;
    captured = captured && make_next_captured_edge_programmatic(stream).has_value();
    captured = captured && call(x, out, stream).has_value();
    cudaGraph_t graph = nullptr;
    captured = cudaStreamEndCapture(stream, &graph) == cudaSuccess && captured;
    cudaGraphExec_t exec = nullptr;
    if (graph != nullptr) {
        if (!captured || cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess) {
            exec = nullptr;
        }
        cudaGraphDestroy(graph);
    }
    (void)cudaGetLastError();
    return exec;
}

}  // namespace

bool stream_is_capturing(cudaStream_t stream) {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    return cudaStreamIsCapturing(stream, &status) == cudaSuccess &&
           status == cudaStreamCaptureStatusActive;
}

Status make_next_captured_edge_programmatic(cudaStream_t stream) {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    const cudaGraphNode_t* deps = nullptr;
    const cudaGraphEdgeData* edges = nullptr;
    size_t n = 0;
    HELEXA_TRY_STATUS(cuda_status(
        cudaStreamGetCaptureInfo(stream, &status, nullptr, nullptr, &deps, &edges, &n),
        "capture info"));
    if (status != cudaStreamCaptureStatusActive || n != 1) {
        return ok();
    }
    cudaGraphNodeType type{};
    HELEXA_TRY_STATUS(cuda_status(cudaGraphNodeGetType(deps[0], &type), "node type"));
    if (type != cudaGraphNodeTypeKernel) {
        return ok();
    }
    cudaGraphNode_t kernel = deps[0];
    cudaGraphEdgeData edge{};
    edge.from_port = cudaGraphKernelNodePortProgrammatic;
    edge.type = cudaGraphDependencyTypeProgrammatic;
    return cuda_status(cudaStreamUpdateCaptureDependencies(stream, &kernel, &edge, 1,
                                                           cudaStreamSetCaptureDependencies),
                       "programmatic capture edge");
}

const char* to_string(GridWaitProbe probe) {
    switch (probe) {
        case GridWaitProbe::kWaits:
            return "waits for its grid dependency";
        case GridWaitProbe::kReadsEarly:
            return "reads its input early (does not wait)";
        case GridWaitProbe::kRefused:
            return "CUDA refused the programmatic edge";
    }
    return "?";
}

Result<GridWaitProbe> first_kernel_waits_for_grid(const LibraryCall& call, size_t x_elems,
                                                  uint16_t one_bits, size_t out_bytes,
                                                  cudaStream_t stream) {
    ProbeBuffers buf;
    HELEXA_TRY_STATUS(cuda_status(cudaMalloc(&buf.x, x_elems * 2), "probe x"));
    HELEXA_TRY_STATUS(cuda_status(cudaMalloc(&buf.out, out_bytes), "probe out"));

    // The reference: the same call, plainly ordered after the fill.
    HELEXA_TRY_STATUS(cuda_status(
        kernels::launch_delayed_fill16(buf.x, one_bits, x_elems, 0, stream), "probe fill"));
    HELEXA_TRY_STATUS(cuda_status(cudaMemsetAsync(buf.out, 0, out_bytes, stream), "probe zero"));
    HELEXA_TRY_STATUS(call(buf.x, buf.out, stream));
    std::vector<unsigned char> expected(out_bytes);
    HELEXA_TRY_STATUS(copy_out(expected, buf.out, stream));

    // All ones bits in a 16-bit float are a NaN: what an early reader sees.
    HELEXA_TRY_STATUS(cuda_status(cudaMemsetAsync(buf.x, 0xFF, x_elems * 2, stream), "probe nan"));
    HELEXA_TRY_STATUS(cuda_status(cudaMemsetAsync(buf.out, 0, out_bytes, stream), "probe zero"));
    HELEXA_TRY_STATUS(cuda_status(cudaStreamSynchronize(stream), "probe sync"));
    cudaGraphExec_t exec =
        capture_delayed_fill_then_call(call, buf.x, x_elems, one_bits, buf.out, stream);
    if (exec == nullptr) {
        return GridWaitProbe::kRefused;
    }
    const cudaError_t launched = cudaGraphLaunch(exec, stream);
    std::vector<unsigned char> seen(out_bytes);
    Status copied = launched == cudaSuccess ? copy_out(seen, buf.out, stream)
                                            : cuda_status(launched, "probe graph launch");
    cudaGraphExecDestroy(exec);
    HELEXA_TRY_STATUS(std::move(copied));
    return std::memcmp(seen.data(), expected.data(), out_bytes) == 0 ? GridWaitProbe::kWaits
                                                                     : GridWaitProbe::kReadsEarly;
}

}  // namespace helexa::cuda
