// libFuzzer target: arbitrary bytes as a safetensors image; parsing must return a value or an
// error, never read out of bounds. Every accepted tensor's bytes must lie inside the image.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "helexa/engine/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::span<const std::byte> image(reinterpret_cast<const std::byte*>(data), size);
    auto tensors = helexa::engine::parse_safetensors(image);
    if (tensors) {
        for (const auto& t : *tensors) {
            if (t.bytes.data() < image.data() ||
                t.bytes.data() + t.bytes.size() > image.data() + image.size()) {
                std::abort();
            }
        }
    }
    return 0;
}
