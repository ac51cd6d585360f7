// The embedded default model behind `make run`: a small Qwen3-architecture model with generated
// (never downloaded) weights over the real Qwen3 vocabulary, shaped so that it ends its turn by
// itself after a few dozen tokens, greedy or sampled at temperature 1. A plain random model never
// emits EOS, and agent clients that ask for max_tokens 32000 would wait minutes for a turn.
//
// How the weights end a turn (a "phase walk"; the output is not meaningful text):
//   * the hidden space is split into n_phases + 1 one-hot phase dims, a bias dim and noise dims;
//   * every token id gets a phase: 0 for start tokens (the chat template's trailing "\n" / "\n\n",
//     specials, and start_phase_fraction of the rest), else uniform in [1, n_phases];
//   * a token's embedding is its phase dim + the bias dim + noise, large next to what the random
//     attention/MLP layers add, so the last hidden state mostly says "current token's phase";
//   * lm_head row j points at phase(j) - 1, so from phase p the next token is (with probability
//     ~99% at temperature 1, always under greedy) one of phase p + 1, chosen among them by the
//     noise dims and the layers' context-dependent perturbation;
//   * the EOS rows point at the last phase (n_phases, the "closing" tokens) strongly enough to beat
//     the whole vocabulary there, and away from it elsewhere; other special ids point against the
//     bias dim so they are never generated (no stray <think> or <tool_call>).
// From a start token a turn is therefore n_phases tokens and EOS; from a random token fewer.
//
// When to use: the node writes it once into its data directory (and copies the Qwen3 tokenizer
// files beside it) when no real model is configured; tests shrink the vocabulary through the spec.
// Thread-safety: free functions; concurrent writes must target different directories.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "helexa/common/result.h"
#include "helexa/engine/random_model.h"

namespace helexa::engine {

struct DemoModelSpec {
    // Vocabulary: the real Qwen3 tokenizer's (151643 regular tokens, specials after them,
    // padded to 151936 rows as in the published checkpoints).
    int64_t vocab_size = 151936;
    int32_t n_regular_tokens = 151643;  // ids >= this are special: never generated except EOS
    std::vector<int32_t> eos_token_ids = {151645, 151643};  // <|im_end|>, <|endoftext|>
    std::optional<int32_t> bos_token_id = 151643;
    std::vector<int32_t> start_token_ids = {198, 271};  // "\n", "\n\n": where a turn begins

    // Architecture (Qwen3, bf16, untied lm_head). hidden_size must exceed n_phases + 9.
    int64_t hidden_size = 64;
    int64_t intermediate_size = 128;
    int64_t num_hidden_layers = 2;
    // Two small heads: an 8k-token prompt's attention (quadratic) stays a few CPU-seconds.
    int64_t num_attention_heads = 2;
    int64_t num_key_value_heads = 1;
    int64_t head_dim = 16;
    int64_t max_position_embeddings = 40960;

    // Turn length: from a start token, greedy decoding emits exactly n_phases tokens then EOS.
    int32_t n_phases = 40;
    double start_phase_fraction = 0.5;  // of the regular tokens, in phase 0
    uint64_t seed = 0x68656c657861ULL;  // "helexa"
};

// The RandomModelSpec (config.json dimensions) the demo model is written with.
RandomModelSpec demo_random_model_spec(const DemoModelSpec& spec);

// Each token id's phase in [0, n_phases] (see above); size vocab_size.
std::vector<int32_t> demo_token_phases(const DemoModelSpec& spec);

// Writes config.json, model.safetensors and generation_config.json into `dir` (created if
// needed); the same spec always gives byte-identical files. The tokenizer files are the
// caller's to copy. Errors: kInvalidRequest for an inconsistent spec (ids outside the
// vocabulary, too small a hidden size), kIo.
Status write_demo_model(const DemoModelSpec& spec, const std::filesystem::path& dir);

}  // namespace helexa::engine
