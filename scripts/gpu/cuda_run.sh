#!/usr/bin/env bash
# Issue 8's whole GPU run, one call on the GPU host: the card's ceilings, the CUDA backend's
# correctness suite (every kernel against the CPU backend, the transformers fixtures, batched vs
# single), random-weight real-shape models made with transformers, transformers' own bf16
# forward as reference, and the engine benchmark against the ceilings. Table printed last; logs
# and JSON under $OUT.
# Needs the bundle: scripts/gpu/bundle.sh build/cuda/libs/kernels/gpu_ceilings \
#   build/cuda/libs/kernels/attention_kernel_bench build/cuda/libs/kernels/qkv_epilogue_check \
#   build/cuda/libs/cuda/cuda_backend_tests \
#   build/cuda/libs/cuda/cuda_engine_bench build/cuda/libs/cuda/linear_bench   (carry .device)
#   MODELS=qwen3-0.6b,qwen3-8b,llama3.1-8b SKIP_TESTS=0 bash scripts/gpu/cuda_run.sh
# KEEP_MODELS=1 leaves the generated models in /tmp/models (decode_breakdown.sh reuses them).
# REFERENCE names the models compared with transformers (none: no comparison); REFERENCE_INIT
# (successor by default, or plain, scaled) and REFERENCE_EMBED_STD (4) say how they are
# initialised (make_bench_models.py says why).
# A/B runs beside the default (1 = on): PDL_AB (plain launches), MMA_AB (the tensor-core skinny
# matmul instead of cuBLASLt at 3-64 rows; off by default until it wins), SAMPLED (the
# concurrency runs again with every stream sampled, once per SAMPLING_MODES entry: by default
# drawn, drawn-topk, drawn-topp, host; see cuda_engine_bench --sampling). AB_ENV="NAME=VALUE ..."
# repeats the attention timings and each model's decode and concurrency runs with those
# variables set (label suffix -ab): an A/B of any environment knob in the same call.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp/helexa-out}"
mkdir -p "$out"
export LD_LIBRARY_PATH="$PWD/.device/bundle/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export HELEXA_SOURCE_DIR="$PWD"
export PYTHONUNBUFFERED=1
bin=.device/bundle/bin
models="${MODELS:-qwen3-0.6b,qwen3-8b,llama3.1-8b}"
bench_args="${BENCH_ARGS:-}"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv | tee "$out/card.txt"
git log -1 --format='commit %H %s' 2>/dev/null | tee -a "$out/card.txt" || true

