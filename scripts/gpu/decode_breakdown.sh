#!/usr/bin/env bash
# Where a batch-1 decode step's time goes, kernel by kernel (issue 8 performance work): one
# decode step of a random-weight model under Nsight Compute (kernels serialised, graphs off, so
# each kernel's own duration), summed per kernel and per layer; then the same decode timed with
# the skinny path off (cuBLASLt + separate norm/SwiGLU kernels) for comparison. Also runs the
# GPU test suite first and prints its failures. Table printed last; logs under $OUT.
#   MODEL=qwen3-8b bash scripts/gpu/decode_breakdown.sh      (needs the cuda bundle in .device)
#   BATCH=32 ...: the same for one step of 32 concurrent streams (512-token prompts)
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp/helexa-out}"
mkdir -p "$out"
export LD_LIBRARY_PATH="$PWD/.device/bundle/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export HELEXA_SOURCE_DIR="$PWD"
bin=.device/bundle/bin
model="${MODEL:-qwen3-8b}"
logs=/tmp/breakdown-logs
mkdir -p "$logs"
if [ "${SKIP_TESTS:-0}" != 1 ]; then
    "$bin/cuda_backend_tests" --gtest_brief=1 > "$logs/tests.log" 2>&1
    echo "cuda_backend_tests rc $?"
    grep -E '^\[  (PASSED|FAILED) |Failure|Expected|Which is|actual|rel' "$logs/tests.log" | head -30
fi
"$bin/gpu_ceilings" > "$logs/ceilings.txt"
copy=$(grep '^{' "$logs/ceilings.txt" | python3 -c 'import json,sys; print(json.load(sys.stdin)["copy_gb_per_s"])')
mkdir -p /tmp/models
[ -f "/tmp/models/$model/config.json" ] ||  # left by cuda_run.sh KEEP_MODELS=1
    python3 scripts/gpu/make_bench_models.py --out /tmp/models --models "$model" --reference none \
        > "$logs/models.log" 2>&1
batch="${BATCH:-1}"
args=(--model "/tmp/models/$model" --copy-gbps "$copy" --gemm-tflops 800 --prompts "" --concurrency "")
if [ "$batch" -gt 1 ]; then
    args=(--model "/tmp/models/$model" --copy-gbps "$copy" --gemm-tflops 800 --prompts ""
          --concurrency "$batch" --concurrency-output 32 --decode-steps 9)
fi
"$bin/cuda_engine_bench" "${args[@]}" --label as-built | grep -E 'decode|concurrent'
HELEXA_CUDA_SKINNY_MAX_ROWS=0 "$bin/cuda_engine_bench" "${args[@]}" --label cublaslt-unfused |
    grep -E 'decode|concurrent'
HELEXA_PROFILE_DECODE_STEP="$batch" NEURON_CUDA_GRAPHS=0 ncu --profile-from-start off --clock-control none \
    --metrics gpu__time_duration.sum --csv --print-units base \
    "$bin/cuda_engine_bench" "${args[@]}" --decode-steps 9 --label ncu > "$logs/ncu.csv" 2> "$logs/ncu.err"
echo "ncu rc $? ($(grep -c gpu__time_duration "$logs/ncu.csv") kernels)"
python3 - "$logs/ncu.csv" <<'PY'
import csv, sys, re, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if r and (r[0] == "ID" or r[0].isdigit())]
head = rows[0]; rows = rows[1:]
name_i = head.index("Kernel Name"); val_i = head.index("Metric Value")
tot = collections.OrderedDict(); cnt = collections.Counter()
for r in rows:
    name = r[name_i]
    short = name.replace("(anonymous namespace)::", "")
    short = short.split("(")[0].replace("void ", "")
    short = re.sub(r"\b[A-Za-z_]+::", "", short) + " grid " + r[head.index("Grid Size")]
    us = float(r[val_i].replace(",", "")) / 1e3
    tot[short] = tot.get(short, 0) + us; cnt[short] += 1
total = sum(tot.values())
print(f"\none decode step under ncu: {len(rows)} kernels, {total:.1f} us of kernel time")
print("| kernel | count | total us | us each | share |\n|---|---:|---:|---:|---:|")
for k, v in sorted(tot.items(), key=lambda kv: -kv[1]):
    print(f"| {k[:90]} | {cnt[k]} | {v:.1f} | {v / cnt[k]:.2f} | {v / total:.2f} |")
PY
cp "$logs/tests.log" "$logs/ncu.csv" "$out/" 2>/dev/null
