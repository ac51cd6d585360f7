#!/usr/bin/env bash
# The attention inside the decode chain (HELEXA_CUDA_CHAIN_ATTENTION=1, chain_attention.cuh), one
# call on the GPU host: its tests, where its phase's time goes (the chain trace of
# CudaChainAttention under each split size and with the producers held or not), and Qwen3-8B
# batch-1 decode with it against the default, against the copy bandwidth measured in the same
# call. Needs the cuda bundle in .device (cuda_run.sh's header says how to make it). Writes logs
# under $OUT; prints the tests' summary, the traces and a table last.
#   [SPLITS=32,64,128] [MODEL=qwen3-8b] bash scripts/gpu/chain_attention_ab.sh
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

nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/card.txt"
timeout 300 "$bin/cuda_backend_tests" --gtest_brief=1 --gtest_filter='-CudaDeviceFault.*' \
    > "$out/tests.log" 2>&1 || status=1
grep -E '^\[  (PASSED|FAILED) |Failure' "$out/tests.log" | head -20

# The phase's marks per split size, producers streaming (hold 0) or held (hold 1): a context of
# 100 keys (case 1) and of 1000 (case 3).
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

"$bin/gpu_ceilings" > "$out/ceilings.txt"
copy=$(grep '^{' "$out/ceilings.txt" | python3 -c 'import json,sys; print(json.load(sys.stdin)["copy_gb_per_s"])')
mkdir -p /tmp/models
[ -f "/tmp/models/$model/config.json" ] ||
    python3 scripts/gpu/make_bench_models.py --out /tmp/models --models "$model" --reference none \
        > "$out/models.log" 2>&1
: > "$out/bench.jsonl"
bench() {
    local label=$1
    shift
    env "$@" timeout 120 "$bin/cuda_engine_bench" --model "/tmp/models/$model" --label "$label" \
        --copy-gbps "$copy" --gemm-tflops 1 --prompts "" --concurrency 1 \
        2>> "$out/bench.err" >> "$out/bench.jsonl" || { echo "bench $label failed"; status=1; }
}
bench default
bench chain-attention HELEXA_CUDA_CHAIN_ATTENTION=1
for keys in ${splits//,/ }; do
    bench "chain-attention-split$keys" HELEXA_CUDA_CHAIN_ATTENTION=1 \
        HELEXA_CHAIN_ATTN_SPLIT_KEYS="$keys"
done
bench default-again
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
