// The weights of an HF-layout snapshot: model.safetensors, or the shards listed by
// model.safetensors.index.json (weight_map: tensor name -> shard file), all memory-mapped.
// Thread-safety: immutable after open; share freely for reading.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "helexa/common/result.h"
#include "helexa/engine/safetensors.h"

namespace helexa::engine {

class WeightSet {
public:
    // Opens every shard of the snapshot at `dir`. Errors: kIo when no safetensors file exists
    // or a shard named by the index is missing; kInvalidRequest for a malformed index/header.
    static Result<WeightSet> open(const std::filesystem::path& dir);

    const TensorInfo* find(const std::string& name) const;
    // The tensor `name` with exactly `shape`. Errors: kInvalidRequest naming the tensor and the
    // expected vs actual shape, or that it is missing.
    Result<const TensorInfo*> require(const std::string& name,
                                      const std::vector<int64_t>& shape) const;
    int64_t total_bytes() const;
    size_t size() const { return by_name_.size(); }

private:
    std::vector<std::shared_ptr<SafetensorsFile>> files_;
    std::unordered_map<std::string, const TensorInfo*> by_name_;
};

}  // namespace helexa::engine
