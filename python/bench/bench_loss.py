"""Forward+backward time and extra memory of bnf.bnf_loss against F.cross_entropy and a
pure-torch BNF (the literal eqs. 4/6/8 of python/tests/reference.py), on CPU, in one process
with interleaved rounds (so every ratio is taken under the same machine state).

    python python/bench/bench_loss.py                    # the issue's shapes, f32 and bf16, 1 and 2 threads
    python python/bench/bench_loss.py --shape 8,512,32000 --dtype bf16 --threads 2 --rounds 5

Time: the median over rounds of one forward+backward (loss.backward() into logits.grad), each
round running every method once in turn. Memory: the peak resident memory of one
forward+backward above what the inputs already hold (Linux's VmHWM, reset through
/proc/self/clear_refs before each method; torch's large CPU buffers are mmap'ed and returned on
free, so each peak is the method's own). Prints one Markdown table row per configuration.
"""

import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

import bnf

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
import reference as R  # noqa: E402

DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16}


def batch(B, T, V, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(B, T, V, generator=g) * 2).to(dtype).requires_grad_()
    labels = torch.randint(0, V, (B, T), generator=g)
    labels[:, : T // 4] = -100  # a prompt
    ref = -torch.rand(B, T, generator=g) * 8
    pref = torch.tensor([1.0 if b % 2 == 0 else -1.0 for b in range(B)])
    return logits, labels, ref, pref


def methods(labels, ref, pref):
    V = None

    def ce(x):
        return F.cross_entropy(x[:, :-1].reshape(-1, x.shape[-1]), labels[:, 1:].reshape(-1))

    def ours(x):
        return bnf.bnf_loss(x, labels, ref, preference=pref)

    def torch_bnf(x):
        return R.bnf(x, labels, ref, pref)

    del V
    return {"bnf": ours, "F.cross_entropy": ce, "pure-torch BNF": torch_bnf}


def step(fn, x):
    x.grad = None
    fn(x).backward()


def rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(field)


def peak_extra_mib(fn, x):
    """Peak resident memory of one forward+backward above the current resident memory."""
    x.grad = None
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = rss_kib("VmRSS:")
    step(fn, x)
    return (rss_kib("VmHWM:") - base) / 1024


def run(shape, dtype_name, threads, rounds):
    torch.set_num_threads(threads)
    B, T, V = shape
    x, labels, ref, pref = batch(B, T, V, DTYPES[dtype_name])
    ms = methods(labels, ref, pref)
    for fn in ms.values():  # warm-up (first-touch, allocator)
        step(fn, x)
    times = {k: [] for k in ms}
    for _ in range(rounds):
        for name, fn in ms.items():
            t = time.perf_counter()
            step(fn, x)
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    mem = {k: peak_extra_mib(fn, x) for k, fn in ms.items()}
    elems = B * T * V
    return med, mem, elems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", action="append", help="B,T,V (repeatable)")
    ap.add_argument("--dtype", action="append", choices=list(DTYPES))
    ap.add_argument("--threads", action="append", type=int)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    shapes = [tuple(int(v) for v in s.split(",")) for s in (a.shape or ["8,512,32000", "4,256,128256"])]
    print(f"torch {torch.__version__}, bnf {bnf.__version__}, {os.cpu_count()} CPUs, {a.rounds} rounds")
    print("| shape (B,T,V) | dtype | threads | bnf ms | F.cross_entropy ms | pure-torch BNF ms "
          "| bnf speed vs CE | bnf Melem/s | extra MiB bnf / CE / pure-torch |")
    print("|---|---|---|---|---|---|---|---|---|")
    for shape in shapes:
        for dt in a.dtype or ["f32", "bf16"]:
            for th in a.threads or [1, 2]:
                med, mem, n = run(shape, dt, th, a.rounds)
                b, c, p = med["bnf"], med["F.cross_entropy"], med["pure-torch BNF"]
                print(
                    f"| {shape} | {dt} | {th} | {b * 1e3:.0f} | {c * 1e3:.0f} | {p * 1e3:.0f} | "
                    f"{c / b:.2f}x | {n / b / 1e6:.0f} | {mem['bnf']:.0f} / "
                    f"{mem['F.cross_entropy']:.0f} / {mem['pure-torch BNF']:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
