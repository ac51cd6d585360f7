// Paged attention kernels alone (libs/kernels attention.h): correctness against a double-precision
// CPU reference on bf16/f16-rounded random inputs (outputs NaN-poisoned first; exits non-zero on
// any failure), then timing of a 4096-token prefill and long-context decodes (TFLOP/s, GB/s).
// Built by the cuda preset; run by scripts/gpu/cuda_run.sh.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "helexa/kernels/attention.h"

#include "cuda_check.cuh"

using namespace helexa::kernels;


static uint16_t to_bits(float x, bool bf16) {
    if (bf16) {
        __nv_bfloat16 b = __float2bfloat16_rn(x);
        return *reinterpret_cast<uint16_t*>(&b);
    }
    __half h = __float2half_rn(x);
    return *reinterpret_cast<uint16_t*>(&h);
}
static float from_bits(uint16_t u, bool bf16) {
    if (bf16) {
        return __bfloat162float(*reinterpret_cast<__nv_bfloat16*>(&u));
    }
    return __half2float(*reinterpret_cast<__half*>(&u));
}

struct Case {
    const char* name;
    int hd, n_heads, n_kv, block_size;
    std::vector<int> nq, ctx;  // per sequence
    int extra_ctx_bound = 0;   // host bound above the true max (graph replay)
    bool bf16 = true;
    int q_pad = 0;             // extra elements per q/out row (strided views)
};

// The step planner's context spread (engine models::context_spread): the longest context times
// their count over their sum, rounded down to a power of two, at most 64.
static int64_t spread_of(const std::vector<int>& ctx) {
    int64_t longest = 0, sum = 0;
    for (int c : ctx) { longest = std::max<int64_t>(longest, c); sum += c; }
    int64_t spread = 1;
    while (sum > 0 && spread * 2 <= longest * static_cast<int64_t>(ctx.size()) / sum && spread < 64)
        spread *= 2;
    return spread;
}

