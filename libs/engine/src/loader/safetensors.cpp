// safetensors: bounds-checked header parsing, read-only mmap, writer and dtype conversions.
#include "helexa/engine/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "helexa/engine/cpu_backend.h"

namespace helexa::engine {
namespace {

// A header beyond this is not a model file (real ones are a few hundred KB at most).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
constexpr int64_t kMaxDim = int64_t{1} << 40;

Result<DType> parse_dtype(const std::string& s) {
    if (s == "F32") {
        return DType::kF32;
    }
    if (s == "F16") {
        return DType::kF16;
    }
    if (s == "BF16") {
        return DType::kBF16;
    }
    return fail(ErrorCode::kInvalidRequest,
                "unsupported dtype '" + s + "' (supported: F32, F16, BF16)");
}

Status bad(const std::string& tensor, const std::string& what) {
    return fail(ErrorCode::kInvalidRequest,
                "safetensors header: tensor '" + tensor + "': " + what);
}

}  // namespace

int64_t TensorInfo::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) {
        n *= d;
    }
    return n;
}

Result<std::vector<TensorInfo>> parse_safetensors(std::span<const std::byte> image) {
    if (image.size() < 8) {
        return fail(ErrorCode::kInvalidRequest, "safetensors: file shorter than its 8-byte header");
    }
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) {
        header_len = (header_len << 8) | static_cast<uint8_t>(image[static_cast<size_t>(i)]);
    }
    if (header_len > kMaxHeaderBytes || header_len > image.size() - 8) {
        return fail(ErrorCode::kInvalidRequest,
                    "safetensors: header length " + std::to_string(header_len) +
                        " exceeds the file (" + std::to_string(image.size()) + " bytes)");
    }
    const auto* hdr = reinterpret_cast<const char*>(image.data() + 8);
    auto json = nlohmann::json::parse(hdr, hdr + header_len, nullptr, false);
    if (json.is_discarded() || !json.is_object()) {
        return fail(ErrorCode::kInvalidRequest, "safetensors: header is not a JSON object");
    }
    const auto data = image.subspan(8 + header_len);
    std::vector<TensorInfo> out;
    out.reserve(json.size());
    for (const auto& [name, entry] : json.items()) {
        if (name == "__metadata__") {
            continue;
        }
        if (!entry.is_object()) {
            return tl::unexpected(bad(name, "entry is not an object").error());
        }
        auto dt = entry.find("dtype");
        auto shape = entry.find("shape");
        auto offsets = entry.find("data_offsets");
        if (dt == entry.end() || !dt->is_string() || shape == entry.end() ||
            !shape->is_array() || offsets == entry.end() || !offsets->is_array() ||
            offsets->size() != 2) {
            return tl::unexpected(
                bad(name, "needs string dtype, array shape and [begin, end] data_offsets")
                    .error());
        }
        TensorInfo info;
        info.name = name;
        auto dtype = parse_dtype(dt->get<std::string>());
        if (!dtype) {
            return tl::unexpected(bad(name, dtype.error().message()).error());
        }
        info.dtype = *dtype;
        int64_t numel = 1;
        for (const auto& d : *shape) {
            if (!d.is_number_unsigned() || d.get<uint64_t>() > static_cast<uint64_t>(kMaxDim)) {
                return tl::unexpected(bad(name, "shape entries must be non-negative integers")
                                          .error());
            }
            const auto dim = static_cast<int64_t>(d.get<uint64_t>());
            if (dim != 0 && numel > kMaxDim / dim) {
                return tl::unexpected(bad(name, "shape overflows").error());
            }
            numel *= dim;
            info.shape.push_back(dim);
        }
        const auto& b = (*offsets)[0];
        const auto& e = (*offsets)[1];
        if (!b.is_number_unsigned() || !e.is_number_unsigned()) {
            return tl::unexpected(bad(name, "data_offsets must be non-negative integers").error());
        }
        const uint64_t begin = b.get<uint64_t>();
        const uint64_t end = e.get<uint64_t>();
        if (begin > end || end > data.size()) {
            return tl::unexpected(bad(name, "data_offsets [" + std::to_string(begin) + ", " +
                                                std::to_string(end) + "] outside the data (" +
                                                std::to_string(data.size()) + " bytes)")
                                      .error());
        }
        if (end - begin != static_cast<uint64_t>(numel * dtype_size(info.dtype))) {
            return tl::unexpected(bad(name, "byte length does not match shape and dtype").error());
        }
        info.bytes = data.subspan(begin, end - begin);
        out.push_back(std::move(info));
    }
    return out;
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return fail(ErrorCode::kIo, "cannot open " + path.string() + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        return fail(ErrorCode::kIo, "cannot stat " + path.string() + ": " + std::strerror(err));
    }
    std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
    file->path_ = path;
    file->map_size_ = static_cast<size_t>(st.st_size);
    if (file->map_size_ > 0) {
        void* map = ::mmap(nullptr, file->map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            const int err = errno;
            ::close(fd);
            return fail(ErrorCode::kIo, "cannot map " + path.string() + ": " + std::strerror(err));
        }
        file->map_ = map;
    }
    ::close(fd);
    auto tensors = parse_safetensors(
        std::span<const std::byte>(static_cast<const std::byte*>(file->map_), file->map_size_));
    if (!tensors) {
        return fail(std::move(tensors.error()).with_context(path.string()));
    }
    file->tensors_ = std::move(*tensors);
    for (size_t i = 0; i < file->tensors_.size(); ++i) {
        file->index_[file->tensors_[i].name] = i;
    }
    return file;
}

