// Whole models on the CUDA backend: the committed transformers fixtures, a random Qwen3-shaped
// model against the CPU backend, batched steps against single ones, and the KV pool sized from
// free device memory.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "cuda_test_support.h"
#include "helexa/cuda/fault_injection.h"
#include "helexa/engine/model_runner.h"
#include "helexa/engine/row_draw.h"
#include "helexa/engine/random_model.h"

namespace helexa::cuda::testing {
namespace {

namespace fs = std::filesystem;
using engine::CausalLmRunner;
using engine::ModelRunnerOptions;
using engine::StepBatch;

double cosine(const float* a, const float* b, int64_t n) {
    double dot = 0;
    double na = 0;
    double nb = 0;
    for (int64_t i = 0; i < n; ++i) {
        if (!std::isfinite(a[i])) {
            return -2;
        }
        dot += static_cast<double>(a[i]) * b[i];
        na += static_cast<double>(a[i]) * a[i];
        nb += static_cast<double>(b[i]) * b[i];
    }
    return dot / std::sqrt(na * nb);
}

int64_t argmax(const float* v, int64_t n) {
    return std::max_element(v, v + n) - v;
}

// The reference's top-1 minus top-2 logit: below bf16 noise, two backends may legitimately pick
// different tokens.
double top2_margin(const float* v, int64_t n) {
    std::vector<float> c(v, v + n);
    std::partial_sort(c.begin(), c.begin() + 2, c.end(), std::greater<>());
    return static_cast<double>(c[0]) - c[1];
}

std::unique_ptr<CausalLmRunner> load(const fs::path& dir, const std::string& kind,
                                     int64_t n_blocks = 64) {
    ModelRunnerOptions opt;
    opt.backend.kind = kind;
    opt.block_size = 16;
    opt.n_blocks = n_blocks;
    auto r = engine::load_model_runner(dir, opt);
    EXPECT_TRUE(r.has_value()) << r.error().full_message();
    return r ? std::move(*r) : nullptr;
}

class CudaModel : public ::testing::Test {
protected:
    void SetUp() override {
        register_cuda_backend();
        if (list_devices().empty()) {
            GTEST_SKIP() << "no CUDA device";
        }
    }
};

// The checkout's root: HELEXA_SOURCE_DIR from the environment (the GPU host runs a copy of the
// tree at another path), else where this binary was configured.
fs::path source_dir() {
    const char* env = std::getenv("HELEXA_SOURCE_DIR");
    return env != nullptr ? fs::path(env) : fs::path(HELEXA_SOURCE_DIR);
}

TEST_F(CudaModel, FixturesMatchTransformers) {
    const fs::path root = source_dir() / "tests" / "fixtures" / "models";
    int checked = 0;
    for (const auto& entry : fs::directory_iterator(root)) {
        const fs::path dir = entry.path();
        if (!fs::exists(dir / "reference.json")) {
            continue;
        }
        SCOPED_TRACE(dir.filename().string());
        std::ifstream mf(dir / "reference.json");
        auto manifest = nlohmann::json::parse(mf);
        std::ifstream bin(dir / "reference_logits.bin", std::ios::binary);
        std::vector<char> raw((std::istreambuf_iterator<char>(bin)), {});
        auto runner = load(dir, "cuda");
        ASSERT_TRUE(runner);
        const int64_t V = runner->vocab_size();
        for (const auto& p : manifest["prompts"]) {
            const auto tokens = p["tokens"].get<std::vector<int32_t>>();
            const auto positions = p["positions"].get<std::vector<int64_t>>();
            const auto* ref =
                reinterpret_cast<const float*>(raw.data() + p["offset_bytes"].get<size_t>());
            std::vector<int32_t> table(static_cast<size_t>((tokens.size() + 15) / 16));
            std::iota(table.begin(), table.end(), 0);
            int64_t start = 0;
            for (size_t row = 0; row < positions.size(); ++row) {
                const int64_t end = positions[row];
                StepBatch b;
                b.seqs.push_back({1, std::span(tokens).subspan(static_cast<size_t>(start),
                                                               static_cast<size_t>(end - start + 1)),
                                  start, table, true});
                std::vector<float> logits;
                auto st = runner->step(b, logits);
                ASSERT_TRUE(st.has_value()) << st.error().full_message();
                start = end + 1;
                const float* want = ref + row * static_cast<size_t>(V);
                EXPECT_GE(cosine(logits.data(), want, V), 0.999) << "position " << end;
                if (top2_margin(want, V) > 0.05) {
                    EXPECT_EQ(argmax(logits.data(), V), argmax(want, V)) << "position " << end;
                }
                ++checked;
            }
        }
    }
    EXPECT_GT(checked, 0) << "no fixture under " << root;
}

class CudaRandomModel : public CudaModel {
protected:
    void SetUp() override {
        CudaModel::SetUp();
        if (IsSkipped()) {
            return;
        }
        dir_ = fs::temp_directory_path() / ("helexa_cuda_model_" + std::to_string(::getpid()));
        engine::RandomModelSpec spec;
        spec.model_type = "qwen3";
        spec.hidden_size = 512;
        spec.intermediate_size = 1536;
        spec.num_hidden_layers = 4;
        spec.num_attention_heads = 8;
        spec.num_key_value_heads = 2;
        spec.head_dim = 64;
        spec.vocab_size = 4096;
        spec.tie_word_embeddings = false;
        spec.init_std = 0.05f;
        spec.seed = 7;
        ASSERT_TRUE(engine::write_random_model(spec, dir_).has_value());
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    void prefill_and_decode_match_cpu();
    void batched_step_equals_single_steps();
    fs::path dir_;
};

std::vector<int32_t> prompt(int64_t n, int32_t salt) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        t[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919 + salt * 131) % 4096);
    }
    return t;
}

