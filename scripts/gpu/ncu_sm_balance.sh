#!/usr/bin/env bash
# How evenly a kernel's work is spread over the SMs, under Nsight Compute: per profiled launch its
# duration, DRAM throughput, and the SMs' active cycles (min / mean / max) against the elapsed
# cycles. The max over the mean is the straggler cost run 15 measured (docs/perf/cuda-engine.md).
# Runs on the GPU host with the cuda bundle in .device (cuda_run.sh's header says how to make it).
#   KERNEL=skinny_mma [SKIP=8] [COUNT=2] \
#       bash scripts/gpu/ncu_sm_balance.sh linear_bench --copy-gbps 4230 --shapes mlp --rows 32
# The first argument is a binary of the bundle, the rest its arguments; the environment passes
# through (the HELEXA_* switches). KERNEL is a regular expression on the kernel's name (empty:
# every kernel); SKIP launches are passed over before COUNT are profiled.
set -uo pipefail
cd "$(dirname "$0")/../.."
export LD_LIBRARY_PATH="$PWD/.device/bundle/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export HELEXA_SOURCE_DIR="$PWD"
ncu="$(command -v ncu || echo /usr/local/cuda/bin/ncu)"
[ $# -ge 1 ] || { echo "usage: [KERNEL=regex] $0 BINARY [ARGS...]" >&2; exit 2; }
bin=".device/bundle/bin/$1"
shift
[ -x "$bin" ] || { echo "no such bundle binary: $bin" >&2; exit 2; }
metrics=gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed
metrics+=,sm__cycles_active.min,sm__cycles_active.avg,sm__cycles_active.max,sm__cycles_elapsed.max
"$ncu" --clock-control none ${KERNEL:+--kernel-name "regex:$KERNEL"} \
    --launch-skip "${SKIP:-8}" --launch-count "${COUNT:-2}" --metrics "$metrics" "$bin" "$@" 2>&1 |
    grep -E '^  [A-Za-z_].*\(|duration|dram__|cycles_active|cycles_elapsed' | cut -c1-140
