"""``BNFConfig``: ``transformers.TrainingArguments`` with the objective, its hyperparameters and
the data options of :class:`bnf.trainer.BNFTrainer`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from transformers import TrainingArguments

from .. import functional


def objective_spec(objective: str, kwargs: Optional[Dict[str, float]]) -> Tuple[str, bool, bool, Dict[str, float]]:
    """``(canonical name, pairwise, needs reference, hyperparameters)`` of ``objective`` with
    ``kwargs``, checked by bnf-core (an unknown name or a value out of range is a
    ``ValueError`` naming it)."""
    if not isinstance(objective, str):
        raise TypeError(f"objective must be a string, one of {functional.objective_names()}, got {objective!r}")
    kwargs = dict(kwargs or {})
    names, values = [], []
    for k, v in kwargs.items():
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"objective_kwargs[{k!r}] = {v!r} must be a number")
        names.append("lambda" if k == "lambda_" else k)
        values.append(float(v))
    name, pairwise, needs_ref, _ = functional.objective_info(objective, tuple(zip(names, values)))
    return name, bool(pairwise), bool(needs_ref), dict(zip(names, values))


@dataclass
class BNFConfig(TrainingArguments):
    """Training arguments for :class:`bnf.trainer.BNFTrainer`: every ``TrainingArguments``
    option, and:

    - ``objective``: one of :func:`bnf.objective_names` (``bnf`` by default; ``nll``/``sft``
      trains on the preferred responses only);
    - ``objective_kwargs``: its hyperparameters with bnf-core's names (``{"beta": 0.1}``,
      ``tau``, ``gamma``, ``alpha``, ``margin``, ``lambda``, KTO's ``desirable_weight``,
      ``undesirable_weight``, ``z0``); defaults are ``losses.md``'s. KTO's ``z0`` left out is
      the detached estimate ``max(0, mean(lp - rp))`` over the global batch (every process);
    - ``pairing_ratio``: the paper's (section 5.2): each pair of paired data stays a pair with
      this probability, otherwise one side at random is dropped and the other trains unpaired
      (drawn with ``pairing_seed``, default ``seed``, as the Rust trainer draws). Pairwise
      objectives need 1;
    - ``max_length`` (prompt + completion tokens; the completion is cut) and
      ``max_prompt_length`` (the prompt keeps its last tokens);
    - ``precompute_ref_batch_size``: dataset rows per reference forward pass (default
      ``per_device_eval_batch_size``);
    - ``use_fused_head``: the loss from the model's last hidden states and its output
      embedding (:func:`bnf.fused_linear_loss`), never holding the ``(B, T, V)`` logits;
      ``fused_chunk_size`` its rows per chunk;
    - ``log_diagnostics``: log preference accuracy, the chosen/rejected log-prob shift
      against the reference and the mean BNF scale ``c`` (one extra no-grad pass over the
      logits, or over the LM head with the fused head).

    ``remove_unused_columns`` defaults to False: the trainer's columns are not the model's
    arguments."""

    objective: str = field(default="bnf", metadata={"help": "the objective, one of bnf.objective_names()"})
    objective_kwargs: Optional[Dict[str, float]] = field(
        default=None, metadata={"help": "the objective's hyperparameters, e.g. {'beta': 0.1}"}
    )
    pairing_ratio: float = field(default=1.0, metadata={"help": "fraction of pairs kept as pairs (paper sec. 5.2)"})
    pairing_seed: Optional[int] = field(default=None, metadata={"help": "seed of the pairing draw (default: seed)"})
    max_length: Optional[int] = field(default=1024, metadata={"help": "most tokens of prompt + completion"})
    max_prompt_length: Optional[int] = field(default=None, metadata={"help": "most prompt tokens (kept from the end)"})
    precompute_ref_batch_size: Optional[int] = field(
        default=None, metadata={"help": "rows per reference forward (default per_device_eval_batch_size)"}
    )
    use_fused_head: bool = field(default=False, metadata={"help": "fused LM head + loss (no logits)"})
    fused_chunk_size: Optional[int] = field(default=None, metadata={"help": "rows per chunk of the fused head"})
    log_diagnostics: bool = field(default=True, metadata={"help": "log accuracy, log-prob shifts and mean c"})
    remove_unused_columns: bool = field(default=False, metadata={"help": "keep False for BNFTrainer"})

    def __post_init__(self):
        self.objective_name, self.pairwise, self.needs_ref, self.hyperparameters = objective_spec(
            self.objective, self.objective_kwargs
        )
        if isinstance(self.pairing_ratio, bool) or not isinstance(self.pairing_ratio, (int, float)) or not (
            0.0 <= self.pairing_ratio <= 1.0
        ):
            raise ValueError(f"pairing_ratio must be a number in [0, 1], got {self.pairing_ratio!r}")
        if self.pairwise and self.pairing_ratio < 1.0:
            raise ValueError(
                f"objective {self.objective_name} is pairwise and needs every pair whole, but pairing_ratio = "
                f"{self.pairing_ratio} splits some; use pairing_ratio = 1 or objective bnf / kto"
            )
        for name in ("max_length", "max_prompt_length", "precompute_ref_batch_size", "fused_chunk_size"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{name} must be a positive int or None, got {v!r}")
        if self.max_length is not None and self.max_length < 2:
            raise ValueError(f"max_length must be at least 2 (a prompt token and a scored token), got {self.max_length}")
        super().__post_init__()
