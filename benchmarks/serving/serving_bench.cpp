// Serving benchmark (issue 8 "concurrency", measured as an operator would: over HTTP against a
// running neuron or cortex). For each concurrency B, B streaming completion requests go out at
// once, each a prompt of exactly P random token ids (distinct per stream, so the prefix cache
// shares nothing) and exactly N output tokens (`ignore_eos`, greedy), and one JSON line is
// printed with what the clients saw:
//   tokens_per_s         all completion tokens over the wave's wall time (prefill included)
//   decode_tokens_per_s  tokens arriving while every stream is decoding (from the last stream's
//                        first token to the first stream's last) over that window: the aggregate
//                        decode rate of the batch, the figure that compares with
//                        cuda_engine_bench's concurrent decode (same P and N; there every prompt
//                        is prefilled first, here the prompts' chunks share the first steps)
//   ttft_ms_p50 / max, itl_ms_p50 / p99 (gaps between a stream's chunks)
// A wave whose every stream did not get exactly N tokens with status 200 prints "ok":false and
// makes the exit code 1. Before the first wave, a warm-up wave of short requests (the serving
// process's first prefills pay their one-time tuning).
//
//   serving_bench --url http://127.0.0.1:13131 --model ID [--concurrency 1,8,32,64]
//                 [--prompt-tokens 512] [--output-tokens 256] [--ids 1000:100000]
//                 [--label NAME] [--seed N] [--timeout-s 600] [--repetition-penalty X]
// A program that prints numbers, not a test (scripts/gpu/serving_run.sh runs it on the GPU host).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "helexa/net/client.h"
#include "helexa/net/sse.h"

namespace {

namespace asio = boost::asio;
namespace net = helexa::net;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Options {
    std::string url = "http://127.0.0.1:13131";
    std::string model;
    std::vector<int64_t> concurrency = {1, 8, 32, 64};
    int64_t prompt_tokens = 512;
    int64_t output_tokens = 256;
    int32_t id_lo = 1000;
    int32_t id_hi = 100000;
    std::string label = "serving";
    uint64_t seed = 1;
    int64_t timeout_s = 600;
    // Sent when set; else the engine's default (1.1) applies and every row is drawn with it.
    // 1 makes the requests plain greedy: what overlapped decoding (NEURON_OVERLAP_DECODE)
    // takes ahead.
    std::optional<double> repetition_penalty;
};

// What one stream saw, in seconds from the wave's start.
struct StreamResult {
    std::string error;  // empty when the request succeeded
    double first = -1;  // first chunk with a choice
    double last = -1;   // last chunk with a choice
    double done = -1;   // the response's end
    int64_t tokens = 0;  // usage.completion_tokens
    std::vector<double> arrivals;  // each chunk with a choice (about one token each)
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr,
                 "serving_bench: %s\nusage: serving_bench --url URL --model ID [--concurrency "
                 "1,8,32,64] [--prompt-tokens 512] [--output-tokens 256] [--ids LO:HI] [--label "
                 "NAME] [--seed N] [--timeout-s 600] [--repetition-penalty X]\n",
                 why);
    std::exit(2);
}

int64_t positive(std::string_view flag, const std::string& text) {
    char* end = nullptr;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || v < 1) {
        usage((std::string(flag) + " needs a positive integer").c_str());
    }
    return v;
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (i + 1 >= argc) {
            usage((std::string(a) + " needs a value").c_str());
        }
        const std::string v = argv[++i];
        if (a == "--url") {
            o.url = v;
        } else if (a == "--model") {
            o.model = v;
        } else if (a == "--concurrency") {
            o.concurrency.clear();
            size_t pos = 0;
            while (pos <= v.size()) {
                const size_t comma = std::min(v.find(',', pos), v.size());
                o.concurrency.push_back(positive(a, v.substr(pos, comma - pos)));
                pos = comma + 1;
            }
        } else if (a == "--prompt-tokens") {
            o.prompt_tokens = positive(a, v);
        } else if (a == "--output-tokens") {
            o.output_tokens = positive(a, v);
        } else if (a == "--ids") {
            const size_t colon = v.find(':');
            if (colon == std::string::npos) {
                usage("--ids needs LO:HI");
            }
            o.id_lo = static_cast<int32_t>(positive(a, v.substr(0, colon)));
            o.id_hi = static_cast<int32_t>(positive(a, v.substr(colon + 1)));
            if (o.id_hi <= o.id_lo) {
                usage("--ids needs LO < HI");
            }
        } else if (a == "--label") {
            o.label = v;
        } else if (a == "--seed") {
            o.seed = static_cast<uint64_t>(positive(a, v));
        } else if (a == "--timeout-s") {
            o.timeout_s = positive(a, v);
        } else if (a == "--repetition-penalty") {
            char* end = nullptr;
            const double x = std::strtod(v.c_str(), &end);
            if (v.empty() || *end != '\0' || !(x > 0.0)) {
                usage("--repetition-penalty needs a number > 0");
            }
            o.repetition_penalty = x;
        } else {
            usage(("unknown flag " + std::string(a)).c_str());
        }
    }
    if (o.model.empty()) {
        usage("--model is required");
    }
    return o;
}

