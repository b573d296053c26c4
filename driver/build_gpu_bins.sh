#!/usr/bin/env bash
# Build the GPU check on a machine without CUDA or a GPU, as a self-contained folder:
#   driver/build_gpu_bins.sh [OUT_DIR]        (default: target/gpu-bin)
# gives OUT_DIR/{gpu_tests, gpu_bench, run_gpu_check.sh, BUILD_INFO.txt} and OUT_DIR.tar.gz.
# The binaries are release builds of `--features cuda`, linked against a stub libcuda.so whose
# soname is libcuda.so.1 (driver/make_stub.sh), so on the GPU machine they load its real
# driver. There (x86-64 Linux, glibc as BUILD_INFO.txt says, an NVIDIA driver for CUDA 13.0
# or newer; no Rust, no CUDA toolkit): `./run_gpu_check.sh` runs the whole check.
# Needs: cargo, gcc, python3.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${1:-target/gpu-bin}"
STUB="$PWD/target/cuda-stub"
driver/make_stub.sh "$STUB"
export CUDA_LIBRARY_PATH="$STUB"
cargo build --release -q -p bnf-driver --features cuda --bin gpu_bench
test_bin="$(cargo test --release -q -p bnf-driver --features cuda --test gpu --no-run --message-format=json |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "gpu" and m.get("executable"):
        print(m["executable"])')"
[ -x "$test_bin" ] || { echo "build_gpu_bins.sh: no GPU test binary found" >&2; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT"
cp "$test_bin" "$OUT/gpu_tests"
cp target/release/gpu_bench "$OUT/gpu_bench"
cp driver/run_gpu_check.sh "$OUT/run_gpu_check.sh"
glibc="$(objdump -T "$OUT/gpu_tests" "$OUT/gpu_bench" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"
{
    echo "bnf GPU check, built by driver/build_gpu_bins.sh"
    echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "built: $(date -u) on $(uname -m), $(rustc --version)"
    echo "needs: x86-64 Linux with glibc >= ${glibc#GLIBC_}, libcuda.so.1 from an NVIDIA driver for CUDA 13.0 or newer (R580+)"
    echo "PTX: compute_80, $(grep -m1 '^\.version' kernels/ptx/bnf.ptx) (nvcc 13.0.88): GPUs of compute capability 8.0 or higher"
    echo "binaries link: $(objdump -p "$OUT/gpu_tests" | awk '/NEEDED/ {printf "%s ", $2}')"
} > "$OUT/BUILD_INFO.txt"
tar -czf "$OUT.tar.gz" -C "$(dirname "$OUT")" "$(basename "$OUT")"
cat "$OUT/BUILD_INFO.txt"
echo "built $OUT/ and $OUT.tar.gz: copy either to the GPU machine and run ./run_gpu_check.sh there"
