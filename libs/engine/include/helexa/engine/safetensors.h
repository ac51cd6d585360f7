// safetensors files: a bounds-checked header parser, a memory-mapped reader and a writer.
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape,
// data_offsets: [begin, end]}, "__metadata__": {...}}, then the data region. Every offset, shape
// and dtype is validated against the file size before any tensor is handed out, so a truncated
// or hostile file gives an error, never an out-of-bounds read.
// Use SafetensorsFile for one file; weights.h (WeightSet) resolves a snapshot's single or
// sharded set. Thread-safety: an opened file is immutable; share it freely for reading.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "helexa/common/result.h"
#include "helexa/engine/backend.h"

namespace helexa::engine {

struct TensorInfo {
    std::string name;
    DType dtype = DType::kF32;
    std::vector<int64_t> shape;
    std::span<const std::byte> bytes;  // inside the owning file's mapping

    int64_t numel() const;
};

// Parses a complete safetensors image (header + data) held in memory; the returned infos point
// into `image`. Errors: kInvalidRequest naming the offending tensor / field. Used by the fuzzer.
Result<std::vector<TensorInfo>> parse_safetensors(std::span<const std::byte> image);

class SafetensorsFile {
public:
    // Memory-maps `path` read-only and validates its header. Errors: kIo (open/map),
    // kInvalidRequest (malformed header, with the path in the message).
    static Result<std::unique_ptr<SafetensorsFile>> open(const std::filesystem::path& path);
    ~SafetensorsFile();
    SafetensorsFile(const SafetensorsFile&) = delete;
    SafetensorsFile& operator=(const SafetensorsFile&) = delete;

    const std::filesystem::path& path() const { return path_; }
    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    const TensorInfo* find(const std::string& name) const;

private:
    SafetensorsFile() = default;
    std::filesystem::path path_;
    void* map_ = nullptr;
    size_t map_size_ = 0;
    std::vector<TensorInfo> tensors_;
    std::map<std::string, size_t> index_;
};

// One tensor to write: raw little-endian bytes already in `dtype`.
struct TensorToWrite {
    std::string name;
    DType dtype = DType::kF32;
    std::vector<int64_t> shape;
    std::span<const std::byte> bytes;
};

// Writes a safetensors file (header padded to 8 bytes, metadata {"format":"pt"}).
// Errors: kIo; kInvalidRequest when a tensor's byte count does not match its shape.
Status write_safetensors(const std::filesystem::path& path,
                         const std::vector<TensorToWrite>& tensors);

// bf16 <-> f32 and f16 <-> f32 scalar conversions (round-to-nearest-even on the way down).
uint16_t f32_to_bf16(float value);
float bf16_to_f32(uint16_t value);
uint16_t f32_to_f16(float value);
float f16_to_f32(uint16_t value);

}  // namespace helexa::engine
