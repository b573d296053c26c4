"""The ops as torch sees them: opcheck (schema, fake tensors, autograd registration, AOT
dispatch), torch.compile with fullgraph=True, and a 20-step AdamW loop that matches the same
loop on the pure-torch loss."""

import pytest
import torch

import bnf
import reference as R
from conftest import make_batch


def row_args(dtype=torch.float32, need_grad=True):
    logits, labels, ref, pref = make_batch(B=3, T=6, V=7, dtype=dtype, seed=2)
    targets = torch.cat([labels[:, 1:], torch.full((3, 1), -100)], 1).reshape(-1)
    scored = targets != -100
    lengths = scored.view(3, 6).sum(1)
    weights = torch.where(scored, (pref / lengths).repeat_interleave(6), 0.0)
    rho = torch.cat([ref[:, 1:], torch.zeros(3, 1)], 1).reshape(-1)
    x = logits.detach().reshape(18, 7).requires_grad_()
    return (x, targets, scored, weights, rho, 3, need_grad, 6, True, 3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
def test_opcheck_row_loss(dtype):
    torch.library.opcheck(torch.ops.bnf.row_loss.default, row_args(dtype))
    # Without the gradient (the logits need none): the loss alone.
    args = row_args(dtype, need_grad=False)
    torch.library.opcheck(torch.ops.bnf.row_loss.default, (args[0].detach(),) + args[1:])


def test_opcheck_sequence_terms():
    lp = torch.tensor([-3.0, -4.0, -2.5, -5.0], requires_grad=True)
    scored = torch.ones(8, dtype=torch.bool)
    ref = torch.full((8,), -1.5)
    labels = torch.tensor([1.0, 1.0, -1.0, -1.0])
    pairs = torch.tensor([[0, 2], [1, 3]])
    torch.library.opcheck(
        torch.ops.bnf.sequence_terms.default, (lp, scored, ref, labels, pairs, "dpo", "beta", [0.2], 2, True, 3)
    )
    torch.library.opcheck(
        torch.ops.bnf.sequence_terms.default, (lp, scored, ref, labels, pairs, "kto", "", [], 2, True, 3)
    )


@pytest.mark.parametrize("name", ["bnf", "dpo", "kto"])
def test_compile_fullgraph(name):
    logits, labels, ref, pref = make_batch(seed=8)

    def step(x):
        if name == "bnf":
            return bnf.bnf_loss(x, labels, ref, preference=pref)
        kto = {"preference": pref} if name == "kto" else {}
        return bnf.objective_loss(name, x, labels, ref, beta=0.2, **kto)

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    x1 = logits.detach().requires_grad_()
    x2 = logits.detach().requires_grad_()
    a, b = step(x1), compiled(x2)
    torch.testing.assert_close(a, b)
    a.backward()
    b.backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_compile_inductor():
    logits, labels, ref, pref = make_batch(seed=9)
    model = torch.nn.Linear(13, 13)
    h = torch.randn(4, 9, 13)

    def step(h):
        return bnf.bnf_loss(model(h), labels, ref, preference=pref)

    compiled = torch.compile(step, fullgraph=True)
    torch.testing.assert_close(compiled(h), step(h))


class Tiny(torch.nn.Module):
    def __init__(self, V=13, H=8):
        super().__init__()
        self.emb = torch.nn.Embedding(V, H)
        self.mix = torch.nn.Linear(H, H)
        self.head = torch.nn.Linear(H, V)

    def forward(self, ids):
        h = self.emb(ids)
        h = h + torch.tanh(self.mix(torch.cumsum(h, dim=1) / torch.arange(1, ids.shape[1] + 1)[:, None]))
        return self.head(h)


def test_adamw_loop_matches_pure_torch():
    torch.manual_seed(0)
    V = 13
    ids = torch.randint(0, V, (4, 10))
    labels = ids.clone()
    labels[:, :3] = -100
    pref = torch.tensor([1.0, -1.0, 1.0, -1.0])
    ref_model = Tiny(V)
    ref = bnf.reference_logps(ref_model(ids), labels=labels)
    ours, theirs = Tiny(V), Tiny(V)
    theirs.load_state_dict(ours.state_dict())
    start = ours.head.weight.detach().clone()
    opt_a = torch.optim.AdamW(ours.parameters(), lr=1e-2)
    opt_b = torch.optim.AdamW(theirs.parameters(), lr=1e-2)
    for _ in range(20):
        for model, opt, fn in ((ours, opt_a, bnf.bnf_loss), (theirs, opt_b, None)):
            opt.zero_grad()
            logits = model(ids)
            if fn is None:
                loss = R.bnf(logits, labels, torch.where(labels == -100, 0.0, ref), pref)
            else:
                loss = fn(logits, labels, ref, preference=pref)
            loss.backward()
            opt.step()
    for (n, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=n)
    # The loop did train: the parameters moved.
    assert (ours.head.weight - start).abs().max() > 1e-2
