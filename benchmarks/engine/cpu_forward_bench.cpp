// CPU forward throughput for a Qwen3-0.6B-shaped model with random bf16 weights: prefill and
// decode tokens/s through the engine (load_model_runner + ModelRunner::step over paged KV), and
// the same math as a plain loop (contiguous KV, unfused projections straight from the mmap, the
// same threaded matmul kernel), so the overhead of the engine structure is visible. Also prints
// load time, weight/KV bytes and peak RSS.
//
//   cpu_forward_bench [--layers 28] [--prompt 512] [--decode 32] [--threads 0] [--dir PATH]
// A program that prints numbers, not a test: no assertions on time.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "helexa/engine/cpu_backend.h"
#include "helexa/engine/model_runner.h"
#include "helexa/engine/random_model.h"
#include "helexa/engine/weights.h"

namespace fs = std::filesystem;
using namespace helexa::engine;  // NOLINT: a benchmark main

namespace {

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

long peak_rss_mib() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

// The plain loop: one sequence, contiguous K/V [layer][pos][kv_width], weights from the mmap.
class PlainQwen3 {
public:
    PlainQwen3(const WeightSet& w, const ModelConfig& c, int threads, int64_t max_tokens)
        : w_(w), c_(c), pool_(threads), inv_freq_(rope_inv_freq(c)) {
        const int64_t kvw = c.num_key_value_heads * c.head_dim;
        k_.assign(static_cast<size_t>(c.num_hidden_layers * max_tokens * kvw), 0.0f);
        v_.assign(k_.size(), 0.0f);
        max_tokens_ = max_tokens;
    }

