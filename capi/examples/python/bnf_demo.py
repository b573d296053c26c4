#!/usr/bin/env python3
"""BNF through libbnf's C ABI with ctypes + numpy.

Computes the BNF loss and gradient of a small random batch with the library, then checks them
against numpy: the loss against the paper's definition with the dynamic target f materialised
(eq. 6, eq. 4), and the gradient against central finite differences of that loss with f frozen
(eq. 8 is the gradient with f held constant). Also checks two error paths, and that the GPU
entries say "no CUDA driver/device" when there is no GPU.

    python3 capi/examples/python/bnf_demo.py [path/to/libbnf.so]

Exit status 0 when every check passes.
"""
import ctypes as C
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_LIB = os.path.join(HERE, "..", "..", "..", "target", "release", "libbnf.so")

BNF_OK = 0
BNF_ERR_NULL_POINTER = 1
BNF_ERR_TARGET_OUT_OF_RANGE = 5
BNF_ERR_CUDA_UNAVAILABLE = 12


class BnfBatch(C.Structure):
    """Mirror of `BnfBatch` in bnf.h."""

    _fields_ = [
        ("vocab", C.c_size_t),
        ("rows", C.c_size_t),
        ("targets", C.POINTER(C.c_uint32)),
        ("weights", C.POINTER(C.c_float)),
        ("scored", C.POINTER(C.c_uint8)),
        ("num_responses", C.c_size_t),
        ("ref_logp", C.POINTER(C.c_float)),
    ]


class BnfRowDiag(C.Structure):
    """Mirror of `BnfRowDiag` in bnf.h."""

    _fields_ = [(name, C.c_uint32 if name == "scored" else C.c_float)
                for name in ("scored", "pi_y", "ell", "f_y", "c", "loss", "lse")]


def load(path):
    lib = C.CDLL(path)
    f32p, u16p = C.POINTER(C.c_float), C.POINTER(C.c_uint16)
    batch_p, diag_p = C.POINTER(BnfBatch), C.POINTER(BnfRowDiag)
    lib.bnf_forward_backward_f32.argtypes = [f32p, batch_p, f32p, diag_p, f32p]
    lib.bnf_forward_f16.argtypes = [u16p, batch_p, diag_p, f32p]
    lib.bnf_dynamic_target_f32.argtypes = [f32p, C.c_size_t, C.c_uint32, C.c_float, f32p,
                                           C.c_void_p]
    lib.bnf_response_weights.argtypes = [C.POINTER(C.c_size_t), f32p, C.c_size_t,
                                         C.POINTER(C.c_uint8), C.c_size_t, f32p]
    lib.bnf_cuda_open.argtypes = [C.c_uint32, C.POINTER(C.c_void_p)]
    lib.bnf_cuda_release.argtypes = [C.c_void_p]
    for name in ("bnf_forward_backward_f32", "bnf_forward_f16", "bnf_dynamic_target_f32",
                 "bnf_response_weights", "bnf_cuda_open", "bnf_cuda_release"):
        getattr(lib, name).restype = C.c_int
    lib.bnf_last_error_message.restype = C.c_char_p
    lib.bnf_version.restype = C.c_char_p
    return lib


def ptr(a, ctype):
    return a.ctypes.data_as(C.POINTER(ctype))


def log_softmax(z):
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def dynamic_target(z, y, rho):
    """Eq. 6, literally: f_y = min(pi_y / pi_ref, 1), f_j = (1 - f_y) pi_j / (1 - pi_y)."""
    pi = np.exp(log_softmax(z))
    f = np.empty_like(pi)
    for r in range(len(y)):
        f_y = min(pi[r, y[r]] / np.exp(rho[r]), 1.0)
        f[r] = (1.0 - f_y) * pi[r] / (1.0 - pi[r, y[r]])
        f[r, y[r]] = f_y
    return f


