// WeightSet: a snapshot's single or sharded safetensors set.
#include "helexa/engine/weights.h"

#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

namespace helexa::engine {
namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        s += (i ? ", " : "") + std::to_string(shape[i]);
    }
    return s + "]";
}

}  // namespace

Result<WeightSet> WeightSet::open(const std::filesystem::path& dir) {
    WeightSet set;
    std::vector<std::filesystem::path> shards;
    const auto index_path = dir / "model.safetensors.index.json";
    std::error_code ec;
    if (std::filesystem::exists(index_path, ec)) {
        std::ifstream in(index_path);
        auto json = nlohmann::json::parse(in, nullptr, false);
        if (json.is_discarded() || !json.is_object() || !json.contains("weight_map") ||
            !json["weight_map"].is_object()) {
            return fail(ErrorCode::kInvalidRequest,
                        index_path.string() + ": expected an object with a weight_map object");
        }
        std::set<std::string> names;
        for (const auto& [tensor, file] : json["weight_map"].items()) {
            if (!file.is_string()) {
                return fail(ErrorCode::kInvalidRequest,
                            index_path.string() + ": weight_map['" + tensor +
                                "'] is not a file name");
            }
            const auto name = file.get<std::string>();
            // Shards live beside the index; a path that climbs out is not a shard.
            if (name.empty() || name.find('/') != std::string::npos || name == "..") {
                return fail(ErrorCode::kInvalidRequest,
                            index_path.string() + ": invalid shard name '" + name + "'");
            }
            names.insert(name);
        }
        for (const auto& n : names) {
            shards.push_back(dir / n);
        }
    } else if (std::filesystem::exists(dir / "model.safetensors", ec)) {
        shards.push_back(dir / "model.safetensors");
    } else {
        return fail(ErrorCode::kIo, "no model.safetensors or model.safetensors.index.json in " +
                                        dir.string());
    }
    for (const auto& shard : shards) {
        auto file = SafetensorsFile::open(shard);
        if (!file) {
            return tl::unexpected(std::move(file.error()));
        }
        set.files_.push_back(std::shared_ptr<SafetensorsFile>(std::move(*file)));
        for (const auto& info : set.files_.back()->tensors()) {
            set.by_name_[info.name] = &info;
        }
    }
    return set;
}

const TensorInfo* WeightSet::find(const std::string& name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
}

Result<const TensorInfo*> WeightSet::require(const std::string& name,
                                             const std::vector<int64_t>& shape) const {
    const TensorInfo* info = find(name);
    if (info == nullptr) {
        return fail(ErrorCode::kInvalidRequest, "missing tensor '" + name + "'");
    }
    if (info->shape != shape) {
        return fail(ErrorCode::kInvalidRequest, "tensor '" + name + "' has shape " +
                                                    shape_text(info->shape) + ", expected " +
                                                    shape_text(shape));
    }
    return info;
}

int64_t WeightSet::total_bytes() const {
    int64_t n = 0;
    for (const auto& [name, info] : by_name_) {
        n += static_cast<int64_t>(info->bytes.size());
    }
    return n;
}

}  // namespace helexa::engine