// The request body of stream `i` of a wave: its own random prompt, exactly `output` tokens.
std::string request_body(const Options& o, uint64_t wave, int64_t i, int64_t output) {
    std::mt19937_64 rng(o.seed * 1000003ULL + wave * 10007ULL + static_cast<uint64_t>(i));
    std::uniform_int_distribution<int32_t> id(o.id_lo, o.id_hi - 1);
    json prompt = json::array();
    for (int64_t t = 0; t < o.prompt_tokens; ++t) {
        prompt.push_back(id(rng));
    }
    json body{{"model", o.model},
              {"prompt", std::move(prompt)},
              {"max_tokens", output},
              {"ignore_eos", true},
              {"temperature", 0},
              {"stream", true},
              {"stream_options", {{"include_usage", true}}}};
    if (o.repetition_penalty) {
        body["repetition_penalty"] = *o.repetition_penalty;
    }
    return body.dump();
}

asio::awaitable<void> run_stream(net::Client& client, const Options& o, std::string body,
                                 Clock::time_point t0, StreamResult& out) {
    auto seconds = [t0] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
    net::ClientRequest req;
    req.method = "POST";
    req.url = o.url + "/v1/completions";
    req.headers.set("content-type", "application/json");
    req.body = std::move(body);
    req.read_timeout = std::chrono::seconds(o.timeout_s);
    auto st = co_await client.stream(std::move(req));
    if (!st) {
        out.error = st.error().message();
        co_return;
    }
    if (st->status() != 200) {
        auto rest = co_await st->read_all();
        out.error = "status " + std::to_string(st->status()) + ": " +
                    (rest ? rest->substr(0, 300) : rest.error().message());
        co_return;
    }
    net::SseParser parser;
    std::vector<net::SseEvent> events;
    for (;;) {
        auto piece = co_await st->next();
        if (!piece) {
            out.error = piece.error().message();
            co_return;
        }
        if (!*piece) {
            out.done = seconds();
            break;
        }
        events.clear();
        parser.feed(**piece, events);
        const double now = seconds();
        for (const auto& e : events) {
            if (e.data == "[DONE]") {
                continue;
            }
            const json chunk = json::parse(e.data, nullptr, false);
            if (chunk.is_discarded()) {
                out.error = "a chunk is not JSON: " + e.data.substr(0, 200);
                co_return;
            }
            if (chunk.contains("error")) {
                out.error = chunk["error"].dump();
                co_return;
            }
            if (auto u = chunk.find("usage"); u != chunk.end() && u->is_object()) {
                out.tokens = u->value("completion_tokens", int64_t{0});
            }
            if (auto c = chunk.find("choices"); c != chunk.end() && c->is_array() && !c->empty()) {
                if (out.first < 0) {
                    out.first = now;
                }
                out.last = now;
                out.arrivals.push_back(now);
            }
        }
    }
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    const auto i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

// One wave of B streams at once; the results in stream order.
std::vector<StreamResult> wave(const Options& o, uint64_t wave_id, int64_t B, int64_t output) {
    asio::io_context io;
    net::ClientOptions copts;
    copts.max_idle_per_host = static_cast<size_t>(B);
    copts.user_agent = "helexa-serving-bench";
    net::Client client(io.get_executor(), copts);
    std::vector<StreamResult> results(static_cast<size_t>(B));
    std::vector<std::string> bodies;
    for (int64_t i = 0; i < B; ++i) {
        bodies.push_back(request_body(o, wave_id, i, output));
    }
    const auto t0 = Clock::now();
    int64_t running = B;
    for (int64_t i = 0; i < B; ++i) {
        asio::co_spawn(io,
                       run_stream(client, o, std::move(bodies[static_cast<size_t>(i)]), t0,
                                  results[static_cast<size_t>(i)]),
                       [&](const std::exception_ptr&) {
                           // The last stream closes the pooled connections, whose idle timers
                           // would keep the context running.
                           if (--running == 0) {
                               client.close_idle();
                           }
                       });
    }
    io.run();
    return results;
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    int status = 0;
    // Warm-up: a few short requests, not reported unless they fail.
    const int64_t warm = std::min<int64_t>(8, *std::max_element(o.concurrency.begin(),
                                                                 o.concurrency.end()));
    for (const auto& r : wave(o, 0, warm, 4)) {
        if (!r.error.empty()) {
            std::fprintf(stderr, "serving_bench: warm-up request failed: %s\n", r.error.c_str());
            return 1;
        }
    }
    uint64_t wave_id = 1;
    for (int64_t B : o.concurrency) {
        const auto results = wave(o, wave_id++, B, o.output_tokens);
        double wall = 0;  // from sending to the last response's end
        for (const auto& r : results) {
            wall = std::max(wall, r.done);
        }
        int64_t tokens = 0;
        int64_t errors = 0;
        std::vector<double> ttft;
        std::vector<double> gaps;
        std::string first_error;
        double all_decoding = 0;    // the last stream's first token
        double one_finished = 1e30;  // the first stream's last token
        for (const auto& r : results) {
            if (!r.error.empty() || r.tokens != o.output_tokens) {
                ++errors;
                if (first_error.empty()) {
                    first_error = !r.error.empty()
                                      ? r.error
                                      : "got " + std::to_string(r.tokens) + " tokens";
                }
                continue;
            }
            tokens += r.tokens;
            ttft.push_back(r.first);
            for (size_t i = 1; i < r.arrivals.size(); ++i) {
                gaps.push_back(r.arrivals[i] - r.arrivals[i - 1]);
            }
            all_decoding = std::max(all_decoding, r.first);
            one_finished = std::min(one_finished, r.last);
        }
        // Tokens in the window, each stream's chunks scaled to its tokens (a chunk is one token
        // unless the detokeniser held a piece back).
        double in_window = 0;
        for (const auto& r : results) {
            if (!r.error.empty() || r.tokens != o.output_tokens || r.arrivals.empty()) {
                continue;
            }
            const auto n = std::count_if(r.arrivals.begin(), r.arrivals.end(), [&](double t) {
                return t > all_decoding && t <= one_finished;
            });
            in_window += static_cast<double>(n) * static_cast<double>(r.tokens) /
                         static_cast<double>(r.arrivals.size());
        }
        const double window = one_finished - all_decoding;
        const double decode = window > 0 ? in_window / window : 0.0;
        const bool ok = errors == 0;
        status = ok ? status : 1;
        json line = {{"kind", "serving"},
                     {"label", o.label},
                     {"batch", B},
                     {"prompt_tokens", o.prompt_tokens},
                     {"output_tokens", o.output_tokens},
                     {"ok", ok},
                     {"errors", errors},
                     {"tokens", tokens},
                     {"wall_s", wall},
                     {"tokens_per_s", wall > 0 ? static_cast<double>(tokens) / wall : 0.0},
                     {"decode_tokens_per_s", decode},
                     {"decode_window_s", std::max(window, 0.0)},
                     {"ttft_ms_p50", 1e3 * percentile(ttft, 0.5)},
                     {"ttft_ms_max", 1e3 * percentile(ttft, 1.0)},
                     {"itl_ms_p50", 1e3 * percentile(gaps, 0.5)},
                     {"itl_ms_p99", 1e3 * percentile(gaps, 0.99)}};
        if (!ok) {
            line["first_error"] = first_error;
        }
        std::printf("%s\n", line.dump().c_str());
        std::fflush(stdout);
    }
    return status;
}