// Four sequences of awkward lengths, each with its own 16 KV blocks.
struct FourSequences {
    std::vector<int64_t> lens = {1, 17, 64, 203};
    std::vector<std::vector<int32_t>> toks;
    std::vector<std::vector<int32_t>> tables;

    FourSequences() {
        for (size_t i = 0; i < lens.size(); ++i) {
            toks.push_back(prompt(lens[i], static_cast<int32_t>(i + 3)));
            std::vector<int32_t> t(16);
            std::iota(t.begin(), t.end(), static_cast<int32_t>(16 * i));
            tables.push_back(t);
        }
    }
};

// The two checks below run as built and with the decode chain taking every 1-row step
// (CudaRandomModelChained): the model's weights are far below the size the backend chains by
// default, so only that variant sends its steps through kernels::launch_decode_chain, graphs
// included.
void CudaRandomModel::prefill_and_decode_match_cpu() {
    auto cpu = load(dir_, "cpu");
    auto gpu = load(dir_, "cuda");
    ASSERT_TRUE(cpu && gpu);
    const int64_t V = gpu->vocab_size();
    auto tokens = prompt(150, 1);
    std::vector<int32_t> table(16);
    std::iota(table.begin(), table.end(), 0);
    int64_t pos = 0;
    // A 150-token prefill, then 20 greedy decode steps fed by the CPU's choice (so both see the
    // same inputs even if they disagree at a near-tie).
    for (int step = 0; step < 21; ++step) {
        const std::span<const int32_t> chunk =
            step == 0 ? std::span<const int32_t>(tokens) : std::span<const int32_t>(tokens).last(1);
        StepBatch b;
        b.seqs.push_back({1, chunk, pos, table, true});
        std::vector<float> lc;
        std::vector<float> lg;
        ASSERT_TRUE(cpu->step(b, lc).has_value());
        auto st = gpu->step(b, lg);
        ASSERT_TRUE(st.has_value()) << st.error().full_message();
        EXPECT_GE(cosine(lg.data(), lc.data(), V), 0.999) << "step " << step;
        if (top2_margin(lc.data(), V) > 0.05) {
            EXPECT_EQ(argmax(lg.data(), V), argmax(lc.data(), V)) << "step " << step;
        }
        pos += static_cast<int64_t>(chunk.size());
        tokens.push_back(static_cast<int32_t>(argmax(lc.data(), V)));
    }
}

