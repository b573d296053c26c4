"""The fused LM head + loss against the same head and loss unfused (``hidden @ weight.T``, then
``bnf.bnf_loss``): time and extra memory of one forward+backward on CPU, in one process with
interleaved rounds (see bench_loss.py for how memory is read).

    python python/bench/bench_fused.py [--shape 4,512,1024,32000] [--dtype f32] [--rounds 3]
"""

import argparse
import os
import statistics
import sys
import time

import torch

import bnf

sys.path.insert(0, os.path.dirname(__file__))
from bench_loss import rss_kib  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="4,512,1024,32000", help="B,T,H,V")
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--chunk-size", type=int, default=None)
    a = ap.parse_args()
    B, T, H, V = (int(v) for v in a.shape.split(","))
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[a.dtype]
    g = torch.Generator().manual_seed(0)
    h = (torch.randn(B, T, H, generator=g) / 4).to(dtype).requires_grad_()
    w = (torch.randn(V, H, generator=g) / 8).to(dtype).requires_grad_()
    labels = torch.randint(0, V, (B, T), generator=g)
    labels[:, : T // 4] = -100
    ref = -torch.rand(B, T, generator=g) * 8

    def fused():
        return bnf.fused_linear_loss(h, w, labels, ref, chunk_size=a.chunk_size)

    def unfused():
        return bnf.bnf_loss(h @ w.T, labels, ref)

    methods = {"fused": fused, "unfused": unfused}

    def step(fn):
        h.grad = w.grad = None
        fn().backward()

    for fn in methods.values():
        step(fn)
    times = {k: [] for k in methods}
    for _ in range(a.rounds):
        for k, fn in methods.items():
            t = time.perf_counter()
            step(fn)
            times[k].append(time.perf_counter() - t)
    mem = {}
    for k, fn in methods.items():
        h.grad = w.grad = None
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = rss_kib("VmRSS:")
        step(fn)
        mem[k] = (rss_kib("VmHWM:") - base) / 1024
    chunk = bnf.fused.chunk_rows(B * T, V, H, a.chunk_size)
    logits_mib = B * T * V * h.element_size() / 2**20
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, B,T,H,V = {B},{T},{H},{V} {a.dtype}, "
          f"chunk {chunk} rows, logits would be {logits_mib:.0f} MiB")
    print("| method | ms | extra MiB (gradients included) |")
    print("|---|---|---|")
    for k in methods:
        print(f"| {k} | {statistics.median(times[k]) * 1e3:.0f} | {mem[k]:.0f} |")


if __name__ == "__main__":
    main()
