#!/usr/bin/env bash
# Build the trainer's GPU check on a machine without CUDA, linked against a stub libcuda.so.1
# (driver/make_stub.sh), into OUT_DIR (default: target/trainer-gpu/):
#   OUT_DIR/trainer_gpu_tests   the GPU path of the loss against the CPU path (tests/gpu_loss.rs)
#   OUT_DIR/bnf                 the command line with `--device gpu` available
# Copy OUT_DIR to the GPU machine (x86-64 Linux, glibc at least this machine's, an NVIDIA
# driver for CUDA 13.0 or newer, compute capability 8.0 or higher) and run there:
#   BNF_REQUIRE_GPU=1 ./trainer_gpu_tests    # exit 0 passed, 1 a failure, 2 no GPU
#   ./bnf demo --device gpu                  # the demo with its loss rows on the GPU
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${1:-target/trainer-gpu}"
STUB="$PWD/target/cuda-stub"
driver/make_stub.sh "$STUB"
export CUDA_LIBRARY_PATH="$STUB"
cargo build --release -q -p bnf-cli --features cuda --bin bnf
test_bin="$(cargo test --release -q -p bnf-trainer --features cuda --test gpu_loss --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "gpu_loss" and m.get("executable"):
        print(m["executable"])')"
mkdir -p "$OUT"
cp "$test_bin" "$OUT/trainer_gpu_tests"
cp target/release/bnf "$OUT/bnf"
# target/release/bnf is now the CUDA build; put the plain one back for local use.
unset CUDA_LIBRARY_PATH
cargo build --release -q -p bnf-cli --bin bnf
echo "built $OUT/trainer_gpu_tests and $OUT/bnf (they need libcuda.so.1 at run time)"
