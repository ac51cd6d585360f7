// The decoder hands the backend its work from one attention to the next q/k/v projection as one
// chain (Backend::run_chain): the first layer's q/k/v alone, then per layer the attention (with
// its q/k/v epilogue), o_proj + residual, gate_up (+ norm, SwiGLU), down + residual and the next
// layer's norm + q/k/v, the last layer's chain ending at down. A device backend runs such a
// chain as one launch (CUDA: the decode chain), so its shape is what decides what can be fused;
// this pins it, link by link, and that the logits stay the CPU backend's.
#include <gtest/gtest.h>

#include <filesystem>
#include <numeric>
#include <string>
#include <variant>
#include <vector>

#include "forwarding_backend.h"
#include "helexa/engine/model_runner.h"
#include "helexa/engine/random_model.h"

namespace helexa::engine {
namespace {

namespace fs = std::filesystem;
using Output = LinearFusion::Output;

// One recorded chain: each link's kind ("attention", or a projection's output kind), whether it
// has an input norm, and whether it reads the previous link's output as its x (or adds into
// what the previous link read).
struct ChainRecord {
    std::vector<std::string> kinds;
    std::vector<bool> normed;
    std::vector<bool> reads_previous_out;
};

std::string kind_of(Output o) {
    switch (o) {
        case Output::kStore:
            return "store";
        case Output::kAccumulate:
            return "accumulate";
        case Output::kSwiGlu:
            return "swiglu";
    }
    return "?";
}

// The tensor a link reads (a projection's x, the attention's qkv) and the one it writes.
const Tensor& input_of(const ChainLink& l) {
    if (const auto* a = std::get_if<AttentionLink>(&l)) {
        return a->qkv;
    }
    return std::get<LinearLink>(l).x;
}
const Tensor& output_of(const ChainLink& l) {
    if (const auto* a = std::get_if<AttentionLink>(&l)) {
        return a->out;
    }
    return std::get<LinearLink>(l).out;
}

class ChainRecordingBackend final : public testing::ForwardingBackend {
public:
    explicit ChainRecordingBackend(std::vector<ChainRecord>& log) : log_(log) {}
    std::string_view name() const override { return "chain-recording"; }
    Status run_chain(std::span<const ChainLink> links) override {
        ChainRecord r;
        for (size_t i = 0; i < links.size(); ++i) {
            const auto* linear = std::get_if<LinearLink>(&links[i]);
            r.kinds.push_back(linear != nullptr ? kind_of(linear->fusion.output) : "attention");
            r.normed.push_back(linear != nullptr && static_cast<bool>(linear->fusion.norm_weight));
            r.reads_previous_out.push_back(
                i > 0 && input_of(links[i]).data == output_of(links[i - 1]).data);
        }
        log_.push_back(std::move(r));
        return Backend::run_chain(links);
    }

private:
    std::vector<ChainRecord>& log_;
};

TEST(DecoderChain, WorkFromOneAttentionToTheNextQkvGoesToTheBackendAsOneChain) {
    const fs::path dir =
        fs::temp_directory_path() / ("helexa_decoder_chain_" + std::to_string(::getpid()));
    RandomModelSpec spec;
    spec.num_hidden_layers = 3;
    spec.seed = 11;
    spec.init_std = 0.1f;
    ASSERT_TRUE(write_random_model(spec, dir).has_value());
    std::vector<ChainRecord> log;
    register_backend("chain-recording-test",
                     [&log](const BackendOptions&) -> Result<std::unique_ptr<Backend>> {
                         return std::unique_ptr<Backend>(
                             std::make_unique<ChainRecordingBackend>(log));
                     });
    ModelRunnerOptions opt;
    opt.block_size = 4;
    opt.n_blocks = 16;
    opt.warm_up_max_seqs = 0;
    opt.backend.kind = "chain-recording-test";
    auto recorded = load_model_runner(dir, opt);
    opt.backend.kind = "cpu";
    opt.backend.n_threads = 1;
    auto plain = load_model_runner(dir, opt);
    ASSERT_TRUE(recorded.has_value()) << recorded.error().full_message();
    ASSERT_TRUE(plain.has_value()) << plain.error().full_message();

    std::vector<int32_t> tokens(9);
    std::iota(tokens.begin(), tokens.end(), 5);
    std::vector<int32_t> table(8);
    std::iota(table.begin(), table.end(), 0);
    StepBatch b;
    b.seqs.push_back({1, tokens, 0, table, true});
    log.clear();
    std::vector<float> got;
    std::vector<float> want;
    ASSERT_TRUE((*recorded)->step(b, got).has_value());
    ASSERT_TRUE((*plain)->step(b, want).has_value());
    EXPECT_EQ(got, want) << "the default chain is the same calls in the same order";

    // [qkv(0)], then [attention, o, gate_up, down, qkv(l + 1)] per layer but the last, then
    // [attention, o, gate_up, down].
    ASSERT_EQ(log.size(), static_cast<size_t>(spec.num_hidden_layers + 1));
    EXPECT_EQ(log.front().kinds, std::vector<std::string>{"store"});
    EXPECT_EQ(log.front().normed, std::vector<bool>{true});
    const std::vector<std::string> layer = {"attention", "accumulate", "swiglu", "accumulate",
                                            "store"};
    for (size_t i = 1; i < log.size(); ++i) {
        SCOPED_TRACE("chain " + std::to_string(i));
        const bool last = i + 1 == log.size();
        const std::vector<std::string> want_kinds(layer.begin(), layer.end() - (last ? 1 : 0));
        EXPECT_EQ(log[i].kinds, want_kinds);
        std::vector<bool> want_normed = {false, false, true, false, true};
        want_normed.resize(want_kinds.size());
        EXPECT_EQ(log[i].normed, want_normed);
        // o_proj reads the attention's output, gate_up the residual o_proj added into, down
        // gate_up's SwiGLU output, the next q/k/v the residual down added into.
        std::vector<bool> want_reads = {false, true, true, true, true};
        want_reads.resize(want_kinds.size());
        EXPECT_EQ(log[i].reads_previous_out, want_reads);
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace helexa::engine