"$bin/gpu_ceilings" | tee "$out/ceilings.txt"
copy=$(grep '^{' "$out/ceilings.txt" | python3 -c 'import json,sys; print(json.load(sys.stdin)["copy_gb_per_s"])')
gemm=$(grep '^{' "$out/ceilings.txt" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bf16_gemm_tflops"])')

status=0
if [ "${SKIP_TESTS:-0}" != 1 ]; then
    "$bin/cuda_backend_tests" --gtest_brief=1 --gtest_filter='-CudaDeviceFault.*' \
        > "$out/tests.log" 2>&1 || status=1
    # A real device fault last: if the device did not come back, nothing after it could run.
    "$bin/cuda_backend_tests" --gtest_brief=1 --gtest_filter='CudaDeviceFault.*' \
        >> "$out/tests.log" 2>&1 || status=1
    grep -E '^\[  (PASSED|FAILED) |FAILED|Failure|error' "$out/tests.log" | head -40
    "$bin/attention_kernel_bench" > "$out/attention.log" 2>&1 || status=1
    tail -12 "$out/attention.log"
    if [ -n "${AB_ENV:-}" ]; then
        echo "attention timings with $AB_ENV:"
        env $AB_ENV "$bin/attention_kernel_bench" 2>&1 | grep -E ' ms ' | tee -a "$out/attention.log"
    fi
    "$bin/qkv_epilogue_check" > "$out/qkv_epilogue.log" 2>&1 || status=1
    grep -E 'FAIL|^time|ALL OK|^api' "$out/qkv_epilogue.log" | tail -12
    command -v cuobjdump >/dev/null &&
        echo "128-bit global loads in the engine's SASS: $(cuobjdump -sass "$bin/cuda_engine_bench" | grep -c 'LDG.E.128')"
fi

if [ "${SKIP_LINEAR:-0}" != 1 ]; then
    settings=("as-built=" "cublaslt=HELEXA_CUDA_SKINNY_MAX_ROWS=0")
    [ "${MMA_AB:-1}" = 1 ] && settings+=("mma=HELEXA_CUDA_MMA_MAX_ROWS=64")
    COPY_GBPS="$copy" OUT="$out" bash scripts/gpu/linear_ab.sh "${settings[@]}" || status=1
fi

mkdir -p /tmp/models
python3 scripts/gpu/make_bench_models.py --out /tmp/models --models "$models" \
    --reference "${REFERENCE:-qwen3-8b}" --reference-init "${REFERENCE_INIT:-successor}" \
    --embed-std "${REFERENCE_EMBED_STD:-4}" 2>&1 | grep -v Warning | tee "$out/models.log"
: > "$out/bench.jsonl"
for m in ${models//,/ }; do
    ref=""
    [ -f "/tmp/models/$m/reference.json" ] && ref="--reference"
    "$bin/cuda_engine_bench" --model "/tmp/models/$m" --label "$m" --copy-gbps "$copy" \
        --gemm-tflops "$gemm" $ref $bench_args 2>> "$out/bench.err" | tee -a "$out/bench.jsonl" ||
        status=1
    if [ "$m" = qwen3-0.6b ]; then
        # The same decode without CUDA graphs: what graphs buy where launches dominate.
        NEURON_CUDA_GRAPHS=0 "$bin/cuda_engine_bench" --model "/tmp/models/$m" --label "$m-nographs" \
            --copy-gbps "$copy" --gemm-tflops "$gemm" --prompts "" --concurrency 1,32 \
            2>> "$out/bench.err" | tee -a "$out/bench.jsonl" || status=1
    fi
    if [ "${PDL_AB:-1}" = 1 ] && [ "$m" != llama3.1-8b ]; then
        # The same decode with plain launches: what programmatic dependent launch buys.
        HELEXA_CUDA_PDL=0 "$bin/cuda_engine_bench" --model "/tmp/models/$m" --label "$m-nopdl" \
            --copy-gbps "$copy" --gemm-tflops "$gemm" --prompts "" --concurrency 1,32 \
            2>> "$out/bench.err" | tee -a "$out/bench.jsonl" || status=1
    fi
    if [ -n "${AB_ENV:-}" ]; then
        env $AB_ENV "$bin/cuda_engine_bench" --model "/tmp/models/$m" --label "$m-ab" \
            --copy-gbps "$copy" --gemm-tflops "$gemm" --prompts "" --concurrency 1,8,32 \
            2>> "$out/bench.err" | tee -a "$out/bench.jsonl" || status=1
    fi
    if [ "${SAMPLED:-1}" = 1 ] && [ "$m" != llama3.1-8b ]; then
        # The same concurrency sampled: drawn where the logits are (a default request; Qwen3's
        # generation settings; Llama-3.1's), and by the host Sampler (what settings the draw
        # rule does not cover get).
        for mode in ${SAMPLING_MODES:-drawn drawn-topk drawn-topp host}; do
            "$bin/cuda_engine_bench" --model "/tmp/models/$m" --label "$m-$mode" \
                --copy-gbps "$copy" --gemm-tflops "$gemm" --prompts "" --concurrency 1,8,32,64 \
                --sampling "$mode" 2>> "$out/bench.err" | tee -a "$out/bench.jsonl" || status=1
        done
    fi
    if [ "${MMA_AB:-1}" = 1 ] && [ "$m" = qwen3-8b ]; then
        # The same concurrency with the tensor-core skinny matmul where cuBLASLt runs (3-64 rows).
        HELEXA_CUDA_MMA_MAX_ROWS=64 "$bin/cuda_engine_bench" --model "/tmp/models/$m" \
            --label "$m-mma" --copy-gbps "$copy" --gemm-tflops "$gemm" --prompts "" \
            --concurrency 8,32,64 2>> "$out/bench.err" | tee -a "$out/bench.jsonl" || status=1
    fi
    [ "${KEEP_MODELS:-0}" = 1 ] || rm -rf "/tmp/models/$m"
done
tail -5 "$out/bench.err" 2>/dev/null

python3 - "$out/bench.jsonl" "$copy" "$gemm" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print(f"\nceilings: copy {sys.argv[2]} GB/s, bf16 GEMM {sys.argv[3]} TFLOP/s")
print("| model | measure | value | ceiling | ratio |\n|---|---|---:|---:|---:|")
for r in rows:
    k = r["kind"]
    if k == "reference":
        print(f"| {r['label']} | vs transformers bf16 | cos {r['cosine']:.5f}, greedy {r['greedy_match']}/{r['greedy_len']} | | |")
        print(f"| {r['label']} | vs transformers f32 | cos {r.get('cosine_f32', 0):.5f}, greedy {r.get('greedy_match_f32', 0)}/{r['greedy_len']} (their bf16 vs f32: cos {r.get('transformers_bf16_vs_f32', 0):.5f}) | | |")
    elif k in ("decode", "decode_overlapped"):
        what = "decode b1 tok/s" if k == "decode" else "decode b1 overlapped tok/s"
        print(f"| {r['label']} | {what} | {r['tokens_per_s']:.1f} | {r['roofline_tokens_per_s']:.1f} | {r['ratio']:.2f} |")
    elif k == "prefill":
        first = f", first {r['first_ttft_ms']:.1f}" if "first_ttft_ms" in r else ""
        print(f"| {r['label']} | prefill {r['tokens']} TTFT ms | {r['ttft_ms']:.1f} ({r['tflops']:.0f} TFLOP/s{first}) | {sys.argv[3]} | {r['ratio']:.2f} |")
    elif k == "concurrent":
        steps = f" (step {r['median_step_us'] / 1e3:.2f} ms, first {r['first_step_us'] / 1e3:.1f})" if "median_step_us" in r else ""
        print(f"| {r['label']} | {r['batch']} streams tok/s | {r['tokens_per_s']:.0f}{steps} | {r['ceiling_tokens_per_s']:.0f} | {r['ratio']:.2f} |")
    elif k == "load":
        print(f"| {r['label']} | load s | {r['seconds']:.1f} | | |")
PY
exit $status
