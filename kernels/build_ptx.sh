#!/usr/bin/env bash
# Regenerate kernels/ptx/*.ptx from kernels/cuda/*.cu with the pinned nvcc (toolchain.sh).
# Usage: kernels/build_ptx.sh [OUT_DIR]   (default: kernels/ptx)
# The PTX targets compute_80 (PTX ISA 9.0): the driver JIT-compiles it for sm_80 and newer
# (A100, H100/H200, ...) on drivers for CUDA 13.0 or newer (R580+).
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/toolchain.sh"
OUT="${1:-$KERNELS_DIR/ptx}"
mkdir -p "$OUT"
for src in "$KERNELS_DIR"/cuda/*.cu; do
    name="$(basename "$src" .cu)"
    # Relative paths and a fixed working directory keep the output free of local paths.
    (cd "$KERNELS_DIR/cuda" && "$NVCC" -I"$CUDA_INCLUDE" -arch=compute_80 -ptx -o "$OUT/$name.ptx" "$name.cu")
    echo "$OUT/$name.ptx: $(grep -m1 '^\.version' "$OUT/$name.ptx")"
done
