#!/usr/bin/env bash
# MODEL's runner-level concurrency (cuda_engine_bench: 8 / 32 / 64 greedy streams, 512-token
# prompts' contexts, decode tok/s against the step ceiling) under each environment setting, in
# turn and then in turn again, against the copy bandwidth measured in the same call: an A/B of
# knobs that act at 3-64 rows, with each setting measured twice so a drift of the card shows.
# Settings are "label=NAME=VALUE,NAME=VALUE" ("label=" for as built); BENCH_BIN=NAME among them
# runs that bundle binary instead of cuda_engine_bench (an A/B of two builds: bundle the other
# build's cuda_engine_bench under another name), and SAMPLING=MODE runs it with --sampling MODE
# (drawn-greedy: the draw a default request over HTTP gets). Each run also measures batch-1 decode (the
# "b1" column). Needs the cuda bundle in .device (cuda_run.sh's header says how). Logs under
# $OUT; one table printed last.
#   [MODEL=qwen3-8b] [CONCURRENCY=8,32,64 (empty: batch 1 only)] bash scripts/gpu/concurrency_ab.sh \
#       "as-built=" "k-split-off=HELEXA_CUDA_K_SPLIT=0" "other-build=BENCH_BIN=cuda_engine_bench_b"
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
out="${OUT:-/tmp/helexa-out}"
mkdir -p "$out"
export LD_LIBRARY_PATH="$PWD/.device/bundle/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=.device/bundle/bin
model="${MODEL:-qwen3-8b}"
conc="${CONCURRENCY-8,32,64}"  # empty: batch-1 decode only
[ "$#" -gt 0 ] || { echo "usage: concurrency_ab.sh \"label=VARS\" ..." >&2; exit 2; }
status=0
mkdir -p /tmp/models
[ -f "/tmp/models/$model/config.json" ] ||
    python3 scripts/gpu/make_bench_models.py --out /tmp/models --models "$model" --reference none \
        > "$out/models.log" 2>&1 || { echo "model generation failed (models.log)"; exit 1; }
"$bin/gpu_ceilings" > "$out/ceilings.txt"
copy=$(grep '^{' "$out/ceilings.txt" | python3 -c 'import json,sys; print(json.load(sys.stdin)["copy_gb_per_s"])')
: > "$out/concurrency_ab.jsonl"
for round in 1 2; do
    for s in "$@"; do
        label="${s%%=*}"
        vars="${s#*=}"
        exe=$(tr ',' '\n' <<< "$vars" | sed -n 's/^BENCH_BIN=//p')
        sampling=$(tr ',' '\n' <<< "$vars" | sed -n 's/^SAMPLING=//p')
        env ${vars//,/ } timeout 180 "$bin/${exe:-cuda_engine_bench}" --model "/tmp/models/$model" \
            --label "$label#$round" --copy-gbps "$copy" --gemm-tflops 1 --prompts "" \
            --concurrency "$conc" ${sampling:+--sampling "$sampling"} \
            2>> "$out/concurrency_ab.err" >> "$out/concurrency_ab.jsonl" ||
            { echo "bench $label failed"; status=1; }
    done
done
python3 - "$out/concurrency_ab.jsonl" "$copy" "$model" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
runs = [r for r in rows if r.get("kind") == "concurrent"]
batches = sorted({r["batch"] for r in runs})
labels = list(dict.fromkeys(r["label"] for r in rows if "label" in r))
print(f"\n{sys.argv[3]}, copy {sys.argv[2]} GB/s: decode tok/s (ratio to the step ceiling; median step ms)")
print("| setting | b1 | b1 overlapped | " + " | ".join(f"{b} streams" for b in batches) + " |")
print("|---|---:|---:|" + "---:|" * len(batches))
for label in labels:
    cells = []
    for kind in ("decode", "decode_overlapped"):
        d = next((r for r in rows if r.get("kind") == kind and r["label"] == label), None)
        cells.append("" if d is None else f"{d['tokens_per_s']:.1f} ({d['ratio']:.3f})")
    for b in batches:
        r = next((r for r in runs if r["label"] == label and r["batch"] == b), None)
        cells.append("" if r is None else
                     f"{r['tokens_per_s']:.0f} ({r['ratio']:.3f}; {r['median_step_us'] / 1e3:.2f})")
    print(f"| {label} | " + " | ".join(cells) + " |")
PY
exit $status
