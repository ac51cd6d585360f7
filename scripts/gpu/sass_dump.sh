#!/usr/bin/env bash
# The SASS of named kernels from a bundle binary, on the GPU host (its toolkit has cuobjdump; the
# build machine has no disassembler): each matching function's instructions under
# $OUT/sass/, and a table of their sizes and memory instructions. Run 25 found a small kernel
# waiting on each pack's loads in turn this way (each pack's loads in their own conditional
# block): the per-function list of loads, stores, barriers and branches shows how a kernel's
# round trips are scheduled before any device time is spent timing it.
#   KERNELS="add_partials_norm_kernel,qkv_epilogue_kernel" [MATCH=bfloat16] [BIN=cuda_engine_bench] \
#       bash scripts/gpu/sass_dump.sh
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
out="${OUT:-/tmp/helexa-out}"
bin=".device/bundle/bin/${BIN:-cuda_engine_bench}"
cuobjdump=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1)
[ -n "$cuobjdump" ] || { echo "no cuobjdump on this host"; exit 1; }
[ -f "$bin" ] || { echo "no $bin (bundle it: scripts/gpu/bundle.sh)"; exit 1; }
[ -n "${KERNELS:-}" ] || { echo "usage: KERNELS=name[,name...] bash scripts/gpu/sass_dump.sh"; exit 2; }
mkdir -p "$out/sass"
"$cuobjdump" -sass "$bin" > "$out/sass/all.sass" 2>/dev/null || { echo "cuobjdump failed"; exit 1; }
python3 - "$out/sass" "$KERNELS" "${MATCH:-}" <<'PY'
import os, re, sys
folder, names, match = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
functions, current = {}, None
for line in open(os.path.join(folder, "all.sass")):
    m = re.match(r"\s*Function : (\S+)", line)
    if m:
        current = m.group(1) if any(n in m.group(1) for n in names) and match in m.group(1) else None
        if current:
            functions[current] = []
        continue
    m = re.match(r"\s+/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;", line)
    if current and m:
        functions[current].append((m.group(1), m.group(2)))
kinds = ("LDG", "STG", "LDS", "STS", "BAR", "BRA", "SHFL")
print("| function | bytes | " + " | ".join(kinds) + " |")
print("|---|---:|" + "---:|" * len(kinds))
for i, (name, code) in enumerate(sorted(functions.items())):
    ops = [ins.split()[1] if ins.startswith("@") else ins.split()[0] for _, ins in code]
    counts = [sum(op.startswith(k) for op in ops) for k in kinds]
    # From the kernel's own name on: the namespaces' mangling would hide the template arguments.
    start = min(pos for pos in (name.find(n) for n in names) if pos >= 0)
    print(f"| {name[start:start + 90]} | {16 * len(code)} | " + " | ".join(map(str, counts)) + " |")
    with open(os.path.join(folder, f"{i:02d}.sass"), "w") as f:
        f.write(name + "\n")
        for addr, ins in code:
            f.write(f"{addr} {ins}\n")
    with open(os.path.join(folder, f"{i:02d}.memory"), "w") as f:
        f.write(name + "\n")
        for addr, ins in code:
            if re.search(r"\b(LDG|STG|LDS|STS|BAR|BRA|SHFL|DEPBAR|LDGSTS|SYNCS)", ins):
                f.write(f"{addr} {ins}\n")
PY
rm -f "$out/sass/all.sass"
