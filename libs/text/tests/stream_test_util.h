// Test helpers for the stream parsers: chunked feeding and event normalisation.
#pragma once

#include <cstddef>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "helexa/text/stream_parser.h"

namespace helexa::text::testing {

// Merges adjacent text / reasoning events so differently chunked runs compare equal.
inline std::vector<StreamEvent> normalize(const std::vector<StreamEvent>& events) {
    std::vector<StreamEvent> out;
    for (const StreamEvent& e : events) {
        if (e.kind == StreamEventKind::kToolCall) {
            out.push_back(e);
        } else {
            append_stream_text(out, e.kind, e.text);
        }
    }
    return out;
}

inline std::string describe(const std::vector<StreamEvent>& events) {
    std::string s;
    for (const StreamEvent& e : events) {
        switch (e.kind) {
            case StreamEventKind::kText:
                s += "T[" + e.text + "]";
                break;
            case StreamEventKind::kReasoning:
                s += "R[" + e.text + "]";
                break;
            case StreamEventKind::kToolCall:
                s += "C[" + e.call.id + "|" + e.call.name + "|" + e.call.arguments_json + "]";
                break;
        }
    }
    return s;
}

// Feeds `chunks` through a fresh parser and returns the normalised event list as a string.
inline std::string run_chunks(const StreamParserOptions& options,
                              const std::vector<std::string_view>& chunks,
                              std::vector<StreamEvent>* raw = nullptr) {
    StreamParser parser(options);
    std::vector<StreamEvent> events;
    for (const std::string_view chunk : chunks) {
        parser.push(chunk, events);
    }
    parser.finish(events);
    if (raw != nullptr) {
        *raw = events;
    }
    return describe(normalize(events));
}

inline std::string run_whole(const StreamParserOptions& options, std::string_view input) {
    return run_chunks(options, {input});
}

// Splits at one byte position.
inline std::vector<std::string_view> split_at(std::string_view s, std::size_t i) {
    return {s.substr(0, i), s.substr(i)};
}

inline std::vector<std::string_view> bytewise(std::string_view s) {
    std::vector<std::string_view> out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        out.push_back(s.substr(i, 1));
    }
    return out;
}

inline std::vector<std::string_view> random_chunks(std::string_view s, std::mt19937& rng) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        const std::size_t n = std::uniform_int_distribution<std::size_t>(0, 7)(rng);
        out.push_back(s.substr(i, n));
        i += std::min(n, s.size() - i);
    }
    return out;
}

// True when `s` is well-formed UTF-8 (no truncated or stray sequences).
inline bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t n = 1;
        if (c >= 0xF0U) {
            n = 4;
        } else if (c >= 0xE0U) {
            n = 3;
        } else if (c >= 0xC0U) {
            n = 2;
        } else if (c >= 0x80U) {
            return false;
        }
        if (i + n > s.size()) {
            return false;
        }
        for (std::size_t k = 1; k < n; ++k) {
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0U) != 0x80U) {
                return false;
            }
        }
        i += n;
    }
    return true;
}

// Every two-way split, byte-by-byte feeding and 20 seeded random chunkings must reproduce
// the unsplit result. Returns "" on success, else a description of the first mismatch.
inline std::string check_split_invariance(const StreamParserOptions& options,
                                          std::string_view input) {
    const std::string expected = run_whole(options, input);
    for (std::size_t i = 0; i <= input.size(); ++i) {
        const std::string got = run_chunks(options, split_at(input, i));
        if (got != expected) {
            return "split at " + std::to_string(i) + ": " + got + " != " + expected;
        }
    }
    if (const std::string got = run_chunks(options, bytewise(input)); got != expected) {
        return "bytewise: " + got + " != " + expected;
    }
    std::mt19937 rng(12345);
    for (int round = 0; round < 20; ++round) {
        const std::string got = run_chunks(options, random_chunks(input, rng));
        if (got != expected) {
            return "random round " + std::to_string(round) + ": " + got + " != " + expected;
        }
    }
    return "";
}

}  // namespace helexa::text::testing