SafetensorsFile::~SafetensorsFile() {
    if (map_ != nullptr) {
        ::munmap(map_, map_size_);
    }
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

Status write_safetensors(const std::filesystem::path& path,
                         const std::vector<TensorToWrite>& tensors) {
    nlohmann::json header = nlohmann::json::object();
    header["__metadata__"] = {{"format", "pt"}};
    uint64_t offset = 0;
    for (const auto& t : tensors) {
        int64_t numel = 1;
        for (int64_t d : t.shape) {
            numel *= d;
        }
        if (static_cast<int64_t>(t.bytes.size()) != numel * dtype_size(t.dtype)) {
            return fail(ErrorCode::kInvalidRequest,
                        "write_safetensors: '" + t.name + "' byte count does not match shape");
        }
        header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))},
                          {"shape", t.shape},
                          {"data_offsets", {offset, offset + t.bytes.size()}}};
        offset += t.bytes.size();
    }
    std::string text = header.dump();
    while (text.size() % 8 != 0) {
        text.push_back(' ');
    }
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) {
        return fail(ErrorCode::kIo, "cannot write " + path.string());
    }
    uint64_t n = text.size();
    char len[8];
    for (char& c : len) {
        c = static_cast<char>(n & 0xff);
        n >>= 8;
    }
    out.write(len, 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& t : tensors) {
        out.write(reinterpret_cast<const char*>(t.bytes.data()),
                  static_cast<std::streamsize>(t.bytes.size()));
    }
    out.close();
    if (!out) {
        return fail(ErrorCode::kIo, "short write to " + path.string());
    }
    return ok();
}

uint16_t f32_to_bf16(float value) {
    uint32_t bits = 0;
    std::memcpy(&bits, &value, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) {  // NaN stays NaN
        return static_cast<uint16_t>((bits >> 16) | 0x40u);
    }
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return static_cast<uint16_t>(bits >> 16);
}

float bf16_to_f32(uint16_t value) {
    const uint32_t bits = static_cast<uint32_t>(value) << 16;
    float f = 0;
    std::memcpy(&f, &bits, 4);
    return f;
}

uint16_t f32_to_f16(float value) {
    uint32_t x = 0;
    std::memcpy(&x, &value, 4);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t abs = x & 0x7fffffffu;
    if (abs > 0x7f800000u) {
        return static_cast<uint16_t>(sign | 0x7e00u);
    }
    if (abs >= 0x477ff000u) {  // rounds to >= 65520: infinity
        return static_cast<uint16_t>(sign | 0x7c00u);
    }
    if (abs < 0x38800000u) {  // subnormal or zero in f16
        float f = 0;
        std::memcpy(&f, &abs, 4);
        // Scale so the f16 subnormal step (2^-24) becomes 1, then round to nearest even.
        const float scaled = f * 16777216.0f;
        auto m = static_cast<uint32_t>(scaled);
        const float rem = scaled - static_cast<float>(m);
        if (rem > 0.5f || (rem == 0.5f && (m & 1u))) {
            ++m;
        }
        return static_cast<uint16_t>(sign | m);
    }
    uint32_t r = abs - 0x38000000u;  // rebias exponent 127 -> 15
    r += 0xfffu + ((r >> 13) & 1u);
    return static_cast<uint16_t>(sign | (r >> 13));
}

float f16_to_f32(uint16_t value) {
    float f = 0;
    cpu::to_f32(&f, &value, DType::kF16, 1);
    return f;
}

}  // namespace helexa::engine
