#!/usr/bin/env bash
# Where the tensor-core skinny matmul's CTAs spend their time: linear_bench --trace on each
# SHAPE:ROWS pair (the kernel taking every row count), then, per launch, the CTAs' start spread,
# first-unit latency, when their last unit was done, how long their range's end (a shared tile's
# finish) took and their duration (mean, min, max), the slowest SMs, the mean duration by CTA
# index modulo MOD (33 for Qwen3-8B's 4096-row projections on 132 SMs: the ranges' positions
# against the tiles repeat every 33 CTAs), and how alike two launches are SM by SM. Run 15 found
# with it that the CTAs whose ranges start inside a tile ran 6-10 us longer (docs/perf).
# Runs on the GPU host with the cuda bundle in .device (cuda_run.sh's header says how).
#   [PAIRS=down+residual:32,o_proj+residual:8] [MOD=33] [BENCH_BIN=linear_bench_other] \
#       bash scripts/gpu/mma_trace.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp/helexa-out}"
mkdir -p "$out"
export LD_LIBRARY_PATH="$PWD/.device/bundle/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
: > "$out/mma_trace.jsonl"
for pair in ${PAIRS:-down+residual:32 o_proj+residual:8}; do
    for p in ${pair//,/ }; do
        HELEXA_CUDA_MMA_MAX_ROWS=64 HELEXA_CUDA_SKINNY_MAX_ROWS=0 \
            ".device/bundle/bin/${BENCH_BIN:-linear_bench}" \
            --copy-gbps "${COPY_GBPS:-4200}" --label mma --shapes "${p%%:*}" --rows "${p##*:}" \
            --trace 1 >> "$out/mma_trace.jsonl" 2>> "$out/mma_trace.err" || echo "linear_bench $p failed"
    done
done
python3 - "$out/mma_trace.jsonl" "${MOD:-33}" <<'PY'
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"kind":"trace"')]
mod = int(sys.argv[2])
by = {}
for r in rows:
    by.setdefault((r["shape"], r["T"]), []).append(r)
for (shape, T), launches in by.items():
    per_sm = []
    for r in launches:
        ctas = r["ctas"]  # [sm, start, first unit landed, last unit done, end], microseconds
        dur = [c[4] - c[1] for c in ctas]
        streamed = [c[3] - c[1] for c in ctas]
        tail = [c[4] - c[3] for c in ctas]
        lat = [c[2] - c[1] for c in ctas]
        per_sm.append({c[0]: c[4] - c[1] for c in ctas})
        slow = sorted(range(len(ctas)), key=lambda i: -dur[i])[:8]
        print(f"{shape} T={T} launch {r['launch']}: {len(ctas)} CTAs, start spread "
              f"{max(c[1] for c in ctas):.2f} us, first unit after {st.mean(lat):.2f} us (max "
              f"{max(lat):.2f}), last unit done mean {st.mean(streamed):.2f} max "
              f"{max(streamed):.2f}, range end (shared tile) mean {st.mean(tail):.2f} max "
              f"{max(tail):.2f}, duration mean {st.mean(dur):.2f} min {min(dur):.2f} max "
              f"{max(dur):.2f}; slowest CTAs {slow} on SMs {[ctas[i][0] for i in slow]}")
        cls = {}
        for i, d in enumerate(dur):
            cls.setdefault(i % mod, []).append(d)
        print(f"  mean duration by CTA index mod {mod}: " +
              " ".join(f"{k}:{st.mean(v):.1f}" for k, v in sorted(cls.items())))
    if len(per_sm) == 2:
        common = sorted(set(per_sm[0]) & set(per_sm[1]))
        a = [per_sm[0][k] for k in common]
        b = [per_sm[1][k] for k in common]
        ma, mb = st.mean(a), st.mean(b)
        cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
        var = (sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b)) ** 0.5
        print(f"  per-SM duration correlation between the two launches: {cov / var:.2f}")
PY