static bool run_case(const Case& c, std::mt19937& rng) {
    const int n_seqs = static_cast<int>(c.nq.size());
    std::vector<int32_t> qs(n_seqs + 1, 0);
    int max_q = 0, max_ctx = 0;
    for (int s = 0; s < n_seqs; ++s) {
        qs[s + 1] = qs[s] + c.nq[s];
        max_q = std::max(max_q, c.nq[s]);
        max_ctx = std::max(max_ctx, c.ctx[s]);
    }
    const int n_tokens = qs[n_seqs];
    const int bound_ctx = max_ctx + c.extra_ctx_bound;
    const int max_blocks = (bound_ctx + c.block_size - 1) / c.block_size;
    int total_blocks = 0;
    for (int s = 0; s < n_seqs; ++s) total_blocks += (c.ctx[s] + c.block_size - 1) / c.block_size;
    const int n_blocks = total_blocks + 3;
    std::vector<int32_t> perm(n_blocks);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    std::vector<int32_t> tables(static_cast<size_t>(n_seqs) * max_blocks, -1);
    int next = 0;
    for (int s = 0; s < n_seqs; ++s)
        for (int b = 0; b < (c.ctx[s] + c.block_size - 1) / c.block_size; ++b)
            tables[static_cast<size_t>(s) * max_blocks + b] = perm[next++];

    const int64_t width = static_cast<int64_t>(c.n_heads) * c.hd;
    const int64_t stride = width + c.q_pad;
    const int64_t pool_elems = static_cast<int64_t>(n_blocks) * c.n_kv * c.block_size * c.hd;
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<uint16_t> hq(static_cast<size_t>(n_tokens) * stride), hk(pool_elems), hv(pool_elems);
    for (auto& x : hq) x = to_bits(nd(rng), c.bf16);
    for (auto& x : hk) x = to_bits(nd(rng), c.bf16);
    for (auto& x : hv) x = to_bits(nd(rng), c.bf16);

    void *dq, *dk, *dv, *dout, *dws = nullptr;
    int32_t *dqs, *dctx, *dtab;
    CK(cudaMalloc(&dq, hq.size() * 2));
    CK(cudaMalloc(&dk, hk.size() * 2));
    CK(cudaMalloc(&dv, hv.size() * 2));
    CK(cudaMalloc(&dout, hq.size() * 2));
    CK(cudaMalloc(&dqs, qs.size() * 4));
    CK(cudaMalloc(&dctx, n_seqs * 4));
    CK(cudaMalloc(&dtab, tables.size() * 4));
    CK(cudaMemcpy(dq, hq.data(), hq.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dk, hk.data(), hk.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dv, hv.data(), hv.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMemset(dout, 0xff, hq.size() * 2));  // NaN poison
    CK(cudaMemcpy(dqs, qs.data(), qs.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dctx, c.ctx.data(), n_seqs * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dtab, tables.data(), tables.size() * 4, cudaMemcpyHostToDevice));

    PagedAttentionArgs a;
    a.out = dout;
    a.out_stride = stride;
    a.q = dq;
    a.q_stride = stride;
    a.k_pool = dk;
    a.v_pool = dv;
    a.layout = PagedKvLayout{n_blocks, c.n_kv, c.block_size, c.hd};
    a.query_start = dqs;
    a.context_len = dctx;
    a.block_tables = dtab;
    a.n_seqs = n_seqs;
    a.max_blocks_per_seq = max_blocks;
    a.max_query_len = max_q;
    a.max_context_len = bound_ctx;
    a.context_spread = spread_of(c.ctx);
    a.n_heads = c.n_heads;
    a.scale = 1.0f / std::sqrt(static_cast<float>(c.hd));
    a.type = c.bf16 ? ElemType::kBF16 : ElemType::kF16;
    a.workspace_bytes = paged_attention_workspace_bytes(n_seqs, max_q, bound_ctx, c.n_heads, c.hd);
    if (a.workspace_bytes) {
        CK(cudaMalloc(&dws, a.workspace_bytes));
        CK(cudaMemset(dws, 0, a.workspace_bytes));  // the split counters start at zero
    }
    a.workspace = dws;
    // Twice, the output poisoned (NaN) in between: the second launch is checked, so a split
    // merge that did not leave its arrival counters at zero shows as NaN.
    CK(launch_paged_attention(a, nullptr));
    CK(cudaMemsetAsync(dout, 0xff, hq.size() * 2, nullptr));
    CK(launch_paged_attention(a, nullptr));
    CK(cudaDeviceSynchronize());
    std::vector<uint16_t> hout(hq.size());
    CK(cudaMemcpy(hout.data(), dout, hout.size() * 2, cudaMemcpyDeviceToHost));

    // Reference (double) and error.
    const int group = c.n_heads / c.n_kv;
    double err2 = 0, ref2 = 0, worst_row = 0;
    bool nan = false;
    std::vector<double> sc;
    for (int s = 0; s < n_seqs; ++s) {
        const int first = c.ctx[s] - c.nq[s];
        for (int i = 0; i < c.nq[s]; ++i) {
            const int row = qs[s] + i;
            const int n_keys = first + i + 1;
            sc.assign(n_keys, 0.0);
            for (int h = 0; h < c.n_heads; ++h) {
                const int kvh = h / group;
                double mx = -1e300;
                for (int j = 0; j < n_keys; ++j) {
                    const int64_t base = ((static_cast<int64_t>(tables[static_cast<size_t>(s) * max_blocks + j / c.block_size]) * c.n_kv + kvh) * c.block_size + j % c.block_size) * c.hd;
                    double d = 0;
                    for (int e = 0; e < c.hd; ++e)
                        d += from_bits(hq[row * stride + h * c.hd + e], c.bf16) * static_cast<double>(from_bits(hk[base + e], c.bf16));
                    sc[j] = d * a.scale;
                    mx = std::max(mx, sc[j]);
                }
                double den = 0;
                for (int j = 0; j < n_keys; ++j) den += (sc[j] = std::exp(sc[j] - mx));
                double re2 = 0, rr2 = 0;
                for (int e = 0; e < c.hd; ++e) {
                    double o = 0;
                    for (int j = 0; j < n_keys; ++j) {
                        const int64_t base = ((static_cast<int64_t>(tables[static_cast<size_t>(s) * max_blocks + j / c.block_size]) * c.n_kv + kvh) * c.block_size + j % c.block_size) * c.hd;
                        o += sc[j] * from_bits(hv[base + e], c.bf16);
                    }
                    o /= den;
                    const float got = from_bits(hout[row * stride + h * c.hd + e], c.bf16);
                    if (!std::isfinite(got)) nan = true;
                    re2 += (got - o) * (got - o);
                    rr2 += o * o;
                }
                err2 += re2;
                ref2 += rr2;
                worst_row = std::max(worst_row, std::sqrt(re2 / std::max(rr2, 1e-30)));
            }
        }
    }
    const double rel = std::sqrt(err2 / std::max(ref2, 1e-30));
    const bool ok = !nan && rel < 1e-2 && worst_row < 3e-2;
    std::printf("%-44s rel %.2e worst_row %.2e %s%s\n", c.name, rel, worst_row, nan ? "NaN " : "",
                ok ? "ok" : "FAIL");
    cudaFree(dq); cudaFree(dk); cudaFree(dv); cudaFree(dout); cudaFree(dqs); cudaFree(dctx);
    cudaFree(dtab); if (dws) cudaFree(dws);
    return ok;
}

// What a timed decode does besides the attention: nothing, or the q/k/v epilogue fused in
// (FusedQkvEpilogue) with Qwen3's q/k norm and rotary, with rotary only, or with neither.
enum class Fused { kNo, kNormRope, kRope, kBare };

// Timing on synthetic data (no reference): prefill of one prompt and a long-context decode.
// long_ctx > 0: sequence 0's context instead (one agent's long context among short ones), with
// the planner's spread hint when `spread` (else the plan for even contexts).
static void time_case(const char* name, int hd, int n_heads, int n_kv, int n_seqs, int nq, int ctx,
                      double flops_per_run, double bytes_per_run, Fused fused = Fused::kNo,
                      int long_ctx = 0, bool spread = false, int bound = 0) {
    if (const char* only = std::getenv("HELEXA_ATTN_BENCH_ONLY");
        only != nullptr && std::strstr(name, only) == nullptr) {
        return;
    }
    const int bs = 16;
    std::vector<int32_t> cl(n_seqs, ctx);
    if (long_ctx > 0) cl[0] = long_ctx;
    // bound > 0: the launch is planned for that many keys (a decode graph's width bucket, a
    // power of two above the longest context) and runs on the shorter contexts.
    const int max_ctx = std::max({ctx, long_ctx, bound});
    const int max_blocks = (max_ctx + bs - 1) / bs;
    const int n_blocks = max_blocks * n_seqs;
    const int n_tokens = nq * n_seqs;
    const int64_t width = static_cast<int64_t>(n_heads) * hd;
    // Fused: q is the projection's qkv rows.
    const int64_t q_width = fused == Fused::kNo ? width : width + 2 * int64_t{n_kv} * hd;
    const int64_t pool = static_cast<int64_t>(n_blocks) * n_kv * bs * hd;
    std::vector<int32_t> qs(n_seqs + 1), tab(static_cast<size_t>(n_seqs) * max_blocks);
    for (int s = 0; s <= n_seqs; ++s) qs[s] = s * nq;
    std::iota(tab.begin(), tab.end(), 0);
    void *dq, *dk, *dv, *dout, *dws = nullptr;
    int32_t *dqs, *dctx, *dtab;
    CK(cudaMalloc(&dq, n_tokens * q_width * 2));
    CK(cudaMalloc(&dout, n_tokens * width * 2));
    CK(cudaMalloc(&dk, pool * 2));
    CK(cudaMalloc(&dv, pool * 2));
    CK(cudaMemset(dq, 0x3c, n_tokens * q_width * 2));  // bf16 ~0.0115, not zeros
    CK(cudaMemset(dk, 0x3c, pool * 2));
    CK(cudaMemset(dv, 0x3d, pool * 2));
    CK(cudaMalloc(&dqs, qs.size() * 4));
    CK(cudaMalloc(&dctx, cl.size() * 4));
    CK(cudaMalloc(&dtab, tab.size() * 4));
    CK(cudaMemcpy(dqs, qs.data(), qs.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dctx, cl.data(), cl.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dtab, tab.data(), tab.size() * 4, cudaMemcpyHostToDevice));
    PagedAttentionArgs a;
    a.out = dout; a.out_stride = width; a.q = dq; a.q_stride = q_width; a.k_pool = dk; a.v_pool = dv;
    a.layout = PagedKvLayout{n_blocks, n_kv, bs, hd};
    a.query_start = dqs; a.context_len = dctx; a.block_tables = dtab; a.n_seqs = n_seqs;
    a.max_blocks_per_seq = max_blocks; a.max_query_len = nq; a.max_context_len = max_ctx;
    a.context_spread = spread ? spread_of(std::vector<int>(cl.begin(), cl.end())) : 1;
    a.n_heads = n_heads; a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    a.workspace_bytes = paged_attention_workspace_bytes(n_seqs, nq, max_ctx, n_heads, hd);
    if (a.workspace_bytes) {
        CK(cudaMalloc(&dws, a.workspace_bytes));
        CK(cudaMemset(dws, 0, a.workspace_bytes));  // the split counters start at zero
    }
    a.workspace = dws;
    FusedQkvEpilogue e;
    void *dnorm = nullptr, *dinv = nullptr, *dpos = nullptr, *dslots = nullptr;
    if (fused != Fused::kNo) {
        // Each sequence's new key goes to its last position's slot (the table is the identity).
        std::vector<int32_t> pos(n_seqs, ctx - 1), slots(n_seqs);
        for (int s = 0; s < n_seqs; ++s) slots[s] = s * max_blocks * bs + ctx - 1;
        std::vector<float> inv(hd / 2);
        for (int i = 0; i < hd / 2; ++i) inv[i] = std::pow(1e6f, -2.0f * i / hd);
        CK(cudaMalloc(&dnorm, 2 * hd * 2));
        CK(cudaMemset(dnorm, 0x3f, 2 * hd * 2));
        CK(cudaMalloc(&dinv, inv.size() * 4));
        CK(cudaMalloc(&dpos, pos.size() * 4));
        CK(cudaMalloc(&dslots, slots.size() * 4));
        CK(cudaMemcpy(dinv, inv.data(), inv.size() * 4, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(dpos, pos.data(), pos.size() * 4, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(dslots, slots.data(), slots.size() * 4, cudaMemcpyHostToDevice));
        if (fused == Fused::kNormRope) {
            e.q_norm_weight = dnorm;
            e.k_norm_weight = static_cast<char*>(dnorm) + hd * 2;
        }
        e.eps = 1e-6f;
        e.positions = static_cast<int32_t*>(dpos);
        e.inv_freq = static_cast<float*>(dinv);
        e.rotary_dim = fused == Fused::kBare ? 0 : hd;
        e.k_pool = dk;
        e.v_pool = dv;
        e.slots = static_cast<int32_t*>(dslots);
        a.epilogue = &e;
        if (!paged_attention_fuses_epilogue(a)) {
            // The launcher would refuse it: too large a grid (HELEXA_ATTN_FUSE_ANY_GRID=1 lifts
            // the bound) or unsupported shapes.
            std::printf("%-44s not fused\n", name);
            a.epilogue = nullptr;
            a.q_stride = width;
        }
    }
    for (int i = 0; i < 3; ++i) CK(launch_paged_attention(a, nullptr));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
    std::vector<float> ms;
    // Back-to-back launches per timing: a single short launch between two events is mostly
    // launch latency (the decode cases of a serving step take 5-40 us).
    constexpr int kLaunches = 10;
    for (int r = 0; r < 20; ++r) {
        CK(cudaEventRecord(e0));
        for (int i = 0; i < kLaunches; ++i) CK(launch_paged_attention(a, nullptr));
        CK(cudaEventRecord(e1));
        CK(cudaEventSynchronize(e1));
        float t; CK(cudaEventElapsedTime(&t, e0, e1)); ms.push_back(t / kLaunches);
    }
    std::sort(ms.begin(), ms.end());
    const double t = ms[ms.size() / 2] * 1e-3;
    std::printf("%-44s %.3f ms  %.1f TFLOP/s  %.0f GB/s\n", name, t * 1e3, flops_per_run / t * 1e-12,
                bytes_per_run / t * 1e-9);
    cudaFree(dq); cudaFree(dk); cudaFree(dv); cudaFree(dout); cudaFree(dqs); cudaFree(dctx);
    cudaFree(dtab); if (dws) cudaFree(dws);
    cudaFree(dnorm); cudaFree(dinv); cudaFree(dpos); cudaFree(dslots);
}

int main() {
    std::mt19937 rng(1234);
    std::vector<Case> cases = {
        {"hd16 1 seq 1 token", 16, 4, 2, 16, {1}, {1}},
        {"hd16 decode mixed lengths", 16, 4, 2, 16, {1, 1, 1, 1}, {1, 17, 33, 200}},
        {"hd16 prefill chunk with prefix", 16, 4, 2, 16, {37, 100}, {50, 100}},
        {"hd16 f16 prefill", 16, 4, 2, 16, {70}, {70}, 0, false},
        {"hd64 spec decode nq<=4 bs7", 64, 8, 2, 7, {4, 1, 3}, {40, 300, 1000}},
        {"hd128 decode 1 seq 5000 (splits)", 128, 32, 8, 16, {1}, {5000}},
        {"hd128 decode bound>ctx (graph)", 128, 32, 8, 16, {1, 1}, {700, 3}, 9000},
        {"hd128 decode 1 seq 200 (short splits)", 128, 32, 8, 16, {1}, {200}},
        // 8 long splits merged in a cluster where the bound gives 16 or 33 short ones (the
        // default cluster split keys, 512; HELEXA_ATTN_CLUSTER_SPLIT_KEYS=0 takes the short ones).
        {"hd128 decode 1 seq 1000 (long cluster splits)", 128, 32, 8, 16, {1}, {1000}},
        {"hd128 decode 1 seq 3900 (long cluster splits)", 128, 32, 8, 16, {1}, {3900}},
        // 8 splits merged in a cluster, only 2 of them with keys (graph bound past the context).
        {"hd128 decode cluster bound>ctx", 128, 32, 8, 16, {1}, {100}, 412},
        {"hd64 spec decode nq<=4 cluster", 64, 8, 2, 16, {4, 2}, {300, 90}},
        {"hd128 prefill 300 after prefix 200", 128, 32, 8, 16, {300}, {500}, 0, true, 64},
        {"hd128 prefill mixed + decode rows", 128, 16, 4, 16, {1, 129, 65}, {900, 129, 80}},
        {"hd128 f16 decode splits", 128, 8, 8, 16, {1}, {3000}, 0, false},
        {"hd256 prefill", 256, 4, 1, 16, {90}, {150}},
        {"hd256 decode", 256, 4, 1, 16, {1, 2}, {2100, 40}},
        {"hd32 prefill bs5", 32, 6, 3, 5, {33}, {33}},
    };
    // One long context among short ones (spread 8): the balanced split plan, short sequences'
    // extra splits empty.
    Case skew{"hd128 decode 32 seqs, one long (spread)", 128, 32, 8, 16, {}, {}};
    for (int s = 0; s < 32; ++s) { skew.nq.push_back(1); skew.ctx.push_back(s == 0 ? 5000 : 100 + 7 * s); }
    cases.push_back(skew);
    Case many{"hd128 decode 256 seqs", 128, 8, 2, 16, {}, {}};
    for (int s = 0; s < 256; ++s) { many.nq.push_back(1); many.ctx.push_back(1 + (s * 37) % 200); }
    cases.push_back(many);
    bool all = true;
    // HELEXA_ATTN_BENCH_ONLY=TEXT: only the timings whose name holds TEXT, no correctness cases
    // (a profiler's view of one shape: ncu --launch-skip 3 --launch-count 1).
    if (std::getenv("HELEXA_ATTN_BENCH_ONLY") == nullptr) {
        for (const auto& c : cases) all = run_case(c, rng) && all;
    }
    const double pf = 4.0 * 32 * 128 * (4096.0 * 4097 / 2);
    time_case("prefill 4096 tok, 32x128 heads, 8 kv", 128, 32, 8, 1, 4096, 4096, pf, 0);
    time_case("decode 1 seq ctx 131072, 32/8 heads", 128, 32, 8, 1, 1, 131072, 0,
              2.0 * 131072 * 8 * 128 * 2);
    time_case("decode 64 seqs ctx 4096, 32/8 heads", 128, 32, 8, 64, 1, 4096, 0,
              64 * 2.0 * 4096 * 8 * 128 * 2);
    // A serving step's shapes (Qwen3-8B / Llama-8B heads): one stream, and the issue's 32
    // concurrent streams (512-token prompts + 256 outputs: ~640 keys mid-run).
    time_case("decode 1 seq ctx 256, 32/8 heads", 128, 32, 8, 1, 1, 256, 0,
              2.0 * 256 * 8 * 128 * 2);
    time_case("decode 1 seq ctx 1024, 32/8 heads", 128, 32, 8, 1, 1, 1024, 0,
              2.0 * 1024 * 8 * 128 * 2);
    time_case("decode 8 seqs ctx 640, 32/8 heads", 128, 32, 8, 8, 1, 640, 0,
              8 * 2.0 * 640 * 8 * 128 * 2);
    time_case("decode 32 seqs ctx 640, 32/8 heads", 128, 32, 8, 32, 1, 640, 0,
              32 * 2.0 * 640 * 8 * 128 * 2);
    // The 32-stream decode over context lengths (HELEXA_ATTN_BENCH_ONLY=scan): time against K/V
    // bytes splits a fixed cost (start, ramp, tail) from the streaming rate.
    for (const int ctx : {128, 256, 512, 1024, 2048, 4096}) {
        const std::string scan = "scan: decode 32 seqs ctx " + std::to_string(ctx);
        time_case(scan.c_str(), 128, 32, 8, 32, 1, ctx, 0, 32 * 2.0 * ctx * 8 * 128 * 2);
    }
    // One agent's long context among 31 short ones (HELEXA_ATTN_BENCH_ONLY=skew), planned as
    // if even and with the step planner's spread: the bytes are the same, the time is set by how
    // the long context's keys are shared out.
    for (const int long_ctx : {4096, 16384, 32768}) {
        for (const bool spread : {false, true}) {
            const std::string skew = "skew: 32 seqs, one " + std::to_string(long_ctx) +
                                     " + 31 x 2048" + (spread ? ", spread" : ", as even");
            time_case(skew.c_str(), 128, 32, 8, 32, 1, 2048, 0,
                      (31.0 * 2048 + long_ctx) * 2.0 * 8 * 128 * 2, Fused::kNo, long_ctx, spread);
        }
    }
    // The same as the model runs it (cuda_engine_bench --concurrency-long): 31 streams at ~640
    // keys, the long one past a power of two, the launch planned for the graph's width bucket.
    for (const auto& [long_ctx, bucket] : {std::pair{8448, 16384}, std::pair{33024, 65536}}) {
        for (const bool spread : {false, true}) {
            const std::string skew = "skew: 32 seqs, one " + std::to_string(long_ctx) +
                                     " + 31 x 640 in " + std::to_string(bucket) +
                                     (spread ? ", spread" : ", as even");
            time_case(skew.c_str(), 128, 32, 8, 32, 1, 640, 0,
                      (31.0 * 640 + long_ctx) * 2.0 * 8 * 128 * 2, Fused::kNo, long_ctx, spread,
                      bucket);
        }
    }
    // One stream's fused decode over context lengths (HELEXA_ATTN_BENCH_ONLY=scan1): where the
    // splits go from a cluster merge (<= 8) to the workspace's.
    for (const int ctx : {256, 512, 640, 768, 1024, 2048, 4096, 8192, 16384, 32768}) {
        const std::string scan = "scan1: fused decode 1 seq ctx " + std::to_string(ctx);
        time_case(scan.c_str(), 128, 32, 8, 1, 1, ctx, 0, 2.0 * ctx * 8 * 128 * 2,
                  Fused::kNormRope);
    }
    // The same with the q/k/v epilogue fused in (the engine's decode steps).
    time_case("fused: decode 1 seq ctx 256", 128, 32, 8, 1, 1, 256, 0, 2.0 * 256 * 8 * 128 * 2,
              Fused::kNormRope);
    time_case("fused: decode 8 seqs ctx 640", 128, 32, 8, 8, 1, 640, 0,
              8 * 2.0 * 640 * 8 * 128 * 2, Fused::kNormRope);
    time_case("fused: decode 32 seqs ctx 640", 128, 32, 8, 32, 1, 640, 0,
              32 * 2.0 * 640 * 8 * 128 * 2, Fused::kNormRope);
    time_case("fused, rope only: decode 32 seqs ctx 640", 128, 32, 8, 32, 1, 640, 0,
              32 * 2.0 * 640 * 8 * 128 * 2, Fused::kRope);
    time_case("fused, bare: decode 32 seqs ctx 640", 128, 32, 8, 32, 1, 640, 0,
              32 * 2.0 * 640 * 8 * 128 * 2, Fused::kBare);
    std::printf(all ? "ALL OK\n" : "FAILURES\n");
    return all ? 0 : 1;
}
