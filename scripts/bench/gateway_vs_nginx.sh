#!/usr/bin/env bash
# cortex proxy overhead vs a direct upstream and vs nginx (issue 6 "Performance").
# Builds gateway_proxy_bench in a Release tree and runs it once; prints one Markdown table.
# nginx is optional (Debian package `nginx` or `nginx-light`); without it the nginx column is
# left out. Extra arguments go to the benchmark (e.g. --requests 10000 --seconds 5).
# Results are recorded in docs/perf/gateway-proxy.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${HELEXA_BENCH_BUILD:-$root/build/gw2-rel}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHELEXA_BENCHMARKS=ON \
    -DHELEXA_INCLUDE_WIP=ON >/dev/null
ninja -C "$build" gateway_proxy_bench >/dev/null
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$build/libs/gateway/benchmarks/gateway_proxy_bench" "$@"
