// CPU forward throughput for a Qwen3-0.6B-shaped model with random bf16 weights: prefill and
// decode tokens/s through the engine (load_model_runner + ModelRunner::step over paged KV), and
// the same math as a plain loop (contiguous KV, unfused projections straight from the mmap, the
// same threaded matmul kernel), so the overhead of the engine structure is visible. Also prints
// load time, weight/KV bytes and peak RSS.
//
//   cpu_forward_bench [--layers 28] [--prompt 512] [--decode 16] [--batch 4] [--threads 0]
//                     [--dir PATH]
// A program that prints numbers, not a test: no assertions on time.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
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
#include "helexa/engine/scheduler.h"
#include "helexa/engine/weights.h"

namespace fs = std::filesystem;
using namespace helexa::engine;  // NOLINT: a benchmark main

namespace {

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// Resident set now (the peak includes load, when the mmap and the backend copy coexist).
long rss_now_mib() {
    long pages = 0;
    long resident = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) {
            resident = 0;
        }
        std::fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024) / 1024;
}

long peak_rss_mib() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

// The plain loop: the same math with no engine structure. Each sequence has contiguous K/V
// [layer][pos][kv_width]; weights are read straight from the mmap; the projections are unfused
// but use the same threaded matmul kernel; rows of several sequences are stacked for the linears
// (as a batch step does) and attention runs per sequence.
class PlainQwen3 {
public:
    struct Segment {
        int seq = 0;
        std::vector<int32_t> ids;
        int64_t start = 0;
    };

