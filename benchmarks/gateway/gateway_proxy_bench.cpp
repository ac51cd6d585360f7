// cortex proxy benchmark (issue 6 "Performance"). Starts three processes from this binary and
// one nginx, then prints one table:
//   upstream  a mock neuron on libs/net: fixed small JSON, an SSE stream of N chunks, and a
//             "hold" stream that sends one event and idles (for memory per open stream);
//   cortex    a CortexServer in front of the upstream (anonymous, no catalogue, log level warn);
//   nginx     when on PATH: a plain reverse proxy to the same upstream (keep-alive upstream pool,
//             proxy_buffering off, access_log off), in a temp dir, `daemon off`.
// The load generator (this process) uses blocking sockets and pre-built requests so that it
// costs as little CPU as possible on a 2-core machine. Everything is measured three ways —
// direct to the upstream, through cortex, through nginx — in one run.
//
// Usage: gateway_proxy_bench [--requests N] [--seconds S] [--clients C] [--chunks N]
//                            [--streams N] [--io-threads N] [--rounds N] [--log LEVEL]
//                            [--no-nginx] [--diag]
// Latency and req/s run in --rounds interleaved rounds over the targets (load on a shared
// machine then falls on all of them alike); --requests and --seconds are totals per target.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench_http.h"
#include "helexa/common/logging.h"
#include "helexa/gateway/server.h"
#include "helexa/net/deadline.h"
#include "helexa/net/server.h"

namespace fs = std::filesystem;
namespace asio = boost::asio;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;
using helexa::bench::BlockingConnection;
using helexa::bench::build_post;

namespace {

struct Options {
    int requests = 5000;  // latency samples per target
    double seconds = 3.0;  // req/s window per target
    int clients = 4;       // concurrent keep-alive clients for req/s
    int chunks = 2000;     // SSE chunks per stream
    int streams = 200;     // open idle streams for memory
    int io_threads = 2;    // cortex I/O threads
    int rounds = 5;        // interleaved latency + req/s rounds over the targets
    std::string log_level = "warn";
    bool nginx = true;
    bool diag = false;
    std::string role;
    uint16_t upstream_port = 0;
};

// ---------------------------------------------------------------- child roles

// Blocks SIGTERM/SIGINT in every thread (call before starting any), then waits for one.
sigset_t block_stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    return set;
}

void announce_port(uint16_t port) {
    std::printf("PORT %u\n", static_cast<unsigned>(port));
    std::fflush(stdout);
}

std::string chunk_event(int i) {
    return "data: " +
           json{{"id", "chatcmpl-bench"},
                {"object", "chat.completion.chunk"},
                {"choices", {{{"index", 0}, {"delta", {{"content", fmt::format("tok{} ", i)}}},
                              {"finish_reason", nullptr}}}}}
               .dump() +
           "\n\n";
}

