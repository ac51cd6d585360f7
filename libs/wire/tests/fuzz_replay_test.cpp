// Replays deterministic mutations of realistic seeds through the fuzz entry point so that CI
// (gcc + ASan/UBSan, no libFuzzer) still exercises every translator with hostile input.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

const std::vector<std::string> kSeeds = {
    R"({"model":"claude-x","max_tokens":32000,"stream":true,"thinking":{"type":"enabled","budget_tokens":1000},
        "system":[{"type":"text","text":"sys","cache_control":{"type":"ephemeral"}}],
        "tools":[{"name":"Bash","description":"d","input_schema":{"type":"object"}}],
        "tool_choice":{"type":"tool","name":"Bash"},"metadata":{"user_id":"u"},
        "messages":[{"role":"user","content":[{"type":"text","text":"hi"},
          {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA"}}]},
          {"role":"assistant","content":[{"type":"thinking","thinking":"t"},
            {"type":"tool_use","id":"a","name":"Bash","input":{"command":"ls"}}]},
          {"role":"user","content":[{"type":"tool_result","tool_use_id":"a","content":"out"}]}]})",
    R"({"model":"m","instructions":"i","input":[{"role":"user","content":[{"type":"input_text","text":"x"}]},
        {"type":"function_call","call_id":"c","name":"f","arguments":"{}"},
        {"type":"function_call_output","call_id":"c","output":"o"}],"tools":[{"type":"function","name":"f"}]})",
    R"({"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":"x","reasoning_content":"r",
        "tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{"}}]},"finish_reason":"tool_calls"}],
        "usage":{"prompt_tokens":1,"completion_tokens":2}})",
    R"({"model":"m","messages":[{"role":"user","content":"x"}],"prompt":"p","tokens":[1,2]})",
};

TEST(FuzzReplay, SeedsAndMutationsNeverCrash) {
    std::mt19937 rng(12345);  // fixed seed: reproducible
    const std::string alphabet = "{}[]\":,0123456789-.eE truefalsn\\ux";
    int runs = 0;
    for (const std::string& seed : kSeeds) {
        LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(seed.data()), seed.size());
        for (int i = 0; i < 400; ++i) {
            std::string input = seed;
            int edits = 1 + static_cast<int>(rng() % 6);
            for (int e = 0; e < edits && !input.empty(); ++e) {
                size_t pos = rng() % input.size();
                switch (rng() % 4) {
                    case 0:
                        input[pos] = alphabet[rng() % alphabet.size()];
                        break;
                    case 1:
                        input.erase(pos, 1 + rng() % 8);
                        break;
                    case 2:
                        input.insert(pos, 1, alphabet[rng() % alphabet.size()]);
                        break;
                    default:
                        input.resize(pos);  // truncation
                        break;
                }
            }
            LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
            ++runs;
        }
    }
    EXPECT_EQ(runs, 400 * static_cast<int>(kSeeds.size()));
}

TEST(FuzzReplay, TypeConfusionAtEveryKey) {
    // Replace each value in the first seed with values of every other JSON type.
    const std::vector<std::string> replacements = {"null", "0", "-1", "1.5", "\"s\"", "[]",
                                                   "{}", "true", "[{}]", "[\"x\"]"};
    std::string seed = kSeeds[0];
    for (size_t pos = seed.find(':'); pos != std::string::npos; pos = seed.find(':', pos + 1)) {
        for (const std::string& value : replacements) {
            std::string input = seed.substr(0, pos + 1) + value;
            // Skip the original value: up to the next ',' '}' or ']' at this level (approximate).
            size_t end = seed.find_first_of(",}]", pos + 1);
            if (end != std::string::npos) {
                input += seed.substr(end);
            }
            LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
        }
    }
    SUCCEED();
}

}  // namespace
