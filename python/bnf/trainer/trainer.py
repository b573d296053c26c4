"""``BNFTrainer``: a ``transformers.Trainer`` that aligns a causal LM with BNF (or any objective
of :func:`bnf.objective_names`) on TRL-format preference data, with per-token reference
log-probs computed once before training (no reference model is held while training).

Distributed data parallelism (DDP, FSDP, DeepSpeed through ``accelerate``) is the Trainer's;
the loss is row-local, and each process's loss is scaled so that the averaged gradient is the
gradient of the objective's mean over the *global* batch (every process's responses, or pairs,
over every accumulation step), whatever the number of responses each process holds.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from typing import Dict, Optional

import torch
from transformers import Trainer
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from .. import fused_linear_loss, objective_loss, reference_logps
from . import data, reference
from .config import BNFConfig

#: What :class:`BNFTrainer` logs beside the loss (``eval_`` prefixed in evaluation).
DIAGNOSTICS = ("accuracy", "logps_shift_chosen", "logps_shift_rejected", "c_mean")


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(x))`` for ``x <= 0``, stably (DESIGN.md section 2)."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def bnf_scale(logp: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """BNF's per-token gradient scale ``c = min(1, odds(pi_y) / odds(pi_ref))`` from the
    policy's and the reference's log-probs of the label (in log space)."""
    log_c = (logp - _log1mexp(logp)) - (ref - _log1mexp(ref))
    return torch.exp(torch.nan_to_num(log_c, nan=0.0).clamp(max=0.0))


class BNFTrainer(Trainer):
    """``BNFTrainer(model, args=BNFConfig(...), train_dataset=..., processing_class=tokenizer)``.

    - ``model``: a causal LM (or a path for ``AutoModelForCausalLM.from_pretrained``).
    - ``train_dataset`` / ``eval_dataset``: ``datasets.Dataset`` in TRL's paired
      (``prompt``/``chosen``/``rejected``, ``prompt`` optional) or unpaired
      (``prompt``/``completion``/``label``) format, strings or conversations; or a dataset this
      trainer processed before (``trainer.train_dataset``, which carries the reference
      log-probs, so they are not computed again). See :mod:`bnf.trainer.data`.
    - ``processing_class``: the tokenizer (its chat template renders conversations; its pad
      token, else EOS, pads).
    - ``ref_model``: the reference (a model or a path); default the initial ``model``. It is
      used once, before training, for the ``ref_logps`` column, and not kept.

    Logs ``loss`` and :data:`DIAGNOSTICS`: preference accuracy (the fraction of pairs whose
    chosen response gained more log-prob over the reference than the rejected one), the mean
    summed log-prob shift ``log pi(y) - log pi_ref(y)`` of chosen (preferred) and rejected
    (dispreferred) responses, and the mean BNF scale ``c`` over scored tokens.

    A checkpoint records a digest of the reference log-probs (``bnf_reference.json``);
    resuming with other data or another reference is refused."""

    loss_is_scaled_for_ga = True

    def __init__(self, model=None, args: Optional[BNFConfig] = None, data_collator=None, train_dataset=None,
                 eval_dataset=None, processing_class=None, ref_model=None, **kwargs):
        if args is None:
            args = BNFConfig(output_dir="bnf_output")
        if not isinstance(args, BNFConfig):
            raise TypeError(f"args must be a BNFConfig, got {type(args).__name__}")
        if processing_class is None:
            raise ValueError("processing_class is required: the tokenizer that tokenizes the data")
        if isinstance(model, str):
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(model)
        if train_dataset is None:
            raise ValueError("train_dataset is required")
        tok = processing_class
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        if pad is None:
            raise ValueError("the tokenizer has neither pad_token_id nor eos_token_id to pad with")
        self._tok_digest = reference.tokenizer_digest(tok)
        prep = dict(objective_pairwise=args.pairwise, keep_dispreferred=args.objective_name != "nll",
                    pairing_ratio=float(args.pairing_ratio),
                    seed=args.seed if args.pairing_seed is None else args.pairing_seed,
                    max_length=args.max_length, max_prompt_length=args.max_prompt_length)
        train_dataset = data.process(train_dataset, tok, **prep)
        if isinstance(eval_dataset, dict):
            eval_dataset = {k: data.process(v, tok, **prep) for k, v in eval_dataset.items()}
        elif eval_dataset is not None:
            eval_dataset = data.process(eval_dataset, tok, **prep)
        super().__init__(model=model, args=args, data_collator=data_collator or data.BNFCollator(pad),
                         train_dataset=train_dataset, eval_dataset=eval_dataset, processing_class=tok, **kwargs)
        self._pad = pad
        self.train_dataset = self._with_reference(self.train_dataset, ref_model, "train_dataset")
        if isinstance(self.eval_dataset, dict):
            self.eval_dataset = {k: self._with_reference(v, ref_model, f"eval_dataset[{k!r}]")
                                 for k, v in self.eval_dataset.items()}
        elif self.eval_dataset is not None:
            self.eval_dataset = self._with_reference(self.eval_dataset, ref_model, "eval_dataset")
        self._ref_digest = reference.digest(self.train_dataset)
        self._stats = {"train": None, "eval": None}

    # ---- data and reference ----

    def _set_signature_columns_if_needed(self):
        self._signature_columns = list(data.PROCESSED_COLUMNS) + ["ref_logps", "ref_fingerprint"]

    def _with_reference(self, dataset, ref_model, name):
        """``dataset`` with its reference log-probs: checked when it has them, else computed
        from ``ref_model`` (a model or a path) or the initial model."""
        if "ref_logps" in dataset.column_names:
            reference.check(dataset, self._tok_digest, name)
            return dataset
        model, restore = ref_model, None
        if isinstance(model, str):
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(model).to(self.args.device)
        elif model is None:
            model = self.model
        else:
            restore = next(model.parameters()).device
            model.to(self.args.device)
        device = next(model.parameters()).device
        bs = self.args.precompute_ref_batch_size or self.args.per_device_eval_batch_size
        out = reference.compute(model, dataset, batch_size=bs, pad_token_id=self._pad, device=device,
                                tok_digest=self._tok_digest, rank=self.accelerator.process_index,
                                world_size=self.accelerator.num_processes)
        if restore is not None:
            model.to(restore)
        return out

    # ---- loss ----

    def _num_items(self, batch) -> int:
        return int(batch["pairs"].shape[0]) if self.args.pairwise else int(batch["input_ids"].shape[0])

    def _get_num_items_in_batch(self, batch_samples, device):
        """The number of loss terms (responses; pairs for pairwise objectives) in the whole
        optimizer step: every accumulation step of every process."""
        n = torch.tensor([float(sum(self._num_items(b) for b in batch_samples))], device=device)
        if self.accelerator.num_processes > 1:
            n = self.accelerator.gather(n)
        return n.sum()

    def _forward(self, model, inputs):
        """``(loss head input, per-token policy log-probs fn)``: the logits, or (fused) the
        last hidden states with the output embedding."""
        kwargs = dict(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        if not self.args.use_fused_head:
            return model(**kwargs).logits, None
        inner = self.accelerator.unwrap_model(model)
        head = inner.get_output_embeddings()
        if head is None or not hasattr(head, "weight"):
            raise ValueError(f"use_fused_head = True but {type(inner).__name__}.get_output_embeddings() has no weight")
        if "logits_to_keep" in inspect.signature(inner.forward).parameters:
            kwargs["logits_to_keep"] = 1  # the loss reads the hidden states; only one position's logits are made
        hidden = model(**kwargs, output_hidden_states=True).hidden_states[-1]
        weight, bias = head.weight, getattr(head, "bias", None)
        if weight.dtype != hidden.dtype:
            weight = weight.to(hidden.dtype)
            bias = None if bias is None else bias.to(hidden.dtype)
        return hidden, (weight, bias)

    def _loss(self, x, head, inputs, **extra):
        args = self.args
        common = dict(preference=inputs["preference"], pairs=inputs["pairs"] if args.pairwise else None)
        hp = {**args.hyperparameters, **extra}
        ref = inputs.get("ref_logps")
        if head is None:
            return objective_loss(args.objective_name, x, inputs["labels"], ref, **common, **hp)
        weight, bias = head
        return fused_linear_loss(x, weight, inputs["labels"], ref, objective=args.objective_name, bias=bias,
                                 chunk_size=args.fused_chunk_size, **common, **hp)

    @torch.no_grad()
    def _token_logps(self, x, head, labels):
        if head is None:
            return reference_logps(x.detach(), labels=labels)
        weight, bias = head
        nll = fused_linear_loss(x.detach(), weight.detach(), labels, objective="nll", reduction="none",
                                bias=None if bias is None else bias.detach(), chunk_size=self.args.fused_chunk_size)
        return -nll

    def _gather_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.accelerator.num_processes > 1:
            return self.accelerator.gather(t[None]).sum(dim=0)
        return t

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The objective on the batch. With ``num_items_in_batch`` (training: the global number
        of loss terms of the optimizer step) the local mean is rescaled to ``local sum x
        processes / num_items_in_batch``, so that the Trainer's gradient average over processes
        and accumulation steps is the global mean's gradient."""
        args = self.args
        x, head = self._forward(model, inputs)
        labels, ref = inputs["labels"], inputs.get("ref_logps")
        need_logps = args.log_diagnostics or (args.objective_name == "kto" and "z0" not in args.hyperparameters)
        logp = self._token_logps(x, head, labels) if need_logps and ref is not None else None
        extra = {}
        if args.objective_name == "kto" and "z0" not in args.hyperparameters:
            # KTO's KL estimate over the global batch, so that N processes match one.
            scored = self._scored(labels)
            shift = ((logp - ref) * scored).sum(dim=1)
            s = self._gather_sum(torch.stack([shift.sum(), torch.tensor(float(shift.numel()), device=shift.device)]))
            extra["z0"] = max(0.0, float(s[0] / s[1]))
        loss = self._loss(x, head, inputs, **extra)
        if args.log_diagnostics and logp is not None:
            self._record(logp, ref, inputs)
        if num_items_in_batch is not None and model.training:
            loss = loss * (self._num_items(inputs) * self.accelerator.num_processes / num_items_in_batch)
        elif model.training:
            loss = loss / args.gradient_accumulation_steps
        return (loss, {}) if return_outputs else loss

    @staticmethod
    def _scored(labels):
        scored = labels != data.IGNORE_INDEX
        scored[:, 0] = False  # the first label is never scored (causal shift)
        return scored

    @torch.no_grad()
    def _record(self, logp, ref, inputs):
        scored = self._scored(inputs["labels"])
        shift = ((logp - ref) * scored).sum(dim=1)
        pref, pairs = inputs["preference"], inputs["pairs"]
        c = bnf_scale(logp, ref)[scored]
        chosen, rejected = pref > 0, pref < 0
        correct = (shift[pairs[:, 0]] > shift[pairs[:, 1]]).sum() if pairs.numel() else shift.new_zeros(())
        f = lambda v: torch.as_tensor(v, dtype=torch.float64, device=logp.device).reshape(())  # noqa: E731
        stats = torch.stack([
            f(c.sum()), f(c.numel()), f(correct), f(pairs.shape[0]),
            f(shift[chosen].sum()), f(chosen.sum()), f(shift[rejected].sum()), f(rejected.sum()),
        ])
        stats = self._gather_sum(stats).cpu()
        mode = "train" if self.model.training else "eval"
        self._stats[mode] = stats if self._stats[mode] is None else self._stats[mode] + stats

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """The objective's loss on an evaluation batch (no predictions)."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def log(self, logs: Dict[str, float], start_time: Optional[float] = None) -> None:
        """The Trainer's log with :data:`DIAGNOSTICS` averaged since the last log (over every
        process); ``eval_`` prefixed for evaluation logs. A value with nothing to average
        (accuracy on a batch without pairs, rejected shift without rejected responses) is left
        out."""
        mode = "eval" if any(k.startswith("eval_") for k in logs) else "train"
        s = self._stats.get(mode)
        if s is not None:
            prefix = "eval_" if mode == "eval" else ""
            for name, num, den in (("accuracy", 2, 3), ("logps_shift_chosen", 4, 5),
                                   ("logps_shift_rejected", 6, 7), ("c_mean", 0, 1)):
                if s[den] > 0:
                    logs[prefix + name] = float(s[num] / s[den])
            self._stats[mode] = None
        super().log(logs, start_time)

    # ---- checkpoints ----

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = os.path.join(self.args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
            if os.path.isdir(folder):
                with open(os.path.join(folder, reference.CHECKPOINT_FILE), "w") as f:
                    json.dump(self._ref_digest, f)

    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        """``Trainer.train``; resuming first checks that the checkpoint was trained with these
        reference log-probs (``bnf_reference.json``) and refuses otherwise."""
        path = resume_from_checkpoint
        if path is True:
            path = get_last_checkpoint(self.args.output_dir)
            if path is None:
                raise ValueError(f"resume_from_checkpoint = True but output_dir = {self.args.output_dir!r} has no checkpoint")
        if isinstance(path, str):
            saved = reference.load_checkpoint_digest(os.path.join(path, reference.CHECKPOINT_FILE))
            if saved is None:
                raise ValueError(f"resume_from_checkpoint = {path!r} has no {reference.CHECKPOINT_FILE}: "
                                 "not a BNFTrainer checkpoint, or not a checkpoint folder")
            reference.compare(saved, self._ref_digest, path)
        return super().train(resume_from_checkpoint, *args, **kwargs)
