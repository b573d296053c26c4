#!/usr/bin/env bash
# CI for the trainer (bnf-trainer, and its command line bnf-cli in trainer/cli/): format, lints,
# tests, a smoke run of every CLI command and every objective on tiny data, and the GPU path on
# the host emulator. Needs cargo, g++ and
# python3; no GPU, no CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt -p bnf-trainer -p bnf-cli --check
cargo clippy -p bnf-trainer -p bnf-cli --all-targets -- -D warnings
cargo test -p bnf-trainer -p bnf-cli
RUSTDOCFLAGS="-D warnings" cargo doc -p bnf-trainer -p bnf-cli --no-deps

cargo build --release -p bnf-cli
bnf=target/release/bnf
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp trainer/tests/data/tiny.jsonl "$work/data.jsonl"
shape=(--channels 16 --layers 1 --heads 2 --block-size 32)

$bnf sft --data "$work/data.jsonl" --out "$work/sft.safetensors" --steps 6 --batch 2 "${shape[@]}"
test -s "$work/sft.safetensors" && test -s "$work/sft.safetensors.json"
$bnf precompute-ref --model "$work/sft.safetensors" --data "$work/data.jsonl"
test -s "$work/data.jsonl.ref.json"
align=(align --objective bnf --init "$work/sft.safetensors" --data "$work/data.jsonl"
    --steps 4 --batch 2 --accum 2 --pairing-ratio 0.5)
$bnf "${align[@]}" --out "$work/whole.safetensors"
# Interrupted after step 2, resumed: the final checkpoint is byte for byte the same.
$bnf "${align[@]}" --out "$work/bnf.safetensors" --until 2
$bnf align --resume "$work/bnf.safetensors" --data "$work/data.jsonl" --out "$work/bnf.safetensors"
cmp "$work/whole.safetensors" "$work/bnf.safetensors"
# The fused head (chunked LM head and loss) trains too; bit for bit with itself on resume is in
# tests/fused.rs, against the full head within tolerance.
$bnf "${align[@]}" --fused-head --out "$work/fused.safetensors"
test -s "$work/fused.safetensors"
$bnf eval --model "$work/bnf.safetensors" --data "$work/data.jsonl" --max-new 4 | tee "$work/eval.txt"
grep -q "preference accuracy (margin vs reference)" "$work/eval.txt"
$bnf generate --model "$work/bnf.safetensors" --prompt "1+1=" --max-new 4

# Every objective of `bnf objectives` aligns on tiny data: pairwise ones on the pairs only,
# the others on pairs and lone responses; the checkpoint records the objective's parameters.
head -3 trainer/tests/data/tiny.jsonl > "$work/pairs.jsonl"
$bnf precompute-ref --model "$work/sft.safetensors" --data "$work/pairs.jsonl"
$bnf objectives | tee "$work/objectives.txt"
test "$(wc -l < "$work/objectives.txt")" -ge 11
while read -r name _ needs _; do
    data="$work/data.jsonl"
    case "$needs" in pairs*) data="$work/pairs.jsonl" ;; esac
    $bnf align --objective "$name" --init "$work/sft.safetensors" --data "$data" \
        --out "$work/$name.safetensors" --steps 2 --batch 2
    grep -q "\"name\": \"$name\"" "$work/$name.safetensors.json"
done < "$work/objectives.txt"
$bnf align --objective dpo --beta 0.3 --init "$work/sft.safetensors" --data "$work/pairs.jsonl" \
    --out "$work/dpo.safetensors" --steps 2 --batch 2
grep -q '"beta": 0.3' "$work/dpo.safetensors.json"

