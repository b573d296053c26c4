#!/usr/bin/env bash
# CI for the GPU crates on a machine with no GPU and no CUDA. Needs cargo, python3 with pip
# (for the CUDA compiler wheels) and gcc/g++ with C++20 (installed with apt-get when missing).
#  1. install the pinned nvcc/ptxas from PyPI (kernels/toolchain.sh);
#  2. the checked-in PTX is byte-identical to what kernels/build_ptx.sh generates;
#  3. ptxas assembles every PTX file for sm_80 and sm_90;
#  4. `cargo check -p bnf-driver --features cuda --all-targets` with CUDA_LIBRARY_PATH at an
#     empty folder with a lib64/ subfolder (all cust's build script needs), and clippy with the
#     `cuda` and `emu` features (the workspace's clippy sees neither);
#  5. driver/build_gpu_bins.sh builds the GPU check folder (test and bench binaries linked
#     against a stub libcuda.so.1, run script); run here with the stub, every test and the
#     bench report "skipped" (not passed) and the run script says the check was not run; with
#     the stub's cuInit saying "no device", they report "no CUDA device", and with it saying
#     803 (driver mismatch) "no CUDA driver found";
#  6. the same GPU test suite on the host emulator of the CUDA sources (`--features emu`):
#     the kernels' logic against bnf-core, bit-for-bit repeatability, in place = out of place,
#     error statuses, the driver's unit tests, and a smoke run of gpu_bench there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
START=$SECONDS
section() { echo "== [$((SECONDS - START))s] $*"; }

section "tools"
if ! python3 -m pip --version > /dev/null 2>&1; then
    echo "kernels/ci.sh: python3 -m pip is needed to install the CUDA compiler wheels" >&2
    exit 1
fi
if ! command -v gcc > /dev/null || ! command -v g++ > /dev/null; then
    echo "installing gcc and g++ with apt-get"
    sudo_="$( [ "$(id -u)" -eq 0 ] || echo sudo)"
    $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq gcc g++ > /dev/null
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo '#include <barrier>
int main() { std::barrier<> b(1); b.arrive_and_wait(); }' > "$TMP/barrier.cpp"
if ! g++ -std=c++20 -pthread -o "$TMP/barrier" "$TMP/barrier.cpp"; then
    echo "kernels/ci.sh: the host emulator needs g++ with C++20 <barrier> (GCC 11 or newer)" >&2
    exit 1
fi
echo "$(g++ --version | head -1); $(python3 -m pip --version | cut -d' ' -f1-2); $(cargo --version)"

section "pinned CUDA compiler from PyPI (kernels/toolchain.sh)"
source kernels/toolchain.sh
"$NVCC" --version | tail -2

section "PTX is what build_ptx.sh generates"
kernels/build_ptx.sh "$TMP/ptx" > /dev/null
diff <(cd kernels/ptx && ls) <(cd "$TMP/ptx" && ls)
for f in kernels/ptx/*.ptx; do
    cmp "$f" "$TMP/ptx/$(basename "$f")"
    echo "$f: identical ($(grep -m1 '^\.version' "$f"))"
done

section "ptxas assembles every PTX file for sm_80 and sm_90"
for f in kernels/ptx/*.ptx; do
    for arch in sm_80 sm_90; do
        "$PTXAS" -arch="$arch" -o "$TMP/out.cubin" "$f"
        echo "$f: $arch ok"
    done
done

section "cargo check -p bnf-driver --features cuda (no CUDA installed); clippy with cuda and emu"
mkdir -p "$TMP/nocuda/lib64"
CUDA_LIBRARY_PATH="$TMP/nocuda" cargo check -q -p bnf-driver --features cuda --all-targets
CUDA_LIBRARY_PATH="$TMP/nocuda" cargo clippy -q -p bnf-driver --features cuda --all-targets -- -D warnings
cargo clippy -q -p bnf-driver --features emu --all-targets -- -D warnings
echo "ok"

section "driver/build_gpu_bins.sh: GPU check folder linked against a stub libcuda.so.1"
driver/build_gpu_bins.sh "$TMP/gpu-bin" | tail -1
section "the folder run here, with the stub as libcuda.so.1: skipped, not passed"
set +e
out="$(LD_LIBRARY_PATH="$PWD/target/cuda-stub/lib64" "$TMP/gpu-bin/run_gpu_check.sh" --iters 1)"
rc=$?
set -e
grep -v '^    \|^test .* skipped: no GPU$' <<< "$out"
echo "run_gpu_check.sh exit $rc (2: no GPU)"
[ "$rc" -eq 2 ]
[ "$(grep -c '^test .* \.\.\. skipped: no GPU$' <<< "$out")" -ge 13 ]
grep -q '^GPU test result: SKIPPED (not run, not passed): no GPU: no CUDA driver found' <<< "$out"
grep -q '^skipped: no GPU (no CUDA driver found' <<< "$out"
if grep -q '\.\.\. ok$\|passed; 0 failed; 0 skipped' <<< "$out"; then
    echo "kernels/ci.sh: a GPU test claims to have passed without a GPU" >&2
    exit 1
fi
section "the same binaries when the driver finds no device (stub cuInit -> CUDA_ERROR_NO_DEVICE)"
out="$(BNF_STUB_CUINIT=100 LD_LIBRARY_PATH="$PWD/target/cuda-stub/lib64" "$TMP/gpu-bin/gpu_tests" | tail -2)"
echo "$out"
grep -q '^GPU test result: SKIPPED (not run, not passed): no GPU: no CUDA device' <<< "$out"
out="$(BNF_STUB_CUINIT=100 LD_LIBRARY_PATH="$PWD/target/cuda-stub/lib64" "$TMP/gpu-bin/gpu_bench")"
echo "$out"
grep -q '^skipped: no GPU (no CUDA device' <<< "$out"
section "... and when cuInit says the driver is unusable (803 system driver mismatch): no driver"
out="$(BNF_STUB_CUINIT=803 LD_LIBRARY_PATH="$PWD/target/cuda-stub/lib64" "$TMP/gpu-bin/gpu_bench")"
echo "$out"
grep -q '^skipped: no GPU (no CUDA driver found (cuInit: 803 ' <<< "$out"

section "GPU test suite on the host emulator of the kernels"
cargo test -q -p bnf-driver --features emu --test emu
section "the driver's unit tests on the emulator (current-context switching)"
cargo test -q -p bnf-driver --features emu --lib
section "gpu_bench smoke run on the host emulator (times meaningless)"
cargo run -q -p bnf-driver --features emu --bin gpu_bench -- --rows 8 --vocab 1000 --iters 1 --dtype bf16
section "kernels/ci.sh: all GPU-less checks passed"