// A batched row and the same sequence stepped alone are two bf16 computations of one f32
// function (one row takes the fused skinny kernels, many rows the norm kernel + cuBLASLt:
// different summation orders and rounding points). So "equal" means: no further apart than bf16
// noise allows, measured in the same run as each one's distance from the CPU backend's f32
// result (and never looser than 1e-2). A batching bug (a wrong row, another sequence's keys or
// positions) is orders of magnitude larger than that.
void expect_same_up_to_bf16(std::span<const float> batched, const std::vector<float>& single,
                            const std::vector<float>& f32, const std::string& what) {
    const std::vector<float> b(batched.begin(), batched.end());
    const double noise = std::max(rel_error(b, f32), rel_error(single, f32));
    EXPECT_LE(rel_error(b, single), std::max(1e-2, 2.0 * noise))
        << what << " (bf16 noise vs f32: " << noise << ")";
}

void CudaRandomModel::batched_step_equals_single_steps() {
    auto gpu = load(dir_, "cuda", 256);
    auto cpu = load(dir_, "cpu", 256);
    ASSERT_TRUE(gpu && cpu);
    const int64_t V = gpu->vocab_size();
    const FourSequences four;
    const auto& lens = four.lens;
    const auto& toks = four.toks;
    const auto& tables = four.tables;
    StepBatch batch;
    for (size_t i = 0; i < lens.size(); ++i) {
        batch.seqs.push_back({i + 1, toks[i], 0, tables[i], true});
    }
    std::vector<float> batched;
    ASSERT_TRUE(gpu->step(batch, batched).has_value());
    // The scheduler's path: the same step again (same blocks, same K/V written), its rows left
    // in the runner's page-locked buffer.
    std::span<float> in_place;
    ASSERT_TRUE(gpu->step_in_place(batch, in_place).has_value());
    ASSERT_EQ(in_place.size(), batched.size());
    EXPECT_TRUE(std::equal(in_place.begin(), in_place.end(), batched.begin()))
        << "step_in_place rows differ from step's";
    for (size_t i = 0; i < lens.size(); ++i) {
        StepBatch one;
        one.seqs.push_back({i + 1, toks[i], 0, tables[i], true});
        std::vector<float> single;
        std::vector<float> f32;
        ASSERT_TRUE(gpu->step(one, single).has_value());
        ASSERT_TRUE(cpu->step(one, f32).has_value());
        const float* row = batched.data() + i * static_cast<size_t>(V);
        expect_same_up_to_bf16({row, static_cast<size_t>(V)}, single, f32,
                               "prefill sequence " + std::to_string(i));
    }
    // Then one decode step for all four together vs alone (the skinny-matmul path).
    StepBatch dec;
    std::vector<std::vector<int32_t>> next(lens.size());
    for (size_t i = 0; i < lens.size(); ++i) {
        next[i] = {static_cast<int32_t>(argmax(batched.data() + i * static_cast<size_t>(V), V))};
        dec.seqs.push_back({i + 1, next[i], lens[i], tables[i], true});
    }
    std::vector<float> dec_batched;
    ASSERT_TRUE(gpu->step(dec, dec_batched).has_value());
    for (size_t i = 0; i < lens.size(); ++i) {
        StepBatch one;
        one.seqs.push_back(dec.seqs[i]);
        std::vector<float> single;
        std::vector<float> f32;
        ASSERT_TRUE(gpu->step(one, single).has_value());
        ASSERT_TRUE(cpu->step(one, f32).has_value());
        const float* row = dec_batched.data() + i * static_cast<size_t>(V);
        expect_same_up_to_bf16({row, static_cast<size_t>(V)}, single, f32,
                               "decode sequence " + std::to_string(i));
    }
}

