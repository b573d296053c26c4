#!/usr/bin/env bash
# CI for the GPU crates on a machine with no GPU and no CUDA (needs python3 + pip, gcc, cargo):
#  1. install the pinned nvcc/ptxas from PyPI (kernels/toolchain.sh);
#  2. the checked-in PTX is byte-identical to what kernels/build_ptx.sh generates;
#  3. ptxas assembles every PTX file for sm_80 and sm_90;
#  4. `cargo check -p bnf-driver --features cuda --all-targets` with CUDA_LIBRARY_PATH at an
#     empty folder with a lib64/ subfolder (all cust's build script needs);
#  5. the GPU test binary and the benchmark build and link against a stub libcuda.so.1, and,
#     run here, report "skipped" (not passed) and exit 0;
#  6. the same GPU test suite on the host emulator of the CUDA sources (`--features emu`, g++):
#     the kernels' logic against bnf-core, bit-for-bit repeatability, in place = out of place,
#     and a smoke run of gpu_bench there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source kernels/toolchain.sh
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "== PTX is what build_ptx.sh generates"
kernels/build_ptx.sh "$TMP/ptx" > /dev/null
diff <(cd kernels/ptx && ls) <(cd "$TMP/ptx" && ls)
for f in kernels/ptx/*.ptx; do
    cmp "$f" "$TMP/ptx/$(basename "$f")"
    echo "$f: identical ($(grep -m1 '^\.version' "$f"))"
done

echo "== ptxas assembles every PTX file for sm_80 and sm_90"
for f in kernels/ptx/*.ptx; do
    for arch in sm_80 sm_90; do
        "$PTXAS" -arch="$arch" -o "$TMP/out.cubin" "$f"
        echo "$f: $arch ok"
    done
done

echo "== cargo check -p bnf-driver --features cuda (no CUDA installed)"
mkdir -p "$TMP/nocuda/lib64"
CUDA_LIBRARY_PATH="$TMP/nocuda" cargo check -q -p bnf-driver --features cuda --all-targets

echo "== GPU test and bench binaries link against a stub libcuda and skip without a GPU"
driver/make_stub.sh "$TMP/stub"
export CUDA_LIBRARY_PATH="$TMP/stub"
cargo build -q -p bnf-driver --features cuda --bin gpu_bench
test_bin="$(cargo test -q -p bnf-driver --features cuda --test gpu --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "gpu" and m.get("executable"):
        print(m["executable"])')"
out="$(LD_LIBRARY_PATH="$TMP/stub/lib64" "$test_bin")"
echo "$out"
grep -q "^GPU test result: SKIPPED" <<< "$out"
bench="$(LD_LIBRARY_PATH="$TMP/stub/lib64" target/debug/gpu_bench --iters 1)"
echo "$bench"
grep -q "^skipped: no GPU" <<< "$bench"
unset CUDA_LIBRARY_PATH

echo "== GPU test suite on the host emulator of the kernels"
if ! command -v g++ > /dev/null; then
    apt-get update -qq && apt-get install -y -qq g++ > /dev/null
fi
cargo test -q -p bnf-driver --features emu --test emu
echo "== gpu_bench smoke run on the host emulator (times meaningless)"
cargo run -q -p bnf-driver --features emu --bin gpu_bench -- --rows 8 --vocab 1000 --iters 1 --dtype bf16
echo "kernels/ci.sh: all GPU-less checks passed"
