// Vocabulary probes: what the engine needs to know about a model's vocabulary without any
// model name hard-coded — reasoning and tool-call marker pairs that exist as single tokens, and
// the ids that end generation.
//
// When to use: once after loading a Tokenizer; store the result beside it.
// Thread-safety: probe() only reads the (immutable) tokenizer; the result is a plain value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "helexa/text/marker_pair.h"
#include "helexa/text/tokenizer.h"

namespace helexa::text {

struct VocabProbes {
    std::optional<MarkerPair> reasoning;  // e.g. <think>/</think>, [THINK]/[/THINK]
    std::optional<MarkerPair> tool_call;  // e.g. <tool_call>/</tool_call>
    // Ids that end generation: SpecialTokens::eos_ids (generation_config.json, then the
    // tokenizer config's eos token).
    std::vector<int32_t> eos_ids;

    // Checks the known marker spellings (tokenizer_reasoning_candidates /
    // tokenizer_tool_call_candidates) against the vocabulary; the first pair whose two
    // strings each encode to a single token wins.
    static VocabProbes probe(const Tokenizer& tokenizer);
};

// The candidate spellings probed, in priority order (open, close).
const std::vector<std::pair<std::string, std::string>>& tokenizer_reasoning_candidates();
const std::vector<std::pair<std::string, std::string>>& tokenizer_tool_call_candidates();

}  // namespace helexa::text