// Overlapped greedy steps (launch_argmax / finish_launched): each round launched before the last
// round's tokens are read, its input ids fed on the device from that round's argmax (the host's
// placeholder is wrong on purpose), give step_argmax's tokens on the same runner, graphs
// replaying. Two sequences, rounds of both and of one (an unfed sequence takes the host's id).
// Overlapped steps on the device (launch_argmax / launch_sample, fed ids and, for drawn rows,
// the fed token completing the repetition penalty on the device) give the tokens of the same
// steps taken one at a time (step_argmax / step_sample with every token known). cfg null:
// argmax.
void expect_overlapped_steps_match(CausalLmRunner& gpu, const engine::SamplingConfig* cfg) {
    const int64_t V = gpu.vocab_size();
    const std::vector<int> rounds = {2, 2, 2, 1, 1, 2, 2, 1, 2, 2, 2, 2};
    // run 0: one step at a time (blocks 0..63), run 1: overlapped (blocks 64..127): the same
    // prompts.
    std::vector<std::vector<int32_t>> results[2];
    for (int run = 0; run < 2; ++run) {
        std::vector<std::vector<int32_t>> tokens = {prompt(40, 1), prompt(70, 2)};
        const std::vector<size_t> prompt_len = {tokens[0].size(), tokens[1].size()};
        std::vector<std::vector<int32_t>> tables(2, std::vector<int32_t>(32));
        std::vector<int64_t> pos(2, 0);
        for (size_t i = 0; i < 2; ++i) {
            std::iota(tables[i].begin(), tables[i].end(), static_cast<int32_t>(64 * run + 32 * i));
            StepBatch b;
            b.seqs.push_back({i, tokens[i], 0, tables[i], true});
            std::vector<int32_t> next;
            ASSERT_TRUE(gpu.step_argmax(b, next).has_value());
            pos[i] = static_cast<int64_t>(tokens[i].size());
            tokens[i].push_back(next[0]);
        }
        auto generated = [&](size_t u) {
            return std::span<const int32_t>(tokens[u]).subspan(prompt_len[u]);
        };
        const std::vector<int32_t> placeholder = {0};
        std::vector<int> outstanding;
        auto finish = [&] {
            std::vector<int32_t> next;
            auto st = gpu.finish_launched(next);
            ASSERT_TRUE(st.has_value()) << st.error().full_message();
            ASSERT_EQ(static_cast<int>(next.size()), outstanding.front());
            for (size_t i = 0; i < next.size(); ++i) {
                tokens[i].push_back(next[i]);
            }
            outstanding.erase(outstanding.begin());
        };
        for (size_t k = 0; k < rounds.size(); ++k) {
            StepBatch b;
            engine::DrawBatch draws;
            for (int i = 0; i < rounds[k]; ++i) {
                const auto u = static_cast<size_t>(i);
                engine::SequenceSlice slice{u, std::span<const int32_t>(tokens[u]).last(1),
                                            pos[u], tables[u], true};
                const bool fed = run == 1 && k > 0 && i < rounds[k - 1];
                if (fed) {
                    slice.tokens = placeholder;
                    slice.fed_row = i;
                }
                if (cfg != nullptr) {
                    engine::plan_row_draw(*cfg, generated(u), 300 + u, V, true, draws, fed);
                }
                b.seqs.push_back(slice);
                pos[u] += 1;
            }
            if (run == 0) {
                std::vector<int32_t> next;
                std::span<float> host_rows;
                ASSERT_TRUE((cfg != nullptr ? gpu.step_sample(b, draws, next, host_rows)
                                            : gpu.step_argmax(b, next))
                                .has_value());
                for (size_t i = 0; i < next.size(); ++i) {
                    tokens[i].push_back(next[i]);
                }
                continue;
            }
            auto st = cfg != nullptr ? gpu.launch_sample(b, draws) : gpu.launch_argmax(b);
            ASSERT_TRUE(st.has_value()) << st.error().full_message();
            outstanding.push_back(rounds[k]);
            if (k > 0) {
                finish();
            }
        }
        if (run == 1) {
            finish();
        }
        results[run] = tokens;
    }
    EXPECT_EQ(results[1], results[0]);
}