# What an objective cannot use, and bad data lines, fail with a clear message before training.
fails() { # fails WORDS... -- COMMAND...: the command fails, writes no x.safetensors, says WORDS
    local words=()
    while [ "$1" != "--" ]; do words+=("$1"); shift; done
    shift
    if "$@" 2>"$work/err.txt"; then echo "expected to fail: $*"; exit 1; fi
    for w in "${words[@]}"; do grep -qF -- "$w" "$work/err.txt" || { cat "$work/err.txt"; exit 1; }; done
    test ! -e "$work/x.safetensors"
}
x=(--init "$work/sft.safetensors" --out "$work/x.safetensors")
fails pairwise "line 4" -- $bnf align --objective dpo --data "$work/data.jsonl" "${x[@]}"
fails pairwise "pairing ratio 0.5" -- $bnf align --objective simpo --pairing-ratio 0.5 --data "$work/pairs.jsonl" "${x[@]}"
fails "does not use --gamma" -- $bnf align --objective dpo --gamma 1 --data "$work/pairs.jsonl" "${x[@]}"
fails "--init" "--from-scratch" -- $bnf align --objective bnf --data "$work/data.jsonl" --out "$work/x.safetensors"
fails "unknown objective" -- $bnf align --objective zzz --data "$work/pairs.jsonl" "${x[@]}"
fails "align --objective kto" -- $bnf sft --objective kto --data "$work/data.jsonl" --out "$work/x.safetensors"
cp "$work/pairs.jsonl" "$work/noref.jsonl"
fails precompute-ref -- $bnf align --objective kto --data "$work/noref.jsonl" "${x[@]}"
fails "fused head" "--device" -- $bnf align --fused-head --device gpu --objective dpo --data "$work/pairs.jsonl" "${x[@]}"
fails "--features cuda" -- $bnf align --device gpu --objective dpo --data "$work/pairs.jsonl" "${x[@]}"
fails "line 2" -- $bnf sft --data trainer/tests/data/bad.jsonl --out "$work/x.safetensors" --steps 1 "${shape[@]}"
fails "--steps is 0" -- $bnf sft --data "$work/data.jsonl" --out "$work/x.safetensors" --steps 0 "${shape[@]}"
printf '{"prompt": "1+1=", "chosen": "2", "rejected": "3"}\n{"prompt": "\xff", "chosen": "2", "rejected": "3"}\n' \
    > "$work/latin1.jsonl"
fails "line 2: not valid UTF-8" -- $bnf sft --data "$work/latin1.jsonl" --out "$work/x.safetensors" --steps 1 "${shape[@]}"
fails "block size 32" -- $bnf generate --model "$work/sft.safetensors" --prompt "$(printf '%032d' 0)"
# A reference file beside data that changed since (same lengths) is refused, not used.
sed 's/"rejected": "3"/"rejected": "9"/' "$work/data.jsonl" > "$work/stale.jsonl"
cp "$work/data.jsonl.ref.json" "$work/stale.jsonl.ref.json"
fails "line 1" precompute-ref -- $bnf eval --model "$work/sft.safetensors" --data "$work/stale.jsonl"

# The GPU path of the loss (--device gpu) against the CPU path, on the host emulator of the
# CUDA kernels (needs g++ with C++20); then the `cuda` build type-checks with no CUDA installed
# (cust's build script only needs CUDA_LIBRARY_PATH/lib64 to exist) and, linked against a
# stub libcuda, reports itself skipped rather than passed.
if ! command -v g++ > /dev/null; then
    apt-get update -qq && apt-get install -y -qq g++ > /dev/null
fi
cargo test -p bnf-trainer --features emu --test gpu_loss | tee "$work/gpu.txt"
grep -q "^trainer GPU test result: ok" "$work/gpu.txt"
mkdir -p "$work/nocuda/lib64"
CUDA_LIBRARY_PATH="$work/nocuda" cargo check -q -p bnf-trainer -p bnf-cli --features cuda --all-targets
driver/make_stub.sh "$work/stub"
test_bin="$(CUDA_LIBRARY_PATH="$work/stub" cargo test -q -p bnf-trainer --features cuda --test gpu_loss --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "gpu_loss" and m.get("executable"):
        print(m["executable"])')"
LD_LIBRARY_PATH="$work/stub/lib64" "$test_bin" | tee "$work/gpu.txt"
grep -q "^trainer GPU test result: SKIPPED" "$work/gpu.txt"

# The demo end to end, shortened.
$bnf demo --dir "$work/demo" --sft-steps 20 --align-steps 10
# The experiment's quick smoke run through the command line (tests/experiment.rs checks the
# report and plots in depth; here: the command writes them).
$bnf experiment --quick --out-dir "$work/experiment"
test -s "$work/experiment/results.md"
for p in figure1 curves_math curves_style shifts_math shifts_style bins_math bins_style; do
    test -s "$work/experiment/results/$p.png"
done
echo "trainer CI: ok"