    // Runs tokens at positions [start, start + n); returns the last row's logits.
    std::vector<float> forward(const std::vector<int32_t>& ids, int64_t start) {
        const int64_t T = static_cast<int64_t>(ids.size());
        const int64_t H = c_.hidden_size;
        const int64_t hd = c_.head_dim;
        const int64_t nh = c_.num_attention_heads;
        const int64_t nkv = c_.num_key_value_heads;
        const int64_t I = c_.intermediate_size;
        const auto eps = static_cast<float>(c_.rms_norm_eps);
        std::vector<float> x(static_cast<size_t>(T * H));
        std::vector<float> h(x.size());
        std::vector<float> q(static_cast<size_t>(T * nh * hd));
        std::vector<float> k(static_cast<size_t>(T * nkv * hd));
        std::vector<float> v(k.size());
        std::vector<float> att(q.size());
        std::vector<float> gate(static_cast<size_t>(T * I));
        std::vector<float> up(gate.size());
        const TensorInfo* emb = w_.find("model.embed_tokens.weight");
        for (int64_t t = 0; t < T; ++t) {
            cpu::to_f32(x.data() + t * H, emb->bytes.data() + ids[static_cast<size_t>(t)] * H * 2,
                        emb->dtype, H);
        }
        auto mm = [&](float* out, const float* in, const std::string& name, int64_t N,
                      int64_t K) {
            const TensorInfo* t = w_.find(name);
            cpu::matmul(pool_, out, N, in, K, t->bytes.data(), t->dtype, T, N, K);
        };
        auto weight_f32 = [&](const std::string& name) {
            const TensorInfo* t = w_.find(name);
            std::vector<float> f(static_cast<size_t>(t->numel()));
            cpu::to_f32(f.data(), t->bytes.data(), t->dtype, t->numel());
            return f;
        };
        auto norm = [&](float* out, const float* in, const std::vector<float>& wt, int64_t rows,
                        int64_t d) {
            for (int64_t r = 0; r < rows; ++r) {
                double ss = 0;
                for (int64_t i = 0; i < d; ++i) {
                    ss += static_cast<double>(in[r * d + i]) * in[r * d + i];
                }
                const auto inv = static_cast<float>(1.0 / std::sqrt(ss / d + eps));
                for (int64_t i = 0; i < d; ++i) {
                    out[r * d + i] = in[r * d + i] * inv * wt[static_cast<size_t>(i)];
                }
            }
        };
        auto rope = [&](float* xs, int64_t heads) {
            const int64_t half = hd / 2;
            for (int64_t t = 0; t < T; ++t) {
                for (int64_t i = 0; i < half; ++i) {
                    const float a = static_cast<float>(start + t) * inv_freq_[static_cast<size_t>(i)];
                    const float cs = std::cos(a);
                    const float sn = std::sin(a);
                    for (int64_t hh = 0; hh < heads; ++hh) {
                        float* p = xs + (t * heads + hh) * hd;
                        const float a0 = p[i];
                        const float a1 = p[i + half];
                        p[i] = a0 * cs - a1 * sn;
                        p[i + half] = a1 * cs + a0 * sn;
                    }
                }
            }
        };
        const int64_t kvw = nkv * hd;
        for (int64_t l = 0; l < c_.num_hidden_layers; ++l) {
            const std::string p = "model.layers." + std::to_string(l) + ".";
            norm(h.data(), x.data(), weight_f32(p + "input_layernorm.weight"), T, H);
            mm(q.data(), h.data(), p + "self_attn.q_proj.weight", nh * hd, H);
            mm(k.data(), h.data(), p + "self_attn.k_proj.weight", kvw, H);
            mm(v.data(), h.data(), p + "self_attn.v_proj.weight", kvw, H);
            norm(q.data(), q.data(), weight_f32(p + "self_attn.q_norm.weight"), T * nh, hd);
            norm(k.data(), k.data(), weight_f32(p + "self_attn.k_norm.weight"), T * nkv, hd);
            rope(q.data(), nh);
            rope(k.data(), nkv);
            float* kc = k_.data() + l * max_tokens_ * kvw;
            float* vc = v_.data() + l * max_tokens_ * kvw;
            std::memcpy(kc + start * kvw, k.data(), k.size() * 4);
            std::memcpy(vc + start * kvw, v.data(), v.size() * 4);
            pool_.parallel_for(nh, 1, [&](int64_t h0, int64_t h1, int) {
                std::vector<float> sc(static_cast<size_t>(start + T));
                for (int64_t hh = h0; hh < h1; ++hh) {
                    const int64_t g = hh / (nh / nkv);
                    for (int64_t t = 0; t < T; ++t) {
                        const float* qv = q.data() + (t * nh + hh) * hd;
                        const int64_t n = start + t + 1;
                        float mx = -INFINITY;
                        for (int64_t j = 0; j < n; ++j) {
                            sc[static_cast<size_t>(j)] =
                                cpu::dot_f32(qv, kc + j * kvw + g * hd, hd) / std::sqrt(float(hd));
                            mx = std::max(mx, sc[static_cast<size_t>(j)]);
                        }
                        float den = 0;
                        for (int64_t j = 0; j < n; ++j) {
                            sc[static_cast<size_t>(j)] = std::exp(sc[static_cast<size_t>(j)] - mx);
                            den += sc[static_cast<size_t>(j)];
                        }
                        float* o = att.data() + (t * nh + hh) * hd;
                        std::fill(o, o + hd, 0.0f);
                        for (int64_t j = 0; j < n; ++j) {
                            const float pr = sc[static_cast<size_t>(j)] / den;
                            const float* vv = vc + j * kvw + g * hd;
                            for (int64_t d = 0; d < hd; ++d) {
                                o[d] += pr * vv[d];
                            }
                        }
                    }
                }
            });
            mm(h.data(), att.data(), p + "self_attn.o_proj.weight", H, nh * hd);
            for (size_t i = 0; i < x.size(); ++i) {
                x[i] += h[i];
            }
            norm(h.data(), x.data(), weight_f32(p + "post_attention_layernorm.weight"), T, H);
            mm(gate.data(), h.data(), p + "mlp.gate_proj.weight", I, H);
            mm(up.data(), h.data(), p + "mlp.up_proj.weight", I, H);
            for (size_t i = 0; i < gate.size(); ++i) {
                gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
            }
            mm(h.data(), gate.data(), p + "mlp.down_proj.weight", H, I);
            for (size_t i = 0; i < x.size(); ++i) {
                x[i] += h[i];
            }
        }
        std::vector<float> last(static_cast<size_t>(H));
        norm(last.data(), x.data() + (T - 1) * H, weight_f32("model.norm.weight"), 1, H);
        std::vector<float> logits(static_cast<size_t>(c_.vocab_size));
        cpu::matmul(pool_, logits.data(), c_.vocab_size, last.data(), H, emb->bytes.data(),
                    emb->dtype, 1, c_.vocab_size, H);
        return logits;
    }

private:
    const WeightSet& w_;
    const ModelConfig& c_;
    cpu::ThreadPool pool_;
    std::vector<float> inv_freq_;
    std::vector<float> k_;
    std::vector<float> v_;
    int64_t max_tokens_ = 0;
};

int32_t argmax(const std::vector<float>& v) {
    return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

}  // namespace

int main(int argc, char** argv) {
    int64_t layers = 28;
    int64_t prompt_len = 512;
    int64_t n_decode = 32;
    int threads = 0;
    std::string dir_arg;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--layers") {
            layers = std::stoll(argv[i + 1]);
        } else if (a == "--prompt") {
            prompt_len = std::stoll(argv[i + 1]);
        } else if (a == "--decode") {
            n_decode = std::stoll(argv[i + 1]);
        } else if (a == "--threads") {
            threads = std::stoi(argv[i + 1]);
        } else if (a == "--dir") {
            dir_arg = argv[i + 1];
        }
    }
    RandomModelSpec spec;  // Qwen3-0.6B
    spec.model_type = "qwen3";
    spec.hidden_size = 1024;
    spec.intermediate_size = 3072;
    spec.num_hidden_layers = layers;
    spec.num_attention_heads = 16;
    spec.num_key_value_heads = 8;
    spec.head_dim = 128;
    spec.vocab_size = 151936;
    spec.max_position_embeddings = 40960;
    spec.tie_word_embeddings = true;
    spec.dtype = DType::kBF16;
    spec.seed = 1;
    const fs::path dir = dir_arg.empty()
                             ? fs::temp_directory_path() / ("helexa_bench_qwen3_" +
                                                            std::to_string(layers))
                             : fs::path(dir_arg);
    double t0 = now_s();
    if (!fs::exists(dir / "model.safetensors")) {
        if (auto st = write_random_model(spec, dir); !st) {
            std::fprintf(stderr, "write: %s\n", st.error().full_message().c_str());
            return 1;
        }
        std::printf("wrote %s (%.1f M params) in %.2f s\n", dir.c_str(),
                    random_model_parameter_count(spec) / 1e6, now_s() - t0);
    }
    ModelRunnerOptions opt;
    opt.backend.n_threads = threads;
    opt.block_size = 16;
    opt.n_blocks = (prompt_len + n_decode + 15) / 16 + 1;
    t0 = now_s();
    auto runner = load_model_runner(dir, opt);
    if (!runner) {
        std::fprintf(stderr, "load: %s\n", runner.error().full_message().c_str());
        return 1;
    }
    const int n_threads = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
    std::printf("model: qwen3 0.6B-shaped, %lld layers, bf16, threads %d\n",
                static_cast<long long>(layers), n_threads);
    std::printf("load: %.2f s, weights %.0f MiB, kv %.0f MiB, rss after load %ld MiB\n",
                now_s() - t0, (*runner)->weight_bytes() / 1048576.0,
                (*runner)->kv_cache_bytes() / 1048576.0, peak_rss_mib());

    std::vector<int32_t> prompt(static_cast<size_t>(prompt_len));
    for (size_t i = 0; i < prompt.size(); ++i) {
        prompt[i] = static_cast<int32_t>((i * 7919 + 13) % 151936);
    }
    std::vector<int32_t> table(static_cast<size_t>(opt.n_blocks));
    std::iota(table.begin(), table.end(), 0);
    std::vector<float> logits;
    StepBatch b;
    b.seqs.push_back({1, prompt, 0, table, true});
    t0 = now_s();
    if (auto st = (*runner)->step(b, logits); !st) {
        std::fprintf(stderr, "prefill: %s\n", st.error().full_message().c_str());
        return 1;
    }
    const double prefill_s = now_s() - t0;
    std::vector<int32_t> tok = {argmax(logits)};
    t0 = now_s();
    for (int64_t i = 0; i < n_decode; ++i) {
        StepBatch d;
        d.seqs.push_back({1, tok, prompt_len + i, table, true});
        if (auto st = (*runner)->step(d, logits); !st) {
            std::fprintf(stderr, "decode: %s\n", st.error().full_message().c_str());
            return 1;
        }
        tok[0] = argmax(logits);
    }
    const double decode_s = now_s() - t0;
    std::printf("engine: prefill %lld tok in %.2f s = %.1f tok/s; decode %lld tok = %.2f tok/s "
                "(%.1f ms/tok)\n",
                static_cast<long long>(prompt_len), prefill_s, prompt_len / prefill_s,
                static_cast<long long>(n_decode), n_decode / decode_s, 1e3 * decode_s / n_decode);
    const int32_t engine_last = tok[0];
    runner->reset();
    std::printf("peak rss (engine): %ld MiB\n", peak_rss_mib());

    auto weights = WeightSet::open(dir);
    auto config = load_model_config(dir);
    if (!weights || !config) {
        return 1;
    }
    PlainQwen3 plain(*weights, *config, threads, prompt_len + n_decode);
    t0 = now_s();
    logits = plain.forward(prompt, 0);
    const double plain_prefill_s = now_s() - t0;
    tok = {argmax(logits)};
    t0 = now_s();
    for (int64_t i = 0; i < n_decode; ++i) {
        logits = plain.forward(tok, prompt_len + i);
        tok[0] = argmax(logits);
    }
    const double plain_decode_s = now_s() - t0;
    std::printf("plain loop: prefill %.1f tok/s; decode %.2f tok/s (%.1f ms/tok); same final "
                "token as engine: %s\n",
                prompt_len / plain_prefill_s, n_decode / plain_decode_s,
                1e3 * plain_decode_s / n_decode, tok[0] == engine_last ? "yes" : "no");
    std::printf("peak rss (total): %ld MiB\n", peak_rss_mib());
    return 0;
}
