#!/usr/bin/env bash
# CI for the C ABI (bnf-capi), on a machine with no GPU and no CUDA:
#  1. build libbnf (release), check the header is what cbindgen generates (capi/tests/header.rs);
#  2. build and run the C example with the system gcc, linked statically and dynamically;
#  3. run the Python example (ctypes + numpy; numpy is installed with pip when missing), and
#     check the docs' Python/PyTorch snippets against the header (names, arities, structs);
#  4. the GPU entries end to end on the driver's host emulator of the kernels (`--features emu`,
#     needs g++ with C++20, installed with apt-get when missing);
#  5. `cargo check --features cuda` with CUDA_LIBRARY_PATH at an empty folder with lib64/ (no
#     CUDA installed), then libbnf built with `cuda` against a stub libcuda (driver/make_stub.sh):
#     the C example, run without a driver, gets BNF_ERR_CUDA_UNAVAILABLE "no CUDA driver/device".
# Run from anywhere; exits non-zero on the first failure. Needs cargo, gcc, python3 (+ pip).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
LIB="$TARGET/release"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
CFLAGS=(-std=c11 -Wall -Wextra -Werror -pedantic -I capi/include)

echo "== capi: cargo build --release -p bnf-capi"
cargo build --release -p bnf-capi

echo "== capi: header is what cbindgen generates (capi/tests/header.rs)"
cargo test -p bnf-capi --test header

echo "== capi: C example, static libbnf.a"
gcc "${CFLAGS[@]}" capi/examples/c/demo.c "$LIB/libbnf.a" -lpthread -ldl -lm -o "$WORK/demo_static"
"$WORK/demo_static"

echo "== capi: C example, shared libbnf.so"
gcc "${CFLAGS[@]}" capi/examples/c/demo.c -L "$LIB" -Wl,-rpath,"$LIB" -lbnf -lm -o "$WORK/demo_shared"
"$WORK/demo_shared"

echo "== capi: Python example (ctypes + numpy)"
if ! python3 -c "import numpy" 2>/dev/null; then
    python3 -m pip install --quiet --root-user-action=ignore numpy
fi
python3 capi/examples/python/bnf_demo.py "$LIB/libbnf.so"

echo "== capi: the Python snippets of README.md and docs/capi.md agree with bnf.h"
python3 capi/examples/python/check_snippets.py

echo "== capi: GPU entries on the host emulator of the kernels (--features emu)"
if ! command -v g++ > /dev/null; then
    apt-get update -qq && apt-get install -y -qq g++ > /dev/null
fi
cargo test -p bnf-capi --features emu --test cuda

echo "== capi: cargo check --features cuda with no CUDA installed"
mkdir -p "$WORK/nocuda/lib64"
CUDA_LIBRARY_PATH="$WORK/nocuda" cargo check -q -p bnf-capi --features cuda --all-targets

echo "== capi: libbnf with --features cuda and no CUDA driver: the GPU entries say so"
driver/make_stub.sh "$WORK/stub"
# Debug profile, so the release libbnf above stays the CUDA-free one.
CUDA_LIBRARY_PATH="$WORK/stub" cargo build -q -p bnf-capi --features cuda
gcc "${CFLAGS[@]}" capi/examples/c/demo.c -L "$TARGET/debug" -Wl,-rpath,"$TARGET/debug" \
    -Wl,-rpath-link,"$WORK/stub/lib64" -lbnf -lm -o "$WORK/demo_cuda"
out="$(LD_LIBRARY_PATH="$WORK/stub/lib64" "$WORK/demo_cuda")"
echo "$out"
grep -q "no GPU here: BNF_ERR_CUDA_UNAVAILABLE (bnf_cuda_open: no CUDA driver/device: no CUDA driver found" <<< "$out"

echo "== capi: all checks passed"
