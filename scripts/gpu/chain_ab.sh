#!/usr/bin/env bash
# The decode chain's opt-in settings against its default, one call on the GPU host: the GPU suite
# (which runs each setting's tests), the attention link's phase marks (HELEXA_CUDA_CHAIN_ATTENTION:
# the chain trace of CudaChainAttention per split size, producers streaming or held), the chained
# linear_bench shapes ("mlp", "layer" at 1-2 rows) under each setting, and MODEL batch-1 decode
# under each setting against the copy bandwidth measured in the same call. Settings:
#   chain-attention HELEXA_CUDA_CHAIN_ATTENTION=1
# (Down taking its x by K chunk and the producer's L2 requests for a full ring lost in run 18,
# docs/perf/cuda-engine.md, and were removed with their settings.)
# Needs the cuda bundle in .device (cuda_run.sh's header says how to make it). Writes logs under
# $OUT; prints the tests' summary, the traces and the tables last.
#   [SPLITS=32,64,128] [MODEL=qwen3-8b] [COPY_GBPS=] bash scripts/gpu/chain_ab.sh
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
out="${OUT:-/tmp/helexa-out}"
mkdir -p "$out"
export LD_LIBRARY_PATH="$PWD/.device/bundle/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export HELEXA_SOURCE_DIR="$PWD"
bin=.device/bundle/bin
model="${MODEL:-qwen3-8b}"
splits="${SPLITS:-32,64,128}"
status=0
settings=(
    "default="
    "chain-attention=HELEXA_CUDA_CHAIN_ATTENTION=1"
)

stamp() { echo "[$(date +%T)] $*" >> "$out/phases.log"; }
stamp start
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/card.txt"
# The benchmark model is written (on the GPU, by transformers) while the tests run; everything
# timed waits for it. The order after the tests is the order of what decides: batch 1 under each
# setting, the linear_bench tables, the chain traces, the attention phase's marks (a call cut
# short by its time limit still brings back what it wrote under $OUT).
mkdir -p /tmp/models
gen=""
if [ ! -f "/tmp/models/$model/config.json" ]; then
    python3 scripts/gpu/make_bench_models.py --out /tmp/models --models "$model" \
        --reference none > "$out/models.log" 2>&1 &
    gen=$!
fi
timeout 300 "$bin/cuda_backend_tests" --gtest_brief=1 --gtest_filter='-CudaDeviceFault.*' \
    > "$out/tests.log" 2>&1 || status=1
grep -E '^\[  (PASSED|FAILED) |Failure' "$out/tests.log" | head -20

stamp suite done
[ -z "$gen" ] || wait "$gen" || { echo "model generation failed (models.log)"; status=1; }
stamp models done
"$bin/gpu_ceilings" > "$out/ceilings.txt"
copy="${COPY_GBPS:-$(grep '^{' "$out/ceilings.txt" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["copy_gb_per_s"])')}"

# The numbers that decide first: MODEL batch 1 under each setting (one line each as it lands).
: > "$out/bench.jsonl"
bench() {
    local label=$1 vars=$2
    env ${vars//,/ } timeout 120 "$bin/cuda_engine_bench" --model "/tmp/models/$model" \
        --label "$label" --copy-gbps "$copy" --gemm-tflops 1 --prompts "" --concurrency 1 \
        2>> "$out/bench.err" >> "$out/bench.jsonl" || { echo "bench $label failed"; status=1; }
    tail -n 2 "$out/bench.jsonl" | grep '"decode"' | cut -c1-160
}
for s in "${settings[@]}"; do
    bench "${s%%=*}" "${s#*=}"
done
bench default-again ""
stamp benches done

# The chained linear_bench shapes under each setting but the attention ones (no attention there):
# as built only, for now.
linear_settings=()
for s in "${settings[@]}"; do
    [[ "$s" == chain-attention* ]] || linear_settings+=("$s")
done
OUT="$out" COPY_GBPS="$copy" SHAPES=mlp,layer ROWS=1,2 bash scripts/gpu/linear_ab.sh \
    "${linear_settings[@]}" > "$out/linear_table.md" || status=1

# Where each boundary's time goes at one row (linear_bench --trace: per link, min / median / max
# over CTAs of x ready, last unit done and barrier passed, us from the first CTA's start), as
# built.
for s in "default="; do
    vars="${s#*=}"
    env ${vars//,/ } timeout 60 "$bin/linear_bench" --copy-gbps "$copy" --label "${s%%=*}" \
        --shapes layer --rows 1 --trace 1 2>> "$out/linear_trace.err" |
        grep chain_trace >> "$out/chain_traces.jsonl" || status=1
done
stamp linear done

# The attention phase's marks per split size, producers streaming (hold 0) or held (hold 1): a
# context of 100 keys (case 1) and of 1000 (case 3).
for keys in ${splits//,/ }; do
    for hold in 0 1; do
        echo "split keys $keys, hold $hold"
        HELEXA_CHAIN_ATTN_SPLIT_KEYS="$keys" HELEXA_CHAIN_ATTN_HOLD="$hold" \
            HELEXA_PRINT_CHAIN_TRACE=1 timeout 60 "$bin/cuda_backend_tests" \
            --gtest_filter='Shapes/CudaChainAttention.*/1:Shapes/CudaChainAttention.*/3' 2>&1 |
            grep -E '^\[ RUN|us \(|FAILED' | sed -e 's/MatchesCpuAndTheFusedKernelsPoolWrites//' |
            tee -a "$out/traces.log"
    done
done

stamp traces done

echo
echo "chain traces (layer, 1 row): $out/chain_traces.jsonl"
python3 - "$out/chain_traces.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    links = t.get("links", [])
    cells = ["x %s done %s barrier %s" % (l.get("x_ready"), l.get("done"), l.get("barrier"))
             for l in links]
    print(t.get("label"), "launch", t.get("launch"), " | ".join(cells))
PY
cat "$out/linear_table.md"
python3 - "$out/bench.jsonl" "$copy" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print(f"\n{'setting':32} {'decode b1 tok/s':>16} {'ratio':>7} {'1 stream ratio':>15}  (copy {sys.argv[2]} GB/s)")
by = {}
for r in rows:
    by.setdefault(r["label"], {})[r["kind"]] = r
for label, kinds in by.items():
    d = kinds.get("decode", {})
    c = kinds.get("concurrent", {})
    print(f"{label:32} {d.get('tokens_per_s', float('nan')):16.1f} {d.get('ratio', float('nan')):7.3f}"
          f" {c.get('ratio', float('nan')):15.3f}")
PY
exit $status
