#!/usr/bin/env bash
# One kernel launch under Nsight Compute, summarised: its duration, DRAM throughput and the SASS
# instructions holding the most warp-stall samples (where a latency-bound kernel waits). Runs on
# the GPU host with the cuda bundle in .device (cuda_run.sh's header says how to make it).
#   KERNEL=skinny_mma [SKIP=12] [TOP=30] \
#       bash scripts/gpu/ncu_sass_stalls.sh linear_bench --copy-gbps 4250 --shapes down --rows 8
# The first argument is a binary of the bundle, the rest its arguments; the environment passes
# through (the HELEXA_* switches). KERNEL is a regular expression on the kernel's name; SKIP
# launches of it are passed over (warm-up) before the one profiled. Writes $OUT/ncu.ncu-rep,
# details.txt and sass.csv; prints the summary.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp/helexa-out}"
mkdir -p "$out"
export LD_LIBRARY_PATH="$PWD/.device/bundle/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export HELEXA_SOURCE_DIR="$PWD"
ncu="$(command -v ncu || echo /usr/local/cuda/bin/ncu)"
[ $# -ge 1 ] || { echo "usage: KERNEL=regex $0 BINARY [ARGS...]" >&2; exit 2; }
[ -n "${KERNEL:-}" ] || { echo "KERNEL (a kernel-name regex) is required" >&2; exit 2; }
bin=".device/bundle/bin/$1"
shift
[ -x "$bin" ] || { echo "no such bundle binary: $bin" >&2; exit 2; }
rm -f "$out/ncu.ncu-rep"
"$ncu" --clock-control none --kernel-name "regex:$KERNEL" \
    --launch-skip "${SKIP:-12}" --launch-count 1 --set full --import-source no \
    -o "$out/ncu" "$bin" "$@" > "$out/ncu.log" 2>&1
[ -f "$out/ncu.ncu-rep" ] || { echo "no launch of /$KERNEL/ was profiled:"; tail -5 "$out/ncu.log"; exit 1; }
"$ncu" -i "$out/ncu.ncu-rep" --page details > "$out/details.txt" 2>&1
"$ncu" -i "$out/ncu.ncu-rep" --page source --print-source sass --csv > "$out/sass.csv" 2>&1
grep -E "^  [A-Za-z_].*\(|Duration|DRAM Throughput|Registers Per Thread|Warp Cycles Per Issued" \
    "$out/details.txt" | head -8
python3 - "$out/sass.csv" "${TOP:-30}" <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if r and r[0].startswith("0x")]
def num(x):
    try:
        return float(x.replace(",", ""))
    except ValueError:
        return 0.0
# Columns: address, source, warp-stall samples (all), ... instructions executed.
total = sum(num(r[2]) for r in rows) or 1.0
print(f"stall samples by instruction (of {total:.0f}; offset in the kernel, times executed):")
for r in sorted(rows, key=lambda r: -num(r[2]))[:int(sys.argv[2])]:
    print(f"{num(r[2]) / total * 100:5.1f}%  {int(r[0], 16) & 0xffff:#07x}  {r[5]:>8}  {r[1][:90]}")
PY