int run_upstream(const Options& opt) {
    const sigset_t stop = block_stop_signals();
    helexa::init_logging("warn");
    const std::string small_json =
        json{{"id", "chatcmpl-bench"},
             {"object", "chat.completion"},
             {"model", "bench-json"},
             {"choices", {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", "pong"}}},
                           {"finish_reason", "stop"}}}},
             {"usage", {{"prompt_tokens", 5}, {"completion_tokens", 1}, {"total_tokens", 6}}}}
            .dump();
    std::vector<std::string> events;
    for (int i = 0; i < opt.chunks; ++i) {
        events.push_back(chunk_event(i));
    }
    const std::string tail =
        "data: " +
        json{{"id", "chatcmpl-bench"}, {"object", "chat.completion.chunk"},
             {"choices", json::array()},
             {"usage", {{"prompt_tokens", 5}, {"completion_tokens", opt.chunks},
                        {"total_tokens", 5 + opt.chunks}}}}
            .dump() +
        "\n\ndata: [DONE]\n\n";
    helexa::net::IoPool io(1);
    helexa::net::Router router;
    uint16_t port = 0;
    router.get("/discovery", [](helexa::net::Request&) -> asio::awaitable<helexa::net::Response> {
        co_return helexa::net::Response::json(
            {{"hostname", "bench"}, {"os", "linux"},
             {"devices", {{{"index", 0}, {"name", "GPU"}, {"total_vram_mb", 24000}}}},
             {"harnesses", {"candle"}}, {"max_prompt_tokens", 32768}});
    });
    router.get("/health", [](helexa::net::Request&) -> asio::awaitable<helexa::net::Response> {
        co_return helexa::net::Response::json(
            {{"status", "ok"}, {"devices", json::array()}, {"models", json::array()}});
    });
    router.get("/models", [](helexa::net::Request&) -> asio::awaitable<helexa::net::Response> {
        json models = json::array();
        for (const char* id : {"bench-json", "bench-sse", "bench-hold"}) {
            models.push_back({{"id", id}, {"status", "loaded"}, {"capabilities", {"text"}}});
        }
        co_return helexa::net::Response::json(models);
    });
    router.get("/models/{id*}/endpoint",
               [&port](helexa::net::Request&) -> asio::awaitable<helexa::net::Response> {
                   co_return helexa::net::Response::json(
                       {{"endpoint", fmt::format("http://localhost:{}", port)}});
               });
    router.post("/v1/chat/completions",
                [&](helexa::net::Request& req,
                    helexa::net::ResponseWriter& w) -> asio::awaitable<helexa::net::Response> {
                    using namespace asio::experimental::awaitable_operators;
                    const bool sse = req.body.find("bench-sse") != std::string::npos;
                    const bool hold = req.body.find("bench-hold") != std::string::npos;
                    if (!sse && !hold) {
                        co_return helexa::net::Response::text(200, small_json,
                                                              "application/json");
                    }
                    helexa::net::Headers headers{{"Content-Type", "text/event-stream"},
                                                 {"Cache-Control", "no-cache"}};
                    if (!co_await w.start(200, headers)) {
                        co_return helexa::net::Response{};
                    }
                    if (hold) {
                        if (co_await w.write(events.front())) {
                            co_await (helexa::net::sleep_for(std::chrono::seconds(600)) ||
                                      w.wait_client_gone());
                        }
                        co_return helexa::net::Response{};
                    }
                    for (const auto& e : events) {
                        if (!co_await w.write(e)) {
                            co_return helexa::net::Response{};
                        }
                    }
                    co_await w.write(tail);
                    co_await w.finish();
                    co_return helexa::net::Response{};
                });
    helexa::net::ServerOptions so;
    so.server_name = "bench-upstream";
    helexa::net::Server server(io, so, std::move(router));
    if (auto st = server.start(); !st) {
        std::fprintf(stderr, "upstream: %s\n", st.error().message().c_str());
        return 1;
    }
    port = server.port();
    io.start();
    announce_port(port);
    int sig = 0;
    sigwait(&stop, &sig);
    server.stop();
    io.stop();
    io.join();
    return 0;
}

int run_cortex(const Options& opt) {
    const sigset_t stop = block_stop_signals();
    helexa::init_logging(opt.log_level);
    helexa::gateway::CortexOptions co;
    co.config.gateway.listen = "127.0.0.1:0";
    co.config.gateway.metrics_listen = "127.0.0.1:0";
    co.config.gateway.poll_interval_secs = 3600;
    co.config.gateway.state_dir =
        (fs::temp_directory_path() / fmt::format("cortex-bench-{}", ::getpid())).string();
    co.config.neurons.push_back({"bench", fmt::format("http://127.0.0.1:{}", opt.upstream_port)});
    co.catalogue = helexa::gateway::Catalogue{};
    co.io_threads = opt.io_threads;
    helexa::gateway::CortexServer cortex;
    if (auto st = cortex.start(std::move(co)); !st) {
        std::fprintf(stderr, "cortex: %s\n", st.error().message().c_str());
        return 1;
    }
    announce_port(cortex.port());
    int sig = 0;
    sigwait(&stop, &sig);
    cortex.stop();
    return 0;
}

