#!/usr/bin/env python3
"""Each kernel's machine-code size in one CUDA source, as built for sm_90a (no GPU needed).

A decode step's kernels start with a cold instruction cache (the GEMMs between them evict it),
so code a kernel carries costs time in the model even where it never runs: run 24 measured the
decode attention 2-3 us a layer slower with one unused path compiled in
(docs/perf/cuda-engine.md). This prints the size of every kernel's .text section, so a change
that adds or removes code shows its size before any device time is spent.

    scripts/cuda/kernel_code_size.py libs/kernels/src/attention_decode.cu [--match TEXT]

It takes the source's compile command from the `cuda` preset's build (build/cuda, configured
with `cmake --preset cuda`), compiles one cubin for sm_90a into a temporary folder, and reads
its ELF section headers. Sizes are bytes of SASS (16 bytes an instruction).
"""
import argparse
import os
import re
import shlex
import struct
import subprocess
import sys
import tempfile


def compile_command(build_dir, source):
    """The ninja compile command of `source` in build_dir, as an argument list."""
    out = subprocess.run(["ninja", "-C", build_dir, "-t", "commands"], capture_output=True,
                         text=True, check=True).stdout
    absolute = os.path.abspath(source)
    for line in out.splitlines():
        if absolute in line and " -c " in line and "nvcc" in line:
            return shlex.split(line)
    sys.exit(f"no nvcc compile command for {absolute} in {build_dir} (configure the cuda preset)")


def cubin_command(args, cubin):
    """The compile command turned into one sm_90a cubin at `cubin` (no dependency file)."""
    result = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT"):
            skip = True
            continue
        if a in ("-MD", "-c") or a.startswith("--generate-code") or a == "/usr/bin/ccache":
            continue
        result.append(a)
    return result + ["-arch=sm_90a", "-cubin", "-o", cubin]


def text_sections(path):
    """(name, size) of each .text.* section of an ELF64 file."""
    data = open(path, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        sys.exit(f"{path} is not a 64-bit ELF file")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = headers[shstrndx][4]

    def name(offset):
        start = strtab + offset
        return data[start:data.index(b"\0", start)].decode()

    return [(name(h[0])[len(".text."):], h[5]) for h in headers if name(h[0]).startswith(".text.")]


def demangle(names):
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True,
                         check=True).stdout
    return out.splitlines()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", help="a .cu file of the build")
    ap.add_argument("--build-dir", default="build/cuda")
    ap.add_argument("--match", default="", help="only kernels whose demangled name holds TEXT")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cubin = os.path.join(tmp, "kernels.cubin")
        cmd = cubin_command(compile_command(opts.build_dir, opts.source), cubin)
        built = subprocess.run(cmd, cwd=opts.build_dir, capture_output=True, text=True)
        if built.returncode != 0:
            sys.exit(built.stderr)
        sections = text_sections(cubin)
    names = demangle([n for n, _ in sections])
    rows = sorted(((size, re.sub(r"\(anonymous namespace\)::|helexa::kernels::", "", full))
                   for (_, size), full in zip(sections, names)), reverse=True)
    for size, full in rows:
        if opts.match in full:
            print(f"{size:8d}  {full}")


if __name__ == "__main__":
    main()
