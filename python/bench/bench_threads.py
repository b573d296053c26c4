"""Two threads against one inside a torch process: bnf.bnf_loss forward+backward on a
64 x 32000 batch, each call right after a torch op (so torch's OpenMP workers are spinning, as
they are in training), with the library's work on torch's OpenMP team (the default) and on
bnf-core's own threads. Interleaved rounds in one process; prints Melem/s and the ratios.

    python python/bench/bench_threads.py [--rows 64 --vocab 32000 --dtype f32 --rounds 7]
"""

import argparse
import statistics
import time

import torch

import bnf


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=40, help="timed calls per round and setting")
    a = ap.parse_args()
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[a.dtype]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, a.rows + 1, a.vocab, generator=g).to(dtype).requires_grad_()
    labels = torch.randint(0, a.vocab, (1, a.rows + 1), generator=g)
    ref = -torch.rand(1, a.rows + 1, generator=g) * 5
    y = torch.randn(512, 512, generator=g)

    def calls(n):
        ts = []
        for _ in range(n):
            (y @ y).sum()  # a torch op just before, as in a training step
            x.grad = None
            t = time.perf_counter()
            bnf.bnf_loss(x, labels, ref).backward()
            ts.append(time.perf_counter() - t)
        return statistics.median(ts)

    settings = [(b, n) for b in ("openmp", "threads") for n in (1, 2)]
    times = {s: [] for s in settings}
    for _ in range(a.rounds):
        for backend, n in settings:
            bnf.set_parallel_backend(backend)
            torch.set_num_threads(n)
            calls(3)  # settle
            times[(backend, n)].append(calls(a.calls))
    bnf.set_parallel_backend("openmp")
    elems = a.rows * a.vocab
    print(f"torch {torch.__version__}, {a.rows} x {a.vocab} {a.dtype}, {a.rounds} rounds x {a.calls} calls")
    print("| backend | 1 thread Melem/s | 2 threads Melem/s | 2 / 1 |")
    print("|---|---|---|---|")
    for backend in ("openmp", "threads"):
        t1 = statistics.median(times[(backend, 1)])
        t2 = statistics.median(times[(backend, 2)])
        print(f"| {backend} | {elems / t1 / 1e6:.0f} | {elems / t2 / 1e6:.0f} | {t1 / t2:.2f}x |")


if __name__ == "__main__":
    main()