// ---------------------------------------------------------------- process helpers

struct Child {
    pid_t pid = -1;
    uint16_t port = 0;
};

// Runs this binary with `args`, waits for its "PORT n" line.
std::optional<Child> spawn_role(const std::vector<std::string>& args) {
    int fds[2];
    if (::pipe(fds) != 0) {
        return std::nullopt;
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(fds[1], STDOUT_FILENO);
        ::close(fds[0]);
        ::close(fds[1]);
        std::vector<char*> argv;
        static std::string self = "/proc/self/exe";
        argv.push_back(self.data());
        for (const auto& a : args) {
            argv.push_back(const_cast<char*>(a.c_str()));
        }
        argv.push_back(nullptr);
        ::execv("/proc/self/exe", argv.data());
        ::_exit(127);
    }
    ::close(fds[1]);
    FILE* out = ::fdopen(fds[0], "r");
    char line[128] = {};
    Child child{pid, 0};
    if (out != nullptr && std::fgets(line, sizeof(line), out) != nullptr) {
        unsigned p = 0;
        if (std::sscanf(line, "PORT %u", &p) == 1) {
            child.port = static_cast<uint16_t>(p);
        }
    }
    if (out != nullptr) {
        std::fclose(out);
    }
    if (child.port == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        return std::nullopt;
    }
    return child;
}

void stop_child(pid_t pid) {
    if (pid > 0) {
        ::kill(pid, SIGTERM);
        ::waitpid(pid, nullptr, 0);
    }
}

// A port that was free a moment ago (nginx needs a concrete one): bind to 0, read, release.
uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return 0;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    uint16_t port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
        port = ntohs(addr.sin_port);
    }
    ::close(fd);
    return port;
}

std::optional<std::string> find_on_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::stringstream ss(std::string(path ? path : "") + ":/usr/sbin:/sbin");
    std::string dir;
    while (std::getline(ss, dir, ':')) {
        const fs::path p = fs::path(dir) / name;
        if (!dir.empty() && ::access(p.c_str(), X_OK) == 0) {
            return p.string();
        }
    }
    return std::nullopt;
}

bool wait_listening(uint16_t port, std::chrono::milliseconds limit) {
    const auto until = SteadyClock::now() + limit;
    while (SteadyClock::now() < until) {
        BlockingConnection c;
        if (c.connect(port)) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

std::optional<Child> start_nginx(const std::string& nginx, uint16_t upstream_port,
                                 const fs::path& dir) {
    const uint16_t port = free_port();
    fs::create_directories(dir);
    std::ofstream conf(dir / "nginx.conf");
    conf << fmt::format(R"(worker_processes 2;
daemon off;
pid {0}/nginx.pid;
error_log {0}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 600s;
    client_body_temp_path {0}/body;
    proxy_temp_path {0}/proxy;
    fastcgi_temp_path {0}/fastcgi;
    uwsgi_temp_path {0}/uwsgi;
    scgi_temp_path {0}/scgi;
    upstream neuron {{ server 127.0.0.1:{1}; keepalive 64; keepalive_requests 10000000; }}
    server {{
        listen 127.0.0.1:{2};
        location / {{
            proxy_pass http://neuron;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_read_timeout 600s;
        }}
    }}
}}
)",
                        dir.string(), upstream_port, port);
    conf.close();
    const pid_t pid = ::fork();
    if (pid == 0) {
        const std::string prefix = dir.string() + "/";
        const std::string conf_path = (dir / "nginx.conf").string();
        const std::string err_path = (dir / "error.log").string();
        ::execl(nginx.c_str(), nginx.c_str(), "-p", prefix.c_str(), "-c", conf_path.c_str(), "-e",
                err_path.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    if (!wait_listening(port, std::chrono::seconds(5))) {
        std::fprintf(stderr, "nginx did not start; see %s/error.log\n", dir.c_str());
        stop_child(pid);
        return std::nullopt;
    }
    return Child{pid, port};
}

// RSS in KiB of `pid` plus all its descendants (nginx master + workers).
int64_t rss_kib_tree(pid_t root) {
    std::vector<pid_t> pids{root};
    for (const auto& entry : fs::directory_iterator("/proc")) {
        const std::string name = entry.path().filename().string();
        if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) {
            continue;
        }
        std::ifstream stat(entry.path() / "stat");
        std::string line;
        std::getline(stat, line);
        const size_t close = line.rfind(')');
        if (close == std::string::npos) {
            continue;
        }
        std::istringstream rest(line.substr(close + 2));
        char state = 0;
        pid_t ppid = 0;
        rest >> state >> ppid;
        if (ppid == root) {
            pids.push_back(static_cast<pid_t>(std::stol(name)));
        }
    }
    int64_t total = 0;
    for (pid_t p : pids) {
        std::ifstream status(fmt::format("/proc/{}/status", p));
        std::string line;
        while (std::getline(status, line)) {
            if (line.rfind("VmRSS:", 0) == 0) {
                total += std::stoll(line.substr(6));
            }
        }
    }
    return total;
}

