#!/usr/bin/env bash
# Build the GPU test binary and the GPU benchmark on a machine without CUDA, linked against a
# stub libcuda.so.1 (driver/make_stub.sh), and copy them into OUT_DIR (default: target/gpu-bin/) as
#   OUT_DIR/gpu_tests   and   OUT_DIR/gpu_bench
# Copy OUT_DIR to the GPU machine (x86-64 Linux, glibc at least this machine's, an NVIDIA
# driver for CUDA 13.0 or newer) and run them there; no Rust or CUDA toolkit needed there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${1:-target/gpu-bin}"
STUB="$PWD/target/cuda-stub"
driver/make_stub.sh "$STUB"
export CUDA_LIBRARY_PATH="$STUB"
cargo build --release -q -p bnf-driver --features cuda --bin gpu_bench
test_bin="$(cargo test --release -q -p bnf-driver --features cuda --test gpu --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "gpu" and m.get("executable"):
        print(m["executable"])')"
mkdir -p "$OUT"
cp "$test_bin" "$OUT/gpu_tests"
cp target/release/gpu_bench "$OUT/gpu_bench"
echo "built $OUT/gpu_tests and $OUT/gpu_bench (they need libcuda.so.1 at run time)"
