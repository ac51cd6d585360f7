// Replays seeds and deterministic mutations of them through the fuzz entry point under the
// sanitizers, so CI exercises the parsers without libFuzzer.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

const std::vector<std::string> kSeeds = {
    R"({"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5,"stop":["x"],
        "logit_bias":{"12":-5},"max_tokens":9,"reasoning":{"effort":"high"},"stream":true})",
    R"({"model":"m","messages":[{"role":"assistant","tool_calls":[{"function":{"arguments":"{}"}}]}]})",
    R"({"model":"m","prompt":["abc"],"top_k":3,"seed":1})",
    R"({"model":"m","input":[{"type":"message","role":"user","content":"x"}],"instructions":"i"})",
    R"({"sha":"abc","siblings":[{"rfilename":"a-Q4_K_M.gguf","lfs":{"sha256":"00","size":3}},
        {"rfilename":"config.json","size":2}]})",
    "huggingface:Qwen/Qwen3-8B",
    "../../etc/passwd",
};

TEST(FuzzReplay, SeedsAndMutationsNeverCrash) {
    std::mt19937 rng(1234);
    for (const auto& seed : kSeeds) {
        LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(seed.data()), seed.size());
        for (int round = 0; round < 300; ++round) {
            std::string m = seed;
            int edits = 1 + static_cast<int>(rng() % 4);
            for (int e = 0; e < edits && !m.empty(); ++e) {
                size_t pos = rng() % m.size();
                switch (rng() % 3) {
                    case 0:
                        m[pos] = static_cast<char>(rng() % 256);
                        break;
                    case 1:
                        m.erase(pos, 1 + rng() % 8);
                        break;
                    default:
                        m.insert(pos, m.substr(rng() % m.size(), 1 + rng() % 12));
                        break;
                }
            }
            EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(m.data()), m.size()),
                      0);
        }
    }
}

}  // namespace