// ---------------------------------------------------------------- measurements

const std::string kJsonBody =
    R"({"model":"bench-json","max_tokens":8,"messages":[{"role":"user","content":"ping"}]})";

struct Latency {
    double p50_us = 0;
    double p99_us = 0;
};

// `n` sequential request latencies on one keep-alive connection (a further 10% first, as a
// warm-up, not returned).
std::optional<std::vector<double>> latency_samples(
    uint16_t port, int n, const std::string& req = build_post("/v1/chat/completions", kJsonBody)) {
    BlockingConnection c;
    if (!c.connect(port)) {
        return std::nullopt;
    }
    std::vector<double> samples;
    samples.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n + n / 10; ++i) {
        const auto t0 = SteadyClock::now();
        if (!c.send_all(req)) {
            return std::nullopt;
        }
        auto reply = c.read_reply();
        if (!reply || reply->status != 200) {
            std::fprintf(stderr, "latency: bad reply from :%u: %s\n", port,
                         reply ? fmt::format("status {} {}", reply->status,
                                             reply->body.substr(0, 200))
                                     .c_str()
                               : "connection closed");
            return std::nullopt;
        }
        const double us = std::chrono::duration<double, std::micro>(SteadyClock::now() - t0)
                              .count();
        if (i >= n / 10) {  // the first 10% warm up
            samples.push_back(us);
        }
    }
    return samples;
}

Latency percentiles(std::vector<double> samples) {
    std::sort(samples.begin(), samples.end());
    auto pct = [&](double p) {
        return samples[std::min(samples.size() - 1,
                                static_cast<size_t>(p * static_cast<double>(samples.size())))];
    };
    return Latency{pct(0.50), pct(0.99)};
}

std::optional<Latency> measure_latency(uint16_t port, int n, const std::string& req) {
    auto samples = latency_samples(port, n, req);
    if (!samples || samples->empty()) {
        return std::nullopt;
    }
    return percentiles(std::move(*samples));
}

struct RpsCount {
    int64_t done = 0;
    double seconds = 0;
};

std::optional<RpsCount> measure_rps(uint16_t port, int clients, double seconds) {
    std::atomic<int64_t> done{0};
    std::atomic<bool> failed{false};
    std::atomic<bool> stop{false};
    const std::string req = build_post("/v1/chat/completions", kJsonBody);
    std::vector<std::thread> threads;
    for (int t = 0; t < clients; ++t) {
        threads.emplace_back([&] {
            BlockingConnection c;
            if (!c.connect(port)) {
                failed = true;
                return;
            }
            int64_t local = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                if (!c.send_all(req)) {
                    failed = true;
                    break;
                }
                auto reply = c.read_reply();
                if (!reply || reply->status != 200) {
                    failed = true;
                    break;
                }
                ++local;
            }
            done += local;
        });
    }
    const auto t0 = SteadyClock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& t : threads) {
        t.join();
    }
    const double elapsed = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    if (failed) {
        return std::nullopt;
    }
    return RpsCount{done.load(), elapsed};
}

