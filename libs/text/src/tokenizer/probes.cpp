// Vocabulary probes: marker pairs are recognised by spelling, never by model name.
#include "helexa/text/tokenizer_probes.h"

namespace helexa::text {
namespace {

std::optional<int32_t> single_token(const Tokenizer& tok, const std::string& s) {
    // A marker counts only if the tokenizer actually produces it as one token from text.
    const std::vector<int32_t> ids = tok.encode(s, false);
    if (ids.size() == 1) {
        return ids[0];
    }
    return std::nullopt;
}

std::optional<MarkerPair> first_pair(const Tokenizer& tok,
                                     const std::vector<std::pair<std::string, std::string>>& c) {
    for (const auto& [open, close] : c) {
        const auto open_id = single_token(tok, open);
        if (!open_id) {
            continue;
        }
        const auto close_id = single_token(tok, close);
        if (!close_id) {
            continue;
        }
        return MarkerPair{open, close, *open_id, *close_id};
    }
    return std::nullopt;
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& tokenizer_reasoning_candidates() {
    static const std::vector<std::pair<std::string, std::string>> kCandidates = {
        {"<think>", "</think>"},
        {"[THINK]", "[/THINK]"},
        {"<|begin_of_thought|>", "<|end_of_thought|>"},
        {"<thinking>", "</thinking>"},
        {"<seed:think>", "</seed:think>"},
        {"<|START_THINKING|>", "<|END_THINKING|>"},
        {"\xE2\x97\x81think\xE2\x96\xB7", "\xE2\x97\x81/think\xE2\x96\xB7"},  // ◁think▷
        {"<reasoning>", "</reasoning>"},
    };
    return kCandidates;
}

const std::vector<std::pair<std::string, std::string>>& tokenizer_tool_call_candidates() {
    static const std::vector<std::pair<std::string, std::string>> kCandidates = {
        {"<tool_call>", "</tool_call>"},
        {"[TOOL_CALLS]", "[/TOOL_CALLS]"},
        {"<|tool_call_begin|>", "<|tool_call_end|>"},
        {"<|tool_calls_section_begin|>", "<|tool_calls_section_end|>"},
        // DeepSeek spelling: fullwidth bars and U+2581 between words.
        {"<\xEF\xBD\x9Ctool\xE2\x96\x81" "calls\xE2\x96\x81" "begin\xEF\xBD\x9C>",
         "<\xEF\xBD\x9Ctool\xE2\x96\x81" "calls\xE2\x96\x81" "end\xEF\xBD\x9C>"},
        {"<|tool_call_start|>", "<|tool_call_end|>"},
        {"<function_call>", "</function_call>"},
    };
    return kCandidates;
}

VocabProbes VocabProbes::probe(const Tokenizer& tokenizer) {
    VocabProbes p;
    p.reasoning = first_pair(tokenizer, tokenizer_reasoning_candidates());
    p.tool_call = first_pair(tokenizer, tokenizer_tool_call_candidates());
    p.eos_ids = tokenizer.special_tokens().eos_ids;
    return p;
}

}  // namespace helexa::text