TEST_F(CudaRandomModel, OverlappedStepsGiveStepArgmaxsTokens) {
    auto gpu = load(dir_, "cuda", 256);
    ASSERT_TRUE(gpu);
    expect_overlapped_steps_match(*gpu, nullptr);
}

// The default request's draw (greedy, repetition penalty 1.1 over 64 tokens) and a sampled
// one whose penalties (repetition, presence, frequency) and bias move its draws, overlapped.
TEST_F(CudaRandomModel, OverlappedDrawnStepsGiveStepSamplesTokens) {
    auto gpu = load(dir_, "cuda", 256);
    ASSERT_TRUE(gpu);
    engine::SamplingConfig by_default;
    by_default.temperature = 0.0F;
    {
        SCOPED_TRACE("greedy with the default penalty");
        expect_overlapped_steps_match(*gpu, &by_default);
    }
    engine::SamplingConfig sampled;
    sampled.temperature = 1.0F;
    sampled.top_k = 40;
    sampled.repetition_penalty = 3.0F;
    sampled.repetition_window = 4;
    sampled.presence_penalty = 0.6F;
    sampled.frequency_penalty = 0.4F;
    sampled.logit_bias = {{5, 1.0F}, {9, 2.5F}};
    {
        SCOPED_TRACE("sampled with strong penalties and a bias");
        expect_overlapped_steps_match(*gpu, &sampled);
    }
}

TEST_F(CudaRandomModel, PrefillAndDecodeMatchCpuBackend) { prefill_and_decode_match_cpu(); }
TEST_F(CudaRandomModel, BatchedStepEqualsSingleSteps) { batched_step_equals_single_steps(); }

class CudaRandomModelChained : public CudaRandomModel {
protected:
    void SetUp() override {
        setenv("HELEXA_CUDA_DECODE_CHAIN", "1", 1);
        CudaRandomModel::SetUp();
    }
    void TearDown() override {
        unsetenv("HELEXA_CUDA_DECODE_CHAIN");
        CudaRandomModel::TearDown();
    }
};

TEST_F(CudaRandomModelChained, PrefillAndDecodeMatchCpuBackend) {
    prefill_and_decode_match_cpu();
}
TEST_F(CudaRandomModelChained, BatchedStepEqualsSingleSteps) {
    batched_step_equals_single_steps();
}

// The same with the attention inside the chain's launch (HELEXA_CUDA_CHAIN_ATTENTION=1).
class CudaRandomModelChainedAttention : public CudaRandomModelChained {
protected:
    void SetUp() override {
        setenv("HELEXA_CUDA_CHAIN_ATTENTION", "1", 1);
        CudaRandomModelChained::SetUp();
    }
    void TearDown() override {
        unsetenv("HELEXA_CUDA_CHAIN_ATTENTION");
        CudaRandomModelChained::TearDown();
    }
};

TEST_F(CudaRandomModelChainedAttention, PrefillAndDecodeMatchCpuBackend) {
    prefill_and_decode_match_cpu();
}
TEST_F(CudaRandomModelChainedAttention, BatchedStepEqualsSingleSteps) {
    batched_step_equals_single_steps();
}

