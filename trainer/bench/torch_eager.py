"""The trainer's benchmark model in PyTorch eager, timed against `bnf bench` in one script.

Builds the model of `bnf bench` (trainer/cli/src/bench.rs, BENCH_CONFIG) layer for layer: a
GPT-2 block stack with C = 128, L = 4, 4 heads, the byte vocabulary V = 259, T = 64, learned
position embeddings, pre-LayerNorm (eps 1e-5), GELU (tanh form), the LM head tied to the token
embedding; 834,688 parameters (checked). One step is what `bnf bench` times: forward, NLL over
the completion tokens (a prompt of 8 tokens and a completion of 54, so 62 of 64 positions hold
tokens and the rest is padding), backward, AdamW (betas 0.9/0.95, eps 1e-8, no weight decay),
on a fixed batch of 16 random byte sequences.

Usage: python trainer/bench/torch_eager.py [--bnf target/release/bnf] [--rounds 5] [--steps 20]

Each round runs `--steps` timed torch steps (after 3 warm-up steps in round 1) and then one
`bnf bench --steps N` (a subprocess; its own warm-up; its full-head line is read), so both see
the same load in turn; the median over rounds of each is reported with their ratio. Both use
the same number of threads (`--threads`, default 2: torch.set_num_threads, and `bnf` runs on
all cores, which here are 2).
"""

import argparse
import math
import re
import statistics
import subprocess
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

V, T, C, L, NH, B = 259, 64, 128, 4, 4, 16
PROMPT, COMPLETION = 8, 54
PARAMS = 834_688


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(C, eps=1e-5), nn.LayerNorm(C, eps=1e-5)
        self.qkv, self.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.fc, self.fcproj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (y.view(b, t, NH, C // NH).transpose(1, 2) for y in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, C))
        return x + self.fcproj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.blocks = nn.ModuleList(Block() for _ in range(L))
        self.lnf = nn.LayerNorm(C, eps=1e-5)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.lnf(x) @ self.wte.weight.T


def batch(gen):
    tokens = torch.zeros(B, T, dtype=torch.long)
    labels = torch.full((B, T), -100, dtype=torch.long)
    for i in range(B):
        seq = torch.randint(0, 256, (PROMPT + COMPLETION,), generator=gen)
        tokens[i, : seq.numel()] = seq
        # Position t predicts token t + 1; the completion's tokens are scored.
        labels[i, PROMPT - 1 : PROMPT + COMPLETION - 1] = seq[PROMPT:]
    return tokens, labels


def torch_steps(model, opt, tokens, labels, steps):
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        logits = model(tokens)
        loss = F.cross_entropy(logits.view(-1, V), labels.view(-1), ignore_index=-100)
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / steps


def bnf_step_ms(binary, steps):
    out = subprocess.run([binary, "bench", "--steps", str(steps)], capture_output=True, text=True, check=True).stdout
    return float(re.search(r"full head\s*: \d+ tokens/s \(([\d.]+) ms/step\)", out).group(1)) / 1e3


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bnf", default="target/release/bnf")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    model = GPT()
    n = sum(q.numel() for q in model.parameters())
    assert n == PARAMS, f"the torch model has {n} parameters, bnf bench's has {PARAMS}"
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
    tokens, labels = batch(torch.Generator().manual_seed(1))
    torch_steps(model, opt, tokens, labels, 3)
    times = {"torch eager": [], "bnf": []}
    for r in range(a.rounds):
        times["torch eager"].append(torch_steps(model, opt, tokens, labels, a.steps))
        times["bnf"].append(bnf_step_ms(a.bnf, a.steps))
        print(f"round {r + 1}: torch {1e3 * times['torch eager'][-1]:.1f} ms/step, bnf {1e3 * times['bnf'][-1]:.1f} ms/step", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    tokens_per_step = B * T
    print(f"torch {torch.__version__}, {a.threads} threads, {PARAMS} parameters, B={B} T={T}, {a.rounds} rounds x {a.steps} steps")
    for k, s in med.items():
        print(f"  {k:11s}: {1e3 * s:.1f} ms/step, {tokens_per_step / s:,.0f} tokens/s")
    print(f"  bnf / torch eager tokens/s: {med['torch eager'] / med['bnf']:.2f}")


if __name__ == "__main__":
    main()
