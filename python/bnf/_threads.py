"""Which threads run the library's CPU work. By default the work of a call is split over
``torch.get_num_threads()`` threads of torch's own OpenMP team (its libgomp, found in torch's
``lib`` folder and already loaded by torch), so that it never competes with torch's workers,
which spin after each op. ``BNF_OPENMP=0`` in the environment, or
``set_parallel_backend("threads")``, makes bnf-core start its own threads instead. Results are
bitwise the same either way."""

from __future__ import annotations

import glob
import os

import torch

from . import _native

_backend = "threads"


def _torch_libgomp() -> list:
    lib = os.path.join(os.path.dirname(torch.__file__), "lib")
    return sorted(glob.glob(os.path.join(lib, "libgomp*.so*")))


def set_parallel_backend(name: str) -> str:
    """``"openmp"`` (torch's team; falls back to ``"threads"`` when torch has no libgomp) or
    ``"threads"`` (bnf-core's own). Returns the backend now in use."""
    global _backend
    if name not in ("openmp", "threads"):
        raise ValueError(f"parallel backend must be 'openmp' or 'threads', got {name!r}")
    _backend = "threads"
    _native.use_own_threads()
    if name == "openmp":
        for path in _torch_libgomp():
            if _native.use_openmp(os.path.realpath(path)) or _native.use_openmp(path):
                _backend = "openmp"
                break
    return _backend


def parallel_backend() -> str:
    """The backend in use: ``"openmp"`` or ``"threads"``."""
    return _backend


set_parallel_backend("threads" if os.environ.get("BNF_OPENMP", "1") == "0" else "openmp")
