#!/usr/bin/env bash
# The whole GPU check of bnf in one command, on a machine with an NVIDIA GPU and driver (no
# Rust, no CUDA toolkit needed). driver/build_gpu_bins.sh copies this script beside the
# binaries it builds; run it from that folder:
#   ./run_gpu_check.sh [gpu_bench flags...]      e.g. ./run_gpu_check.sh --iters 50
# It runs the GPU tests (twice, comparing the repeatability digest across the two processes)
# and the benchmark, keeps every output in results-<date>/ beside it, and exits 0 only when
# every test passed on a GPU: 1 on a failure, 2 when no GPU was found (BNF_REQUIRE_GPU=0 lets
# the binaries report "skipped" and exit 0 instead, to try the folder where there is no GPU).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export BNF_REQUIRE_GPU="${BNF_REQUIRE_GPU:-1}"
OUT="results-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"

{
    cat BUILD_INFO.txt
    echo "== run: $(date -u) on $(uname -n)"
    uname -a
    if command -v nvidia-smi > /dev/null; then
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
    else
        echo "nvidia-smi: not installed"
    fi
    echo "libcuda.so.1 resolves to: $(ldd ./gpu_tests | grep libcuda || echo 'nothing')"
} | tee "$OUT/machine.txt"

if ldd ./gpu_tests | grep -q 'libcuda.so.1 => not found'; then
    echo "== GPU check NOT RUN: no libcuda.so.1 on this machine (no NVIDIA driver installed)"
    exit 2
fi

status=0
step() { # step NAME COMMAND...: run, tee the output to $OUT/NAME.txt, remember the worst exit code
    local name="$1"
    shift
    echo "== $name: $*"
    "$@" 2>&1 | tee "$OUT/$name.txt"
    local rc="${PIPESTATUS[0]}"
    echo "== $name: exit $rc"
    if [ "$rc" -ne 0 ] && { [ "$status" -eq 0 ] || [ "$rc" -eq 2 ]; }; then status="$rc"; fi
    return "$rc"
}

step gpu_tests ./gpu_tests
if step gpu_tests_rerun ./gpu_tests repeatable_bit_for_bit; then
    first="$(grep '^    digest' "$OUT/gpu_tests.txt")"
    second="$(grep '^    digest' "$OUT/gpu_tests_rerun.txt")"
    if [ -n "$first" ] && [ "$first" = "$second" ]; then
        echo "== digest identical across two processes: $first"
    elif [ -n "$first" ]; then
        echo "== FAILED: digest differs across processes: '$first' vs '$second'"
        status=1
    fi
fi
step gpu_bench ./gpu_bench "$@"

if [ "$status" -eq 0 ] && grep -q '^GPU test result: SKIPPED' "$OUT/gpu_tests.txt"; then
    echo "== GPU check NOT RUN: the tests skipped themselves (no GPU); outputs in $PWD/$OUT"
elif [ "$status" -eq 0 ]; then
    echo "== GPU check passed; outputs in $PWD/$OUT"
elif [ "$status" -eq 2 ]; then
    echo "== GPU check NOT RUN: no GPU found; outputs in $PWD/$OUT"
else
    echo "== GPU check FAILED; outputs in $PWD/$OUT"
fi
exit "$status"
