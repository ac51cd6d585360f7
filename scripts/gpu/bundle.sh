#!/usr/bin/env bash
# Packs release binaries for the GPU host into .device/bundle/ (ignored; carry `.device`):
# each named binary plus every non-system shared library it links (found with ldd), so the
# bundle runs on the host's Ubuntu without our Debian packages. Run scripts there with
# LD_LIBRARY_PATH=.device/bundle/lib.
#   scripts/gpu/bundle.sh build/release/libs/text/tokenizer_bench ...
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=.device/bundle
rm -rf "$dest"
mkdir -p "$dest/bin" "$dest/lib"
for bin in "$@"; do
    cp "$bin" "$dest/bin/"
    strip --strip-debug "$dest/bin/$(basename "$bin")"
    # glibc, libstdc++/libgcc, the CUDA driver and the CUDA 13 toolkit libraries (cudart, cuBLAS,
    # NCCL: hundreds of MB, same version there) come from the host; everything else travels.
    ldd "$bin" | awk '/=> \//{print $3}' |
        grep -Ev '/(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcublasLt|libnccl|ld-linux[^/]*)\.so' |
        while read -r lib; do cp -L "$lib" "$dest/lib/"; done || true  # none to copy is fine
done
du -sh "$dest"
