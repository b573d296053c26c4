"""bnf: the BNF alignment loss (Bidirectional Negative Feedback, "As Simple as Fine-tuning: LLM
Alignment via Bidirectional Negative Feedback Loss") and the paper's baselines as PyTorch ops.

Three lines::

    import bnf
    ref = bnf.reference_logps(ref_model, input_ids, labels)   # once, before training
    loss = bnf.BNFLoss()(model(input_ids).logits, labels, ref, preference)

The losses run on bnf-core (Rust) for CPU tensors and on the CUDA kernels for CUDA tensors
(when built with CUDA), as ``torch.library`` custom ops that ``torch.compile`` traces; see
:mod:`bnf.functional` for the arguments.
"""

from . import functional
from ._native import cuda_built
from ._threads import parallel_backend, set_parallel_backend
from .fused import fused_linear_loss
from .functional import ObjectiveInfo, TokenStats, describe_objective, bnf_loss, nll_loss, objective_loss, objective_names, sequence_logps
from .modules import BNFLoss, FusedLinearLoss, ObjectiveLoss
from .reference import reference_logps

__version__ = "0.1.0"

__all__ = [
    "BNFLoss",
    "FusedLinearLoss",
    "ObjectiveInfo",
    "ObjectiveLoss",
    "TokenStats",
    "bnf_loss",
    "cuda_built",
    "describe_objective",
    "functional",
    "fused_linear_loss",
    "nll_loss",
    "objective_loss",
    "objective_names",
    "parallel_backend",
    "reference_logps",
    "sequence_logps",
    "set_parallel_backend",
]