// step_sample on the device: the same tokens as the host rule over step_in_place's rows of the
// same step (prefill, then a decode step that replays a graph), only ids copied when no row needs
// the host, and a host row's logits returned beside the drawn rows' tokens.
TEST_F(CudaRandomModel, StepSampleDrawsOnTheDeviceAsTheHostRuleDoes) {
    auto gpu = load(dir_, "cuda", 256);
    ASSERT_TRUE(gpu);
    const int64_t V = gpu->vocab_size();
    const FourSequences four;
    const auto& lens = four.lens;
    const auto& toks = four.toks;
    const auto& tables = four.tables;
    std::vector<engine::SamplingConfig> cfgs(4);
    cfgs[0].temperature = 0.0F;  // greedy with the default repetition penalty
    cfgs[1].temperature = 0.7F;
    cfgs[1].top_k = 20;
    cfgs[1].top_p = 0.9F;
    cfgs[2].min_p = 0.05F;
    cfgs[3].temperature = 0.6F;  // Llama-3.1's settings: top-p over the whole vocabulary
    cfgs[3].top_p = 0.9F;
    auto check = [&](const StepBatch& batch, uint32_t position, const std::string& what) {
        std::span<float> in_place;
        ASSERT_TRUE(gpu->step_in_place(batch, in_place).has_value());
        const std::vector<float> rows(in_place.begin(), in_place.end());
        engine::DrawBatch draws;
        const std::vector<int32_t> generated = {5, 9, 5, 77};
        for (size_t i = 0; i < cfgs.size(); ++i) {
            engine::plan_row_draw(cfgs[i], generated, 40 + i, V, true, draws);
            draws.rows.back().position = position;
        }
        std::vector<int32_t> tokens;
        std::span<float> host_rows;
        auto st = gpu->step_sample(batch, draws, tokens, host_rows);
        ASSERT_TRUE(st.has_value()) << st.error().full_message();
        EXPECT_TRUE(host_rows.empty()) << what;
        ASSERT_EQ(tokens.size(), cfgs.size()) << what;
        for (size_t i = 0; i < cfgs.size(); ++i) {
            std::vector<float> own(rows.begin() + static_cast<std::ptrdiff_t>(i * V),
                                   rows.begin() + static_cast<std::ptrdiff_t>((i + 1) * V));
            EXPECT_EQ(tokens[i], engine::draw_row(own, draws.rows[i], draws.entries))
                << what << " row " << i;
        }
        // One row for the host Sampler: its logits come back, the others are still drawn.
        engine::DrawBatch mixed = draws;
        mixed.rows[2].mode = engine::draw::kDrawHost;
        ASSERT_TRUE(gpu->step_sample(batch, mixed, tokens, host_rows).has_value());
        ASSERT_EQ(host_rows.size(), rows.size()) << what;
        EXPECT_TRUE(std::equal(host_rows.begin() + 2 * V, host_rows.begin() + 3 * V,
                               rows.begin() + 2 * V))
            << what;
        EXPECT_EQ(tokens[2], -2) << what;
        std::vector<float> own(rows.begin() + V, rows.begin() + 2 * V);
        EXPECT_EQ(tokens[1], engine::draw_row(own, draws.rows[1], draws.entries)) << what;
    };
    StepBatch prefill;
    for (size_t i = 0; i < lens.size(); ++i) {
        prefill.seqs.push_back({i + 1, toks[i], 0, tables[i], true});
    }
    check(prefill, 0, "prefill");
    StepBatch decode;
    std::vector<std::vector<int32_t>> next(lens.size(), std::vector<int32_t>{11});
    for (size_t i = 0; i < lens.size(); ++i) {
        decode.seqs.push_back({i + 1, next[i], lens[i], tables[i], true});
    }
    for (uint32_t position = 1; position <= 3; ++position) {
        check(decode, position, "decode " + std::to_string(position));
    }
}

// A real device fault (an illegal-address kernel: a sticky error, as a kernel bug or an ECC
// fault leaves it): every model on the device fails cleanly with kModelRecovering; a load while
// one of them lives is refused; once they have all unloaded, a load is refused for a process
// restart or works, by driver.
// Its own suite: a device that fails to come back would fail every later test of the process,
// so scripts/gpu/cuda_run.sh runs it after the rest.
class CudaDeviceFault : public CudaRandomModel {};