// Median chunks/s over 5 full streams of `chunks` events each (every event checked to arrive).
std::optional<double> measure_sse(uint16_t port, int chunks) {
    BlockingConnection c;
    if (!c.connect(port)) {
        return std::nullopt;
    }
    const std::string req = build_post(
        "/v1/chat/completions",
        R"({"model":"bench-sse","stream":true,"messages":[{"role":"user","content":"go"}]})");
    std::vector<double> rates;
    for (int run = 0; run < 6; ++run) {
        const auto t0 = SteadyClock::now();
        if (!c.send_all(req)) {
            return std::nullopt;
        }
        auto reply = c.read_reply();
        const double secs = std::chrono::duration<double>(SteadyClock::now() - t0).count();
        if (!reply || reply->status != 200) {
            return std::nullopt;
        }
        int events = 0;
        for (size_t pos = 0; (pos = reply->body.find("\n\n", pos)) != std::string::npos;
             pos += 2) {
            ++events;
        }
        if (events != chunks + 2) {  // + usage + [DONE]
            std::fprintf(stderr, "sse: expected %d events, got %d\n", chunks + 2, events);
            return std::nullopt;
        }
        if (run > 0) {  // the first run warms up
            rates.push_back(chunks / secs);
        }
    }
    std::sort(rates.begin(), rates.end());
    return rates[rates.size() / 2];
}

