#!/usr/bin/env bash
# linear_bench under several environment settings in one call, side by side: an A/B of the
# linear's kernel choices (skinny, tensor-core skinny, cuBLASLt) and their knobs on the same card.
# Needs the cuda bundle in .device (cuda_run.sh's header says how to make it).
#   COPY_GBPS=4200 [SHAPES=qkv,down] [ROWS=1,8,32] bash scripts/gpu/linear_ab.sh \
#       "label=NAME=VALUE,NAME=VALUE" "label2=" ...
# Each argument is a label, '=', then comma-separated variables ("as-built=" for none);
# BENCH_BIN=NAME among them runs that bundle binary instead of linear_bench (an A/B of two
# builds of a kernel: bundle the other build's linear_bench under another name). Writes
# $OUT/linear_ab.jsonl and prints one table: microseconds a call (weight-read ratio to
# COPY_GBPS) per shape and row count, one column per setting.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp/helexa-out}"
mkdir -p "$out"
export LD_LIBRARY_PATH="$PWD/.device/bundle/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
copy="${COPY_GBPS:-4200}"
jsonl="$out/linear_ab.jsonl"
: > "$jsonl"
status=0
for setting in "$@"; do
    label="${setting%%=*}"
    vars="${setting#*=}"
    exe=$(tr ',' '\n' <<< "$vars" | sed -n 's/^BENCH_BIN=//p')
    env ${vars//,/ } ".device/bundle/bin/${exe:-linear_bench}" --copy-gbps "$copy" --label "$label" \
        ${SHAPES:+--shapes "$SHAPES"} ${ROWS:+--rows "$ROWS"} \
        >> "$jsonl" 2>> "$out/linear_ab.err" || { echo "linear_bench $label failed"; status=1; }
done
python3 - "$jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
labels = list(dict.fromkeys(r["label"] for r in rows))
by = {}
for r in rows:
    by.setdefault((r["shape"], r["T"]), {})[r["label"]] = r
print("| linear | T | " + " | ".join(labels) + " |")
print("|---|---:|" + "---:|" * len(labels))
for (shape, T), v in by.items():
    cells = [f"{v[l]['us']:.1f} us ({v[l]['ratio']:.2f})" if l in v else "-" for l in labels]
    print(f"| {shape} | {T} | " + " | ".join(cells) + " |")
PY
exit $status
