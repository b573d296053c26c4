#!/usr/bin/env bash
# CI for the trainer (bnf-trainer): format, lints, tests, and a smoke run of every CLI command
# on tiny data (seconds). Needs only cargo; no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt -p bnf-trainer --check
cargo clippy -p bnf-trainer --all-targets -- -D warnings
cargo test -p bnf-trainer
RUSTDOCFLAGS="-D warnings" cargo doc -p bnf-trainer --no-deps

cargo build --release -p bnf-trainer
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
$bnf eval --model "$work/bnf.safetensors" --data "$work/data.jsonl" --max-new 4 | tee "$work/eval.txt"
grep -q "preference accuracy (margin vs reference)" "$work/eval.txt"
$bnf generate --model "$work/bnf.safetensors" --prompt "1+1=" --max-new 4

# Unavailable objectives and bad data lines fail with a clear message, before training.
if $bnf align --objective dpo --init "$work/sft.safetensors" --data "$work/data.jsonl" --out "$work/x.safetensors" 2>"$work/err.txt"; then
    echo "expected --objective dpo to fail"; exit 1
fi
grep -q "not available yet" "$work/err.txt"
if $bnf sft --data trainer/tests/data/bad.jsonl --out "$work/x.safetensors" --steps 1 "${shape[@]}" 2>"$work/err.txt"; then
    echo "expected bad data to fail"; exit 1
fi
grep -q "line 2" "$work/err.txt"
test ! -e "$work/x.safetensors"

# The demo end to end, shortened.
$bnf demo --dir "$work/demo" --sft-steps 20 --align-steps 10
echo "trainer CI: ok"