// RSS growth of `pid` (and children) per open idle SSE stream.
std::optional<double> measure_stream_memory(uint16_t port, pid_t pid, int streams) {
    const std::string req = build_post(
        "/v1/chat/completions",
        R"({"model":"bench-hold","stream":true,"messages":[{"role":"user","content":"hold"}]})");
    // Warm the allocator with a smaller round first, so the measured round is steady state.
    for (int round = 0; round < 2; ++round) {
        const int n = round == 0 ? streams / 4 : streams;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        const int64_t before = rss_kib_tree(pid);
        std::vector<BlockingConnection> conns(static_cast<size_t>(n));
        for (auto& c : conns) {
            if (!c.connect(port) || !c.send_all(req)) {
                return std::nullopt;
            }
        }
        for (auto& c : conns) {
            if (!c.read_until("data:")) {
                return std::nullopt;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        const int64_t after = rss_kib_tree(pid);
        conns.clear();
        if (round == 1) {
            return static_cast<double>(after - before) / n;
        }
    }
    return std::nullopt;
}

struct Column {
    std::string name;
    uint16_t port = 0;
    pid_t pid = -1;
    std::optional<Latency> latency;
    std::optional<double> rps;
    std::optional<double> sse;
    std::optional<double> kib_per_stream;
};

std::string cell(const std::optional<double>& v, const char* fmt_spec = "{:.0f}") {
    return v ? fmt::format(fmt::runtime(fmt_spec), *v) : std::string("n/a");
}

int run_driver(const Options& opt, const char* argv0) {
    (void)argv0;
    std::string common = fmt::format("--chunks={}", opt.chunks);
    auto upstream = spawn_role({"--role=upstream", common});
    if (!upstream) {
        std::fprintf(stderr, "could not start the upstream\n");
        return 1;
    }
    auto cortex = spawn_role({"--role=cortex", fmt::format("--upstream-port={}", upstream->port),
                              fmt::format("--io-threads={}", opt.io_threads),
                              "--log=" + opt.log_level});
    if (!cortex) {
        std::fprintf(stderr, "could not start cortex\n");
        stop_child(upstream->pid);
        return 1;
    }
    std::optional<Child> nginx;
    const fs::path nginx_dir = fs::temp_directory_path() / fmt::format("nginx-bench-{}", getpid());
    std::string nginx_version = "not found";
    if (opt.nginx) {
        if (auto bin = find_on_path("nginx")) {
            nginx = start_nginx(*bin, upstream->port, nginx_dir);
            nginx_version = nginx ? *bin : "failed to start";
        }
    }
    std::vector<Column> cols{{"direct", upstream->port, upstream->pid},
                             {"cortex", cortex->port, cortex->pid}};
    if (nginx) {
        cols.push_back({"nginx", nginx->port, nginx->pid});
    }
    if (opt.diag) {
        // Where cortex's time goes: its own GET /health (server + middleware, no proxying).
        const std::string get = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        for (const auto& c : cols) {
            if (auto l = measure_latency(c.port, opt.requests, get)) {
                std::fprintf(stderr, "diag: GET /health on %s: p50 %.1f us p99 %.1f us\n",
                             c.name.c_str(), l->p50_us, l->p99_us);
            }
        }
    }
    // Latency and requests/s are measured in interleaved rounds (direct, cortex, nginx, direct,
    // ...) so that load from other processes on a shared machine falls on every target alike;
    // the samples and counts of all rounds are pooled per target.
    std::vector<std::vector<double>> samples(cols.size());
    std::vector<RpsCount> counts(cols.size());
    std::vector<bool> failed(cols.size(), false);
    const int rounds = std::max(1, opt.rounds);
    for (int round = 0; round < rounds; ++round) {
        std::fprintf(stderr, "round %d/%d ...\n", round + 1, rounds);
        for (size_t i = 0; i < cols.size(); ++i) {
            if (failed[i]) {
                continue;
            }
            auto lat = latency_samples(cols[i].port, std::max(10, opt.requests / rounds));
            auto rps = measure_rps(cols[i].port, opt.clients, opt.seconds / rounds);
            if (!lat || !rps) {
                failed[i] = true;
                continue;
            }
            samples[i].insert(samples[i].end(), lat->begin(), lat->end());
            counts[i].done += rps->done;
            counts[i].seconds += rps->seconds;
        }
    }
    for (size_t i = 0; i < cols.size(); ++i) {
        auto& c = cols[i];
        if (!failed[i] && !samples[i].empty()) {
            c.latency = percentiles(std::move(samples[i]));
            c.rps = static_cast<double>(counts[i].done) / counts[i].seconds;
        }
        std::fprintf(stderr, "measuring %s streams ...\n", c.name.c_str());
        c.sse = measure_sse(c.port, opt.chunks);
        c.kib_per_stream = measure_stream_memory(c.port, c.pid, opt.streams);
    }
    stop_child(cortex->pid);
    if (nginx) {
        stop_child(nginx->pid);
        std::error_code ec;
        fs::remove_all(nginx_dir, ec);
    }
    stop_child(upstream->pid);

    const auto& direct = cols[0];
    auto added = [&](const Column& c, bool p99) -> std::optional<double> {
        if (!c.latency || !direct.latency || c.name == "direct") {
            return std::nullopt;
        }
        return p99 ? c.latency->p99_us - direct.latency->p99_us
                   : c.latency->p50_us - direct.latency->p50_us;
    };
    std::printf("\ncortex proxy benchmark: %u cores, %d latency samples, %d clients x %.1fs "
                "in %d interleaved rounds, "
                "%d SSE chunks, %d idle streams, cortex io_threads=%d log=%s, nginx: %s\n\n",
                std::thread::hardware_concurrency(), opt.requests, opt.clients, opt.seconds,
                opt.rounds,
                opt.chunks, opt.streams, opt.io_threads, opt.log_level.c_str(),
                nginx_version.c_str());
    std::printf("| metric |");
    for (const auto& c : cols) {
        std::printf(" %s |", c.name.c_str());
    }
    std::printf("\n|---|");
    for (size_t i = 0; i < cols.size(); ++i) {
        std::printf("---|");
    }
    std::printf("\n");
    auto row = [&](const char* label, const std::function<std::string(const Column&)>& f) {
        std::printf("| %s |", label);
        for (const auto& c : cols) {
            std::printf(" %s |", f(c).c_str());
        }
        std::printf("\n");
    };
    row("p50 latency, small JSON (µs)", [](const Column& c) {
        return cell(c.latency ? std::optional(c.latency->p50_us) : std::nullopt, "{:.1f}");
    });
    row("p99 latency, small JSON (µs)", [](const Column& c) {
        return cell(c.latency ? std::optional(c.latency->p99_us) : std::nullopt, "{:.1f}");
    });
    row("added p50 over direct (µs)", [&](const Column& c) { return cell(added(c, false), "{:.1f}"); });
    row("added p99 over direct (µs)", [&](const Column& c) { return cell(added(c, true), "{:.1f}"); });
    row("requests/s (keep-alive)", [](const Column& c) { return cell(c.rps); });
    row("SSE chunks/s (one stream)", [](const Column& c) { return cell(c.sse); });
    row("RSS per open idle SSE stream (KiB)",
        [](const Column& c) { return cell(c.kib_per_stream, "{:.1f}"); });

    const Column& cx = cols[1];
    std::printf("\ngoals:\n");
    if (auto a = added(cx, false)) {
        std::printf("  added p50 < 100 us: %s (%.1f us)\n", *a < 100 ? "met" : "MISSED", *a);
    }
    if (nginx && cx.rps && cols[2].rps) {
        const double ratio = *cx.rps / *cols[2].rps;
        std::printf("  req/s >= 70%% of nginx: %s (%.0f%%)\n", ratio >= 0.7 ? "met" : "MISSED",
                    ratio * 100);
    } else {
        std::printf("  req/s >= 70%% of nginx: not measured (no nginx)\n");
    }
    if (cx.kib_per_stream) {
        std::printf("  < 64 KiB per open stream: %s (%.1f KiB)\n",
                    *cx.kib_per_stream < 64 ? "met" : "MISSED", *cx.kib_per_stream);
    }
    return 0;
}

Options parse_args(int argc, char** argv) {
    Options opt;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        std::string value;
        if (auto eq = a.find('='); eq != std::string::npos) {
            value = a.substr(eq + 1);
            a = a.substr(0, eq);
        } else if (i + 1 < argc && a != "--no-nginx" && a != "--diag") {
            value = argv[++i];
        }
        if (a == "--requests") {
            opt.requests = std::stoi(value);
        } else if (a == "--seconds") {
            opt.seconds = std::stod(value);
        } else if (a == "--clients") {
            opt.clients = std::stoi(value);
        } else if (a == "--chunks") {
            opt.chunks = std::stoi(value);
        } else if (a == "--streams") {
            opt.streams = std::stoi(value);
        } else if (a == "--rounds") {
            opt.rounds = std::stoi(value);
        } else if (a == "--io-threads") {
            opt.io_threads = std::stoi(value);
        } else if (a == "--log") {
            opt.log_level = value;
        } else if (a == "--no-nginx") {
            opt.nginx = false;
        } else if (a == "--diag") {
            opt.diag = true;
        } else if (a == "--role") {
            opt.role = value;
        } else if (a == "--upstream-port") {
            opt.upstream_port = static_cast<uint16_t>(std::stoi(value));
        } else {
            throw std::runtime_error("unknown argument " + a);
        }
    }
    return opt;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Options opt = parse_args(argc, argv);
        if (opt.role == "upstream") {
            return run_upstream(opt);
        }
        if (opt.role == "cortex") {
            return run_cortex(opt);
        }
        ::signal(SIGPIPE, SIG_IGN);
        return run_driver(opt, argv[0]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "gateway_proxy_bench: %s\n", e.what());
        return 2;
    }
}