    PlainQwen3(const WeightSet& w, const ModelConfig& c, int threads, int n_seqs,
               int64_t max_tokens)
        : w_(w), c_(c), pool_(threads), inv_freq_(rope_inv_freq(c)), max_tokens_(max_tokens) {
        const int64_t kvw = c.num_key_value_heads * c.head_dim;
        const auto per_seq = static_cast<size_t>(c.num_hidden_layers * max_tokens * kvw);
        k_.assign(static_cast<size_t>(n_seqs), std::vector<float>(per_seq, 0.0f));
        v_ = k_;
        auto f32 = [&](const std::string& name) {
            const TensorInfo* t = w_.find(name);
            std::vector<float> f(static_cast<size_t>(t->numel()));
            cpu::to_f32(f.data(), t->bytes.data(), t->dtype, t->numel());
            return f;
        };
        for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
            const std::string p = "model.layers." + std::to_string(l) + ".";
            norms_.push_back({f32(p + "input_layernorm.weight"), f32(p + "self_attn.q_norm.weight"),
                              f32(p + "self_attn.k_norm.weight"),
                              f32(p + "post_attention_layernorm.weight")});
        }
        final_norm_ = f32("model.norm.weight");
    }

    // Runs every segment; returns the logits of each segment's last row, [n_segments, vocab].
    std::vector<float> forward(const std::vector<Segment>& segs) {
        int64_t T = 0;
        std::vector<int32_t> ids;
        std::vector<int64_t> pos;
        std::vector<int64_t> seg_row;  // first row of each segment
        for (const auto& s : segs) {
            seg_row.push_back(T);
            for (size_t i = 0; i < s.ids.size(); ++i) {
                ids.push_back(s.ids[i]);
                pos.push_back(s.start + static_cast<int64_t>(i));
            }
            T += static_cast<int64_t>(s.ids.size());
        }
        const int64_t H = c_.hidden_size;
        const int64_t hd = c_.head_dim;
        const int64_t nh = c_.num_attention_heads;
        const int64_t nkv = c_.num_key_value_heads;
        const int64_t I = c_.intermediate_size;
        const int64_t kvw = nkv * hd;
        const auto eps = static_cast<float>(c_.rms_norm_eps);
        std::vector<float> x(static_cast<size_t>(T * H));
        std::vector<float> h(x.size());
        std::vector<float> q(static_cast<size_t>(T * nh * hd));
        std::vector<float> k(static_cast<size_t>(T * kvw));
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
                    const float a = static_cast<float>(pos[static_cast<size_t>(t)]) *
                                    inv_freq_[static_cast<size_t>(i)];
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
        const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
        for (int64_t l = 0; l < c_.num_hidden_layers; ++l) {
            const std::string p = "model.layers." + std::to_string(l) + ".";
            const auto& nw = norms_[static_cast<size_t>(l)];
            norm(h.data(), x.data(), nw.input, T, H);
            mm(q.data(), h.data(), p + "self_attn.q_proj.weight", nh * hd, H);
            mm(k.data(), h.data(), p + "self_attn.k_proj.weight", kvw, H);
            mm(v.data(), h.data(), p + "self_attn.v_proj.weight", kvw, H);
            norm(q.data(), q.data(), nw.q, T * nh, hd);
            norm(k.data(), k.data(), nw.k, T * nkv, hd);
            rope(q.data(), nh);
            rope(k.data(), nkv);
            for (size_t si = 0; si < segs.size(); ++si) {
                const auto& s = segs[si];
                const int64_t r0 = seg_row[si];
                const auto n = static_cast<int64_t>(s.ids.size());
                float* kc = k_[static_cast<size_t>(s.seq)].data() + l * max_tokens_ * kvw;
                float* vc = v_[static_cast<size_t>(s.seq)].data() + l * max_tokens_ * kvw;
                const auto row_bytes = static_cast<size_t>(n * kvw) * 4;
                std::memcpy(kc + s.start * kvw, k.data() + r0 * kvw, row_bytes);
                std::memcpy(vc + s.start * kvw, v.data() + r0 * kvw, row_bytes);
                pool_.parallel_for(nh, 1, [&](int64_t h0, int64_t h1, int) {
                    std::vector<float> sc(static_cast<size_t>(s.start + n));
                    for (int64_t hh = h0; hh < h1; ++hh) {
                        const int64_t g = hh / (nh / nkv);
                        for (int64_t t = 0; t < n; ++t) {
                            const float* qv = q.data() + ((r0 + t) * nh + hh) * hd;
                            const int64_t ctx = s.start + t + 1;
                            float mx = -INFINITY;
                            for (int64_t j = 0; j < ctx; ++j) {
                                sc[static_cast<size_t>(j)] =
                                    cpu::dot_f32(qv, kc + j * kvw + g * hd, hd) * scale;
                                mx = std::max(mx, sc[static_cast<size_t>(j)]);
                            }
                            float den = 0;
                            for (int64_t j = 0; j < ctx; ++j) {
                                sc[static_cast<size_t>(j)] =
                                    std::exp(sc[static_cast<size_t>(j)] - mx);
                                den += sc[static_cast<size_t>(j)];
                            }
                            float* o = att.data() + ((r0 + t) * nh + hh) * hd;
                            std::fill(o, o + hd, 0.0f);
                            for (int64_t j = 0; j < ctx; ++j) {
                                const float pr = sc[static_cast<size_t>(j)] / den;
                                const float* vv = vc + j * kvw + g * hd;
                                for (int64_t d = 0; d < hd; ++d) {
                                    o[d] += pr * vv[d];
                                }
                            }
                        }
                    }
                });
            }
            mm(h.data(), att.data(), p + "self_attn.o_proj.weight", H, nh * hd);
            for (size_t i = 0; i < x.size(); ++i) {
                x[i] += h[i];
            }
            norm(h.data(), x.data(), nw.post, T, H);
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
        const auto n_seg = static_cast<int64_t>(segs.size());
        std::vector<float> last(static_cast<size_t>(n_seg * H));
        for (int64_t si = 0; si < n_seg; ++si) {
            const int64_t row = seg_row[static_cast<size_t>(si)] +
                                static_cast<int64_t>(segs[static_cast<size_t>(si)].ids.size()) - 1;
            norm(last.data() + si * H, x.data() + row * H, final_norm_, 1, H);
        }
        std::vector<float> logits(static_cast<size_t>(n_seg * c_.vocab_size));
        const TensorInfo* head = w_.find("lm_head.weight");
        if (head == nullptr) {
            head = emb;  // tied
        }
        cpu::matmul(pool_, logits.data(), c_.vocab_size, last.data(), H, head->bytes.data(),
                    head->dtype, n_seg, c_.vocab_size, H);
        return logits;
    }

private:
    struct Norms {
        std::vector<float> input, q, k, post;
    };
    const WeightSet& w_;
    const ModelConfig& c_;
    cpu::ThreadPool pool_;
    std::vector<float> inv_freq_;
    int64_t max_tokens_ = 0;
    std::vector<Norms> norms_;
    std::vector<float> final_norm_;
    std::vector<std::vector<float>> k_;
    std::vector<std::vector<float>> v_;
};

