#!/usr/bin/env bash
# Kernel timelines of decode steps as they really run (CUDA graphs, programmatic dependent
# launch, nothing serialised): one step per (model, batch) through cuda_engine_bench with
# HELEXA_KERNEL_TRACE (CUPTI kernel records, benchmarks/cuda/kernel_trace.h). The per-kernel
# "adds us" column is each kernel's share of the step's critical path. Needs the cuda bundle in
# .device and models in /tmp/models (cuda_run.sh KEEP_MODELS=1, or generated here).
#   MODELS=qwen3-8b,qwen3-0.6b BATCHES=1,32 [AB_ENV="NAME=VALUE"] [SAMPLING=drawn-greedy] \
#       [LONG=n] [AB_BIN=cuda_engine_bench_old] bash scripts/gpu/kernel_trace.sh
# SAMPLING: the multi-stream steps drawn that way (cuda_engine_bench --sampling) instead of argmax.
# LONG: the multi-stream steps with stream 0's prompt that many tokens (--concurrency-long);
# batch 1 then runs as one stream of that prompt.
# AB_BIN: each step again with that bundle binary (another build's cuda_engine_bench), with
# AB_ENV's variables when both are given.
# Steps are traced synchronously (HELEXA_BENCH_OVERLAP is unset here): an overlapped step is
# launched before the trace's window opens, so its window would hold parts of two steps.
# Writes $OUT/trace.md (one section per step; with AB_ENV each step again with those variables)
# and prints each section's per-kernel summary.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp/helexa-out}"
mkdir -p "$out"
export LD_LIBRARY_PATH="$PWD/.device/bundle/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=.device/bundle/bin
unset HELEXA_BENCH_OVERLAP
models="${MODELS:-qwen3-8b}"
batches="${BATCHES:-1,32}"
trace="$out/trace.md"
: > "$trace"
mkdir -p /tmp/models
for m in ${models//,/ }; do
    [ -f "/tmp/models/$m/config.json" ] ||
        python3 scripts/gpu/make_bench_models.py --out /tmp/models --models "$m" --reference none \
            > /dev/null 2>&1
    for b in ${batches//,/ }; do
        args=(--model "/tmp/models/$m" --copy-gbps 1 --gemm-tflops 1 --prompts "" --concurrency "")
        { [ "$b" -gt 1 ] || [ -n "${LONG:-}" ]; } &&
            args=(--model "/tmp/models/$m" --copy-gbps 1 --gemm-tflops 1 --prompts ""
                --concurrency "$b" --concurrency-output 32 --decode-steps 9
                ${SAMPLING:+--sampling "$SAMPLING"} ${LONG:+--concurrency-long "$LONG"})
        HELEXA_PROFILE_DECODE_STEP="$b" HELEXA_KERNEL_TRACE="$trace" \
            "$bin/cuda_engine_bench" "${args[@]}" --label "$m" > /dev/null ||
            echo "trace of $m batch $b failed"
        if [ -n "${AB_ENV:-}" ] || [ -n "${AB_BIN:-}" ]; then
            echo -e "\n(with ${AB_BIN:-} ${AB_ENV:-})" >> "$trace"
            env ${AB_ENV:-} HELEXA_PROFILE_DECODE_STEP="$b" HELEXA_KERNEL_TRACE="$trace" \
                "$bin/${AB_BIN:-cuda_engine_bench}" "${args[@]}" --label "$m-ab" > /dev/null ||
                echo "trace of $m batch $b with ${AB_BIN:-} ${AB_ENV:-} failed"
        fi
    done
done
# The summaries only (the per-kernel rows stay in the file).
awk '/^## /{print; next} /^\| kernel \| grid \| count/{on=1} on&&/^$/{on=0} on{print} /^window:/{print}' "$trace"