TEST_F(CudaDeviceFault, RealFaultFailsEveryModelAndALaterLoadIsCorrectOrRefused) {
    auto cpu = load(dir_, "cpu");
    auto a = load(dir_, "cuda");
    auto b = load(dir_, "cuda");
    ASSERT_TRUE(cpu && a && b);
    const int64_t V = a->vocab_size();
    const auto tokens = prompt(40, 9);
    std::vector<int32_t> table(16);
    std::iota(table.begin(), table.end(), 0);
    auto step = [&](CausalLmRunner& r, std::vector<float>& logits) {
        StepBatch batch;
        batch.seqs.push_back({1, tokens, 0, table, true});
        return r.step(batch, logits);
    };
    std::vector<float> want;
    std::vector<float> got;
    ASSERT_TRUE(step(*cpu, want).has_value());
    ASSERT_TRUE(step(*a, got).has_value());
    ASSERT_TRUE(step(*b, got).has_value());

    const Status fault = inject_device_fault(0);
    ASSERT_FALSE(fault.has_value());
    EXPECT_EQ(fault.error().code(), ErrorCode::kModelRecovering) << fault.error().full_message();
    for (auto* r : {a.get(), b.get()}) {
        auto st = step(*r, got);
        ASSERT_FALSE(st.has_value());
        EXPECT_EQ(st.error().code(), ErrorCode::kModelRecovering) << st.error().full_message();
    }

    // The node unloads a poisoned model, then loads it again. The device can be reset only once
    // every model of the faulted context is gone (each holds references to it).
    a.reset();
    ModelRunnerOptions opt;
    opt.backend.kind = "cuda";
    opt.block_size = 16;
    opt.n_blocks = 64;
    auto early = engine::load_model_runner(dir_, opt);
    ASSERT_FALSE(early.has_value());
    EXPECT_EQ(early.error().code(), ErrorCode::kCudaUnavailable);
    EXPECT_NE(early.error().full_message().find("must unload first"), std::string::npos)
        << early.error().full_message();
    b.reset();
    // Once they are gone the device is reset. Drivers differ in whether a process may then make a
    // new context (an H200 on driver 580 refuses: only the process exiting gives the device back,
    // and the neuron restarts itself). Either the load is refused as unavailable, naming the
    // restart, or the backend it returns computes correctly: never a broken one.
    auto again = engine::load_model_runner(dir_, opt);
    if (!again) {
        EXPECT_EQ(again.error().code(), ErrorCode::kCudaUnavailable);
        EXPECT_NE(again.error().full_message().find("process restart"), std::string::npos)
            << again.error().full_message();
        return;
    }
    auto& a2 = *again;
    ASSERT_TRUE(step(*a2, got).has_value());
    EXPECT_GE(cosine(got.data(), want.data(), V), 0.999);
    ASSERT_TRUE(step(*a2, got).has_value());
    EXPECT_GE(cosine(got.data(), want.data(), V), 0.999);
}

TEST_F(CudaRandomModel, KvPoolSizedFromFreeMemory) {
    ModelRunnerOptions opt;
    opt.backend.kind = "cuda";
    opt.memory_utilization = 0.5;
    opt.max_full_context_seqs = 0;  // no cap: the pool takes what the fraction leaves
    auto r = engine::load_model_runner(dir_, opt);
    ASSERT_TRUE(r.has_value()) << r.error().full_message();
    const auto devs = list_devices();
    ASSERT_FALSE(devs.empty());
    const int64_t total = devs[0].total_bytes;
    // Half the card, less weights and the 1 GiB workspace reserve: many GiB of KV on any card
    // this project targets, and never more than half of it.
    EXPECT_GT((*r)->kv_cache_bytes(), total / 4);
    EXPECT_LT((*r)->kv_cache_bytes(), total / 2);
}

}  // namespace
}  // namespace helexa::cuda::testing