int32_t argmax(const float* v, int64_t n) {
    return static_cast<int32_t>(std::max_element(v, v + n) - v);
}

double cpu_s() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// Wall time and cores used (process CPU time / wall time) of a measured region.
struct Span {
    double wall0 = now_s();
    double cpu0 = cpu_s();
    double wall = 0;
    double cores = 0;
    void stop() {
        wall = now_s() - wall0;
        cores = (cpu_s() - cpu0) / wall;
    }
};

// Memory bandwidth of this machine: a single-thread memcpy (read + write traffic) and a read of
// a large buffer split over the pool (what a bandwidth-bound decode step does).
struct Bandwidth {
    double memcpy_gbs = 0;  // bytes read + written per second
    double read_1t_gbs = 0;
    double read_nt_gbs = 0;
};

Bandwidth measure_bandwidth(int threads) {
    const size_t n = size_t{256} << 20;
    std::vector<uint64_t> a(n / 8, 1);
    std::vector<uint64_t> b(n / 8, 2);
    Bandwidth bw;
    double best = 1e9;
    for (int r = 0; r < 5; ++r) {
        const double t0 = now_s();
        std::memcpy(b.data(), a.data(), n);
        best = std::min(best, now_s() - t0);
    }
    bw.memcpy_gbs = 2.0 * static_cast<double>(n) / best / 1e9;
    volatile uint64_t sink = 0;
    auto read_range = [&](int64_t begin, int64_t end) {
        uint64_t acc = 0;
        for (int64_t i = begin; i < end; ++i) {
            acc += a[static_cast<size_t>(i)];
        }
        return acc;
    };
    best = 1e9;
    for (int r = 0; r < 5; ++r) {
        const double t0 = now_s();
        sink = sink + read_range(0, static_cast<int64_t>(a.size()));
        best = std::min(best, now_s() - t0);
    }
    bw.read_1t_gbs = static_cast<double>(n) / best / 1e9;
    cpu::ThreadPool pool(threads);
    std::vector<uint64_t> part(static_cast<size_t>(pool.size()), 0);
    best = 1e9;
    for (int r = 0; r < 5; ++r) {
        const double t0 = now_s();
        pool.parallel_for(static_cast<int64_t>(a.size()), 1 << 16,
                          [&](int64_t b0, int64_t b1, int c) {
                              part[static_cast<size_t>(c)] += read_range(b0, b1);
                          });
        best = std::min(best, now_s() - t0);
    }
    sink = sink + part[0];
    bw.read_nt_gbs = static_cast<double>(n) / best / 1e9;
    return bw;
}

std::vector<int32_t> make_prompt(int64_t n, int salt) {
    std::vector<int32_t> p(static_cast<size_t>(n));
    for (size_t i = 0; i < p.size(); ++i) {
        p[i] = static_cast<int32_t>((i * 7919 + 13 + static_cast<size_t>(salt) * 104729) %
                                    151643);
    }
    return p;
}

class NullDecoder final : public TokenTextDecoder {
public:
    std::string push(int32_t /*id*/) override { return "x"; }
    std::string flush() override { return {}; }
};

struct Row {
    std::string what;
    double engine = 0;   // tok/s through ModelRunner::step
    double sched = 0;    // tok/s through the Scheduler (0 = not measured)
    double plain = 0;    // tok/s, plain loop
    double cores_engine = 0;
    double cores_plain = 0;
};

}  // namespace