def main():
    lib = load(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BNF_LIB", DEFAULT_LIB))
    print("libbnf", lib.bnf_version().decode())
    failures = []

    def check(ok, what):
        print(("ok    " if ok else "FAIL  ") + what)
        if not ok:
            failures.append(what)

    rng = np.random.default_rng(7)
    vocab, rows = 11, 8
    # Responses: rows 0-2 preferred, 3-4 dispreferred, 5-7 preferred with row 5 a masked
    # prompt row. Unpaired: three responses, two preferred.
    offsets = np.array([0, 3, 5, 8], dtype=np.uintp)
    labels = np.array([1.0, -1.0, 1.0], dtype=np.float32)
    scored = np.array([1, 1, 1, 1, 1, 0, 1, 1], dtype=np.uint8)
    n = len(labels)
    logits = rng.normal(0.0, 2.0, size=(rows, vocab)).astype(np.float32)
    targets = rng.integers(0, vocab, size=rows).astype(np.uint32)
    # Reference log-probs around the policy's own: some rows above pi_ref, some below.
    own = log_softmax(logits.astype(np.float64))[np.arange(rows), targets]
    ref_logp = np.minimum(own + rng.normal(0.0, 1.5, size=rows), -1e-3).astype(np.float32)

    weights = np.zeros(rows, dtype=np.float32)
    st = lib.bnf_response_weights(ptr(offsets, C.c_size_t), ptr(labels, C.c_float), n,
                                  ptr(scored, C.c_uint8), rows, ptr(weights, C.c_float))
    check(st == BNF_OK, "bnf_response_weights returns BNF_OK")

    batch = BnfBatch(vocab, rows, ptr(targets, C.c_uint32), ptr(weights, C.c_float),
                     ptr(scored, C.c_uint8), n, ptr(ref_logp, C.c_float))
    grad = np.zeros_like(logits)
    diag = (BnfRowDiag * rows)()
    loss = C.c_float(np.nan)
    st = lib.bnf_forward_backward_f32(ptr(logits, C.c_float), C.byref(batch),
                                      ptr(grad, C.c_float), diag, C.byref(loss))
    check(st == BNF_OK, "bnf_forward_backward_f32 returns BNF_OK")
    print(f"      loss = {loss.value:.7f}; c per row = "
          + " ".join(f"{d.c:.3f}" for d in diag))

    # numpy: f materialised from eq. 6 at the current logits, then frozen.
    z0 = logits.astype(np.float64)
    f = dynamic_target(z0, targets, ref_logp.astype(np.float64))
    s = weights.astype(np.float64) * scored

    def frozen_loss(z):
        return float(-(s[:, None] * f * log_softmax(z)).sum() / n)

    want = frozen_loss(z0)
    check(abs(loss.value - want) <= 1e-5 * max(1.0, abs(want)),
          f"loss equals eq. 4 with f from eq. 6 (numpy {want:.7f})")

    h = 1e-4
    fd = np.zeros_like(z0)
    for i in range(rows):
        for j in range(vocab):
            zp, zm = z0.copy(), z0.copy()
            zp[i, j] += h
            zm[i, j] -= h
            fd[i, j] = (frozen_loss(zp) - frozen_loss(zm)) / (2 * h)
    err = np.abs(grad - fd).max()
    print(f"      max |grad - finite differences| = {err:.2e}")
    check(np.allclose(grad, fd, rtol=1e-4, atol=1e-6),
          "gradient equals central finite differences of the loss with f frozen")
    check(bool(np.all(grad[5] == 0.0)), "masked row has a zero gradient")
    check(any(d.c < 0.999 for d in diag if d.scored) and any(d.c == 1.0 for d in diag if d.scored),
          "the batch has rows on both sides of the reference (c < 1 and c = 1)")

    f_lib = np.zeros(vocab, dtype=np.float32)
    z_row = np.ascontiguousarray(logits[1])
    st = lib.bnf_dynamic_target_f32(ptr(z_row, C.c_float), vocab, int(targets[1]),
                                    float(ref_logp[1]), ptr(f_lib, C.c_float), None)
    check(st == BNF_OK and np.allclose(f_lib, f[1], rtol=1e-5, atol=1e-7),
          "bnf_dynamic_target_f32 equals numpy's eq. 6")

    # f16 logits (passed as uint16 bits): the same formula on the rounded values.
    half = logits.astype(np.float16)
    loss16 = C.c_float(np.nan)
    st = lib.bnf_forward_f16(ptr(half.view(np.uint16), C.c_uint16), C.byref(batch), None,
                             C.byref(loss16))
    z16 = half.astype(np.float64)
    f16_target = dynamic_target(z16, targets, ref_logp.astype(np.float64))
    want16 = float(-(s[:, None] * f16_target * log_softmax(z16)).sum() / n)
    check(st == BNF_OK and abs(loss16.value - want16) <= 1e-5 * max(1.0, abs(want16)),
          "f16 logits: loss equals the formula on the f16 values")

    # Error paths: a bad target id, then a missing ref_logp.
    bad = targets.copy()
    bad[3] = 1000
    bad_batch = BnfBatch(vocab, rows, ptr(bad, C.c_uint32), ptr(weights, C.c_float),
                         ptr(scored, C.c_uint8), n, ptr(ref_logp, C.c_float))
    before = grad.copy()
    st = lib.bnf_forward_backward_f32(ptr(logits, C.c_float), C.byref(bad_batch),
                                      ptr(grad, C.c_float), None, C.byref(loss))
    msg = lib.bnf_last_error_message().decode()
    print(f"      error {st}: {msg}")
    check(st == BNF_ERR_TARGET_OUT_OF_RANGE and "row 3" in msg and "1000" in msg,
          "bad target id: BNF_ERR_TARGET_OUT_OF_RANGE naming row 3 and id 1000")
    check(np.array_equal(before, grad), "nothing written on error")
    no_ref = BnfBatch(vocab, rows, ptr(targets, C.c_uint32), ptr(weights, C.c_float),
                      ptr(scored, C.c_uint8), n, None)
    st = lib.bnf_forward_backward_f32(ptr(logits, C.c_float), C.byref(no_ref),
                                      ptr(grad, C.c_float), None, C.byref(loss))
    msg = lib.bnf_last_error_message().decode()
    check(st == BNF_ERR_NULL_POINTER and "batch->ref_logp" in msg,
          "NULL ref_logp for BNF: BNF_ERR_NULL_POINTER naming batch->ref_logp")

    # GPU entries: in every build; without CUDA they say so instead of crashing.
    gpu = C.c_void_p()
    st = lib.bnf_cuda_open(0, C.byref(gpu))
    if st == BNF_OK:
        print("      GPU found; the GPU entries are tested by capi/tests/cuda.rs")
        check(gpu.value is not None and lib.bnf_cuda_release(gpu) == BNF_OK,
              "bnf_cuda_open gives a handle, bnf_cuda_release frees it")
    else:
        msg = lib.bnf_last_error_message().decode()
        print(f"      no GPU here: {msg}")
        check(st == BNF_ERR_CUDA_UNAVAILABLE and gpu.value is None
              and "no CUDA driver/device" in msg,
              "without a GPU, bnf_cuda_open says BNF_ERR_CUDA_UNAVAILABLE: no CUDA driver/device")

    print(("FAILED" if failures else "PASSED") + f": {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
