"""Per-token reference log-probs for a processed dataset (:mod:`bnf.trainer.data`), computed
once before training and stored as the dataset's ``ref_logps`` column, with a per-row
``ref_fingerprint`` of the tokens (and the tokenizer) they were computed for, so that data and
reference log-probs that do not belong together are refused instead of trained on.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Dict, List, Optional

import torch

from .. import reference_logps
from .data import BNFCollator

#: The file a checkpoint keeps the digest of its reference log-probs in.
CHECKPOINT_FILE = "bnf_reference.json"


def tokenizer_digest(tokenizer) -> str:
    """A short hash of the tokenizer's vocabulary and EOS, so that tokens from another
    tokenizer do not match."""
    h = hashlib.sha256()
    h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    h.update(str(tokenizer.eos_token_id).encode())
    return h.hexdigest()[:16]


def row_fingerprint(tok_digest: str, input_ids: List[List[int]], labels: List[List[int]]) -> str:
    """The fingerprint of one unit's tokens: its responses' ``input_ids`` and ``labels`` under
    the tokenizer ``tok_digest``."""
    h = hashlib.sha256(tok_digest.encode())
    h.update(json.dumps([input_ids, labels]).encode())
    return h.hexdigest()[:16]


@torch.no_grad()
def compute(model, dataset, *, batch_size: int, pad_token_id: int, device, tok_digest: str,
            rank: int = 0, world_size: int = 1):
    """``dataset`` with the columns ``ref_logps`` (each response's per-label log-probs under
    ``model``, 0 where not scored) and ``ref_fingerprint``. With ``world_size > 1`` each
    process computes the rows ``rank::world_size`` and they exchange them
    (``torch.distributed.all_gather_object``), so every process ends with the whole column."""
    if batch_size < 1:
        raise ValueError(f"precompute_ref_batch_size must be at least 1, got {batch_size}")
    was_training = model.training
    model.eval()
    collate = BNFCollator(pad_token_id)
    mine = list(range(rank, len(dataset), world_size))
    out: Dict[int, List[List[float]]] = {}
    try:
        for i in range(0, len(mine), batch_size):
            idx = mine[i : i + batch_size]
            units = [dataset[j] for j in idx]
            batch = collate(units)
            ref = reference_logps(model, batch["input_ids"].to(device), batch["labels"].to(device),
                                  attention_mask=batch["attention_mask"].to(device)).cpu()
            k = 0
            for j, u in zip(idx, units):
                rows = []
                for s in u["input_ids"]:
                    rows.append(ref[k, : len(s)].tolist())
                    k += 1
                out[j] = rows
    finally:
        model.train(was_training)
    if world_size > 1:
        parts = [None] * world_size
        torch.distributed.all_gather_object(parts, out)
        out = {k: v for p in parts for k, v in p.items()}
    refs = [out[j] for j in range(len(dataset))]
    fps = [row_fingerprint(tok_digest, u["input_ids"], u["labels"]) for u in dataset]
    for col in ("ref_logps", "ref_fingerprint"):
        if col in dataset.column_names:
            dataset = dataset.remove_columns(col)
    return dataset.add_column("ref_logps", refs).add_column("ref_fingerprint", fps)


def check(dataset, tok_digest: str, name: str = "train_dataset") -> None:
    """Refuse reference log-probs that do not belong to the dataset's tokens: a missing
    fingerprint, tokens (or a tokenizer) other than those they were computed for, a shape
    other than the labels', or a value that is not a log-probability where a label is scored.
    Each error names the dataset, the row and what differs."""
    cols = dataset.column_names
    if "ref_fingerprint" not in cols:
        raise ValueError(f"{name} has ref_logps but no ref_fingerprint column: reference log-probs are accepted "
                         "only as BNFTrainer computed them (drop ref_logps to have them computed)")
    for i, u in enumerate(dataset):
        fp = row_fingerprint(tok_digest, u["input_ids"], u["labels"])
        if fp != u["ref_fingerprint"]:
            raise ValueError(
                f"{name} row {i}: ref_fingerprint = {u['ref_fingerprint']!r} but the row's tokens (with this "
                f"tokenizer) give {fp!r}: the reference log-probs were computed for other tokens, another tokenizer "
                "or another max_length; drop the ref_logps column to compute them again"
            )
        if len(u["ref_logps"]) != len(u["labels"]):
            raise ValueError(f"{name} row {i}: ref_logps has {len(u['ref_logps'])} responses but labels has "
                             f"{len(u['labels'])}: the reference log-probs belong to other data")
        for k, (ref, lab) in enumerate(zip(u["ref_logps"], u["labels"])):
            if len(ref) != len(lab):
                raise ValueError(f"{name} row {i}, response {k}: ref_logps has {len(ref)} values but labels has "
                                 f"{len(lab)}: the reference log-probs belong to other tokens")
            for t, (r, y) in enumerate(zip(ref, lab)):
                if t > 0 and y != -100 and not (math.isfinite(r) and r <= 0.0):
                    raise ValueError(f"{name} row {i}, response {k}: ref_logps[{t}] = {r} is not a log-probability "
                                     "(finite and at most 0)")


def digest(dataset) -> Dict:
    """What a checkpoint records of its reference log-probs: the rows, a hash of the rows'
    fingerprints, and each of the first 64 rows' summed log-prob (compared with a tolerance,
    since a reference computed again in other batches may differ in the last bits)."""
    fps = dataset["ref_fingerprint"]
    sums = []
    for u in dataset.select(range(min(64, len(dataset)))):
        sums.append(float(sum(sum(r) for r in u["ref_logps"])))
    return {"rows": len(dataset), "tokens": hashlib.sha256("".join(fps).encode()).hexdigest()[:16], "sums": sums}


def compare(saved: Dict, now: Dict, checkpoint: str) -> None:
    """Refuse to resume a run whose reference log-probs are not the checkpoint's: other rows,
    other tokens, or summed log-probs that differ by more than ``1e-3 (1 + |sum|)`` (the
    reference was another model, e.g. the trained model itself)."""
    if saved["rows"] != now["rows"] or saved["tokens"] != now["tokens"]:
        raise ValueError(
            f"resume_from_checkpoint = {checkpoint!r} was trained on {saved['rows']} rows with token hash "
            f"{saved['tokens']}, but this trainer has {now['rows']} rows with hash {now['tokens']}: resume on the "
            "same data, tokenizer, max_length, pairing_ratio and seed"
        )
    for i, (a, b) in enumerate(zip(saved["sums"], now["sums"])):
        if abs(a - b) > 1e-3 * (1 + abs(a)):
            raise ValueError(
                f"resume_from_checkpoint = {checkpoint!r}: row {i}'s summed reference log-prob was {a} but is now {b}: "
                "the reference differs from the checkpoint's (build the trainer from the initial model, or pass the "
                "same ref_model, not the checkpoint's weights)"
            )


def load_checkpoint_digest(path: str) -> Optional[Dict]:
    """The digest a checkpoint folder saved, or None when it has none."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
