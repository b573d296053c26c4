#!/usr/bin/env bash
# CI for the C ABI (bnf-capi): build libbnf, check the header is current, build and run the C
# example (static and shared linking) and the Python example (ctypes + numpy).
# Run from anywhere; exits non-zero on the first failure. Needs cargo, gcc, python3 (+ pip).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
LIB="$TARGET/release"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

echo "== capi: cargo build --release -p bnf-capi"
cargo build --release -p bnf-capi

echo "== capi: header is what cbindgen generates (capi/tests/header.rs)"
cargo test -p bnf-capi --test header

echo "== capi: C example, static libbnf.a"
gcc -std=c11 -Wall -Wextra -Werror -pedantic -I capi/include capi/examples/c/demo.c \
    "$LIB/libbnf.a" -lpthread -ldl -lm -o "$WORK/demo_static"
"$WORK/demo_static"

echo "== capi: C example, shared libbnf.so"
gcc -std=c11 -Wall -Wextra -Werror -pedantic -I capi/include capi/examples/c/demo.c \
    -L "$LIB" -Wl,-rpath,"$LIB" -lbnf -lm -o "$WORK/demo_shared"
"$WORK/demo_shared"

echo "== capi: Python example (ctypes + numpy)"
if ! python3 -c "import numpy" 2>/dev/null; then
    python3 -m pip install --quiet numpy
fi
python3 capi/examples/python/bnf_demo.py "$LIB/libbnf.so"

echo "== capi: all checks passed"