int main(int argc, char** argv) {
    int64_t layers = 28;
    int64_t prompt_len = 512;
    int64_t n_decode = 16;
    int64_t batch = 4;
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
        } else if (a == "--batch") {
            batch = std::stoll(argv[i + 1]);
        } else if (a == "--threads") {
            threads = std::stoi(argv[i + 1]);
        } else if (a == "--dir") {
            dir_arg = argv[i + 1];
        }
    }
    const int n_threads =
        threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
    const Bandwidth bw = measure_bandwidth(n_threads);
    std::printf("machine: %d hardware threads, using %d; memcpy %.2f GB/s (read+write), read "
                "%.2f GB/s on 1 thread, %.2f GB/s on %d\n",
                static_cast<int>(std::thread::hardware_concurrency()), n_threads, bw.memcpy_gbs,
                bw.read_1t_gbs, bw.read_nt_gbs, n_threads);

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
    // Sequences: 0 = the long prompt (prefill, batch-1 decode); 1..batch = short prompts for the
    // batched decode. Each gets a disjoint range of blocks.
    const int64_t bs = 16;
    const int64_t short_len = 32;
    const int64_t per_seq_blocks = (prompt_len + n_decode + bs - 1) / bs + 1;
    ModelRunnerOptions opt;
    opt.backend.n_threads = threads;
    opt.block_size = bs;
    opt.n_blocks = per_seq_blocks * (batch + 1);
    t0 = now_s();
    auto runner = load_model_runner(dir, opt);
    if (!runner) {
        std::fprintf(stderr, "load: %s\n", runner.error().full_message().c_str());
        return 1;
    }
    CausalLmRunner& r = **runner;
    const int64_t V = r.vocab_size();
    const double weight_mib = static_cast<double>(r.weight_bytes()) / 1048576.0;
    std::printf("model: qwen3 0.6B-shaped, %lld layers, bf16; load %.2f s, weights %.0f MiB, "
                "kv pool %.0f MiB, rss after load %ld MiB (peak during load %ld MiB)\n",
                static_cast<long long>(layers), now_s() - t0, weight_mib,
                static_cast<double>(r.kv_cache_bytes()) / 1048576.0, rss_now_mib(),
                peak_rss_mib());
    std::vector<std::vector<int32_t>> tables(static_cast<size_t>(batch + 1));
    for (int64_t s = 0; s <= batch; ++s) {
        for (int64_t b = 0; b < per_seq_blocks; ++b) {
            tables[static_cast<size_t>(s)].push_back(static_cast<int32_t>(s * per_seq_blocks + b));
        }
    }
    std::vector<Row> rows;
    std::vector<float> logits;
    auto must = [](const helexa::Status& st, const char* what) {
        if (!st) {
            std::fprintf(stderr, "%s: %s\n", what, st.error().full_message().c_str());
            std::exit(1);
        }
    };

    // ---- engine, ModelRunner::step ----------------------------------------------------------
    const auto prompt = make_prompt(prompt_len, 0);
    Row prefill{"prefill " + std::to_string(prompt_len) + " tokens"};
    Row decode1{"decode, batch 1"};
    Row decodeB{"decode, batch " + std::to_string(batch) + " (aggregate)"};
    {
        StepBatch b;
        b.seqs.push_back({1, prompt, 0, tables[0], true});
        Span sp;
        must(r.step(b, logits), "prefill");
        sp.stop();
        prefill.engine = static_cast<double>(prompt_len) / sp.wall;
        prefill.cores_engine = sp.cores;
    }
    int32_t engine_last = argmax(logits.data(), V);
    {
        std::vector<int32_t> tok = {engine_last};
        Span sp;
        for (int64_t i = 0; i < n_decode; ++i) {
            StepBatch d;
            d.seqs.push_back({1, tok, prompt_len + i, tables[0], true});
            must(r.step(d, logits), "decode");
            tok[0] = argmax(logits.data(), V);
        }
        sp.stop();
        engine_last = tok[0];
        decode1.engine = static_cast<double>(n_decode) / sp.wall;
        decode1.cores_engine = sp.cores;
    }
    std::vector<std::vector<int32_t>> btok(static_cast<size_t>(batch));
    {
        StepBatch b;
        std::vector<std::vector<int32_t>> shorts;
        for (int64_t s = 0; s < batch; ++s) {
            shorts.push_back(make_prompt(short_len, static_cast<int>(s + 1)));
        }
        for (int64_t s = 0; s < batch; ++s) {
            b.seqs.push_back({static_cast<uint64_t>(s + 2), shorts[static_cast<size_t>(s)], 0,
                              tables[static_cast<size_t>(s + 1)], true});
        }
        must(r.step(b, logits), "batch prefill");
        for (int64_t s = 0; s < batch; ++s) {
            btok[static_cast<size_t>(s)] = {argmax(logits.data() + s * V, V)};
        }
        Span sp;
        for (int64_t i = 0; i < n_decode; ++i) {
            StepBatch d;
            for (int64_t s = 0; s < batch; ++s) {
                d.seqs.push_back({static_cast<uint64_t>(s + 2), btok[static_cast<size_t>(s)],
                                  short_len + i, tables[static_cast<size_t>(s + 1)], true});
            }
            must(r.step(d, logits), "batch decode");
            for (int64_t s = 0; s < batch; ++s) {
                btok[static_cast<size_t>(s)][0] = argmax(logits.data() + s * V, V);
            }
        }
        sp.stop();
        decodeB.engine = static_cast<double>(n_decode * batch) / sp.wall;
        decodeB.cores_engine = sp.cores;
    }

    // ---- engine through the Scheduler (the path neuron serves) -------------------------------
    {
        SchedulerModel model;
        model.generation = r.generation_defaults();
        model.context_limit = r.max_context_tokens();
        model.text_decoder = [](const GenerateRequest&) { return std::make_unique<NullDecoder>(); };
        SchedulerOptions so;
        so.prefix_cache.enabled = false;  // every prompt is new; measure compute, not reuse
        Scheduler sched(r, model, so);
        auto submit = [&](std::vector<int32_t> p, int64_t max_tokens,
                          std::vector<double>& first, std::vector<int64_t>& count, size_t i) {
            GenerateRequest g;
            g.prompt_tokens = std::move(p);
            g.sampling.temperature = 0.0F;
            g.sampling.max_tokens = max_tokens;
            auto id = sched.submit(g, [&first, &count, i](EngineEvent ev) {
                if (ev.kind == EngineEvent::Kind::kTextDelta) {
                    if (first[i] == 0) {
                        first[i] = now_s();
                    }
                    ++count[i];
                }
            });
            if (!id) {
                std::fprintf(stderr, "submit: %s\n", id.error().full_message().c_str());
                std::exit(1);
            }
        };
        std::vector<double> first(1, 0.0);
        std::vector<int64_t> count(1, 0);
        const double ts = now_s();
        submit(make_prompt(prompt_len, 100), n_decode + 1, first, count, 0);
        while (sched.step_once()) {
        }
        const double te = now_s();
        prefill.sched = static_cast<double>(prompt_len) / (first[0] - ts);
        decode1.sched = static_cast<double>(count[0] - 1) / (te - first[0]);

        first.assign(static_cast<size_t>(batch), 0.0);
        count.assign(static_cast<size_t>(batch), 0);
        for (int64_t s = 0; s < batch; ++s) {
            submit(make_prompt(short_len, static_cast<int>(s + 200)), n_decode + 1, first, count,
                   static_cast<size_t>(s));
        }
        while (sched.step_once()) {
        }
        const double tb = now_s();
        const double all_started = *std::max_element(first.begin(), first.end());
        decodeB.sched = static_cast<double>(n_decode * batch) / (tb - all_started);
    }
    const int64_t kv_bytes_per_tok = kv_bytes_per_token(r.config());
    const auto weight_bytes = static_cast<double>(r.weight_bytes());
    const long rss_engine = rss_now_mib();
    runner->reset();  // free the engine's copy before the plain loop

    // ---- plain loop ---------------------------------------------------------------------------
    auto weights = WeightSet::open(dir);
    auto config = load_model_config(dir);
    if (!weights || !config) {
        std::fprintf(stderr, "plain loop: cannot open the snapshot\n");
        return 1;
    }
    PlainQwen3 plain(*weights, *config, threads, static_cast<int>(batch + 1),
                     prompt_len + n_decode);
    {
        Span sp;
        logits = plain.forward({{0, prompt, 0}});
        sp.stop();
        prefill.plain = static_cast<double>(prompt_len) / sp.wall;
        prefill.cores_plain = sp.cores;
    }
    std::vector<int32_t> tok = {argmax(logits.data(), V)};
    {
        Span sp;
        for (int64_t i = 0; i < n_decode; ++i) {
            logits = plain.forward({{0, tok, prompt_len + i}});
            tok[0] = argmax(logits.data(), V);
        }
        sp.stop();
        decode1.plain = static_cast<double>(n_decode) / sp.wall;
        decode1.cores_plain = sp.cores;
    }
    const bool same_tokens = tok[0] == engine_last;
    {
        std::vector<PlainQwen3::Segment> segs;
        for (int64_t s = 0; s < batch; ++s) {
            segs.push_back(
                {static_cast<int>(s + 1), make_prompt(short_len, static_cast<int>(s + 1)), 0});
        }
        logits = plain.forward(segs);
        Span sp;
        for (int64_t i = 0; i < n_decode; ++i) {
            segs.clear();
            for (int64_t s = 0; s < batch; ++s) {
                segs.push_back({static_cast<int>(s + 1), {argmax(logits.data() + s * V, V)},
                                short_len + i});
            }
            logits = plain.forward(segs);
        }
        sp.stop();
        decodeB.plain = static_cast<double>(n_decode * batch) / sp.wall;
        decodeB.cores_plain = sp.cores;
    }
    for (int64_t s = 0; s < batch; ++s) {
        // Both paths ran the same greedy steps; their last tokens must agree.
        if (argmax(logits.data() + s * V, V) != btok[static_cast<size_t>(s)][0]) {
            std::printf("note: batch sequence %lld differs between engine and plain loop\n",
                        static_cast<long long>(s));
        }
    }
    rows = {prefill, decode1, decodeB};

    std::printf("\n| %-28s | engine step | scheduler | plain loop | engine / plain | cores "
                "(engine, plain) |\n",
                "tokens/s");
    std::printf("|%s|-------------|-----------|------------|----------------|-------------------"
                "-----|\n",
                std::string(30, '-').c_str());
    for (const auto& row : rows) {
        std::printf("| %-28s | %11.2f | %9.2f | %10.2f | %14.2f | %9.2f, %-12.2f |\n",
                    row.what.c_str(), row.engine, row.sched, row.plain, row.engine / row.plain,
                    row.cores_engine, row.cores_plain);
    }
    // Decode is bandwidth-bound: every weight byte (the tied embedding as lm_head included) and
    // the sequence's K/V are read once per step.
    const double ctx = static_cast<double>(prompt_len) + static_cast<double>(n_decode) / 2.0;
    const double bytes_tok = weight_bytes + ctx * static_cast<double>(kv_bytes_per_tok);
    const double ceiling = bw.read_nt_gbs * 1e9 / bytes_tok;
    std::printf("\ndecode batch 1 reads %.0f MiB per token (weights %.0f + kv %.0f at context "
                "%.0f); bandwidth ceiling %.2f tok/s at %.2f GB/s; engine reaches %.0f%%, plain "
                "loop %.0f%%\n",
                bytes_tok / 1048576.0, weight_bytes / 1048576.0,
                ctx * static_cast<double>(kv_bytes_per_tok) / 1048576.0, ctx, ceiling,
                bw.read_nt_gbs, 100.0 * decode1.engine / ceiling, 100.0 * decode1.plain / ceiling);
    std::printf("same final greedy token (engine vs plain, batch 1): %s\n",
                same_tokens ? "yes" : "no");
    std::printf("rss at the end of the engine runs %ld MiB; peak rss of the whole run %ld MiB\n",
                rss_engine, peak_rss_mib());
    return 0;
}
