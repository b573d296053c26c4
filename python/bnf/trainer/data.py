"""Preference data for :class:`bnf.trainer.BNFTrainer`: TRL's formats, the paper's pairing
ratio, tokenization with completion masks, and the collator.

Formats (detected from the columns, as TRL names them):

- paired: ``prompt``, ``chosen``, ``rejected``; without ``prompt`` (TRL's implicit prompt) the
  shared beginning of ``chosen`` and ``rejected`` is the prompt (the leading messages both
  conversations share, or the common text up to the last whitespace before they differ);
- unpaired: ``prompt``, ``completion``, ``label`` (true: preferred).

Each of these is a string, or a conversation (a list of ``{"role", "content"}`` messages)
rendered with the tokenizer's chat template: the prompt with ``add_generation_prompt=True``,
the completion as what the whole conversation adds to it.

A processed dataset has one row per *unit*: a pair (two responses, chosen first) or a single
response, with the columns ``input_ids``, ``labels`` (``-100`` at prompt and padding, the
completion and its EOS scored) and ``preference`` (``+1`` / ``-1`` per response), each a list
over the unit's responses; the reference log-probs add ``ref_logps`` and ``ref_fingerprint``
(:mod:`bnf.trainer.reference`).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

IGNORE_INDEX = -100

#: The columns of a processed dataset (``ref_logps`` and ``ref_fingerprint`` come later).
PROCESSED_COLUMNS = ("input_ids", "labels", "preference")


class SplitMix64:
    """The Rust trainer's seeded generator (``trainer/src/rng.rs``), so that a seed drops the
    same sides of the same pairs in both trainers."""

    MASK = (1 << 64) - 1

    def __init__(self, seed: int):
        self.state = int(seed) & self.MASK

    def next_u64(self) -> int:
        """The next 64 random bits."""
        self.state = (self.state + 0x9E3779B97F4A7C15) & self.MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self.MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.MASK
        return z ^ (z >> 31)

    def uniform(self) -> float:
        """Uniform in ``[0, 1)``."""
        return (self.next_u64() >> 11) / float(1 << 53)


def data_format(columns: Sequence[str]) -> str:
    """``"processed"``, ``"paired"`` or ``"unpaired"`` from a dataset's column names; anything
    else is a ``ValueError`` naming the columns."""
    cols = set(columns)
    if set(PROCESSED_COLUMNS) <= cols:
        return "processed"
    if {"chosen", "rejected"} <= cols:
        return "paired"
    if {"prompt", "completion", "label"} <= cols:
        return "unpaired"
    raise ValueError(
        f"train_dataset has columns {sorted(cols)}: expected TRL's paired format (prompt, chosen, "
        "rejected; prompt may be left out), its unpaired format (prompt, completion, label), or a "
        "dataset processed by BNFTrainer (input_ids, labels, preference)"
    )


def _is_conversation(x: Any) -> bool:
    return isinstance(x, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in x)


def implicit_prompt(chosen: Any, rejected: Any, row: int) -> Tuple[Any, Any, Any]:
    """``(prompt, chosen, rejected)`` from two conversations (or strings) that begin alike: the
    leading messages both share (strings: the common text up to the last whitespace before
    they differ). Each side must keep something after the prompt."""
    if _is_conversation(chosen) and _is_conversation(rejected):
        n = 0
        while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
            n += 1
        if n == len(chosen) or n == len(rejected):
            raise ValueError(f"train_dataset row {row}: chosen and rejected are the same conversation up to {n} messages, "
                             "nothing is left to compare after the shared prompt")
        return chosen[:n], chosen[n:], rejected[n:]
    if isinstance(chosen, str) and isinstance(rejected, str):
        n = 0
        while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
            n += 1
        cut = n
        while cut > 0 and not chosen[cut - 1].isspace():
            cut -= 1
        if cut == len(chosen) or cut == len(rejected):
            raise ValueError(f"train_dataset row {row}: chosen and rejected are the same text {chosen!r}")
        return chosen[:cut], chosen[cut:], rejected[cut:]
    raise TypeError(
        f"train_dataset row {row}: chosen and rejected must both be strings or both conversations "
        f"(lists of {{'role', 'content'}} messages), got {type(chosen).__name__} and {type(rejected).__name__}"
    )


def apply_pairing_ratio(units: List[Dict], ratio: float, seed: int) -> List[Dict]:
    """The paper's pairing ratio (section 5.2, Table 6), as the Rust trainer's
    ``apply_pairing_ratio``: each pair stays a pair with probability ``ratio``; otherwise one
    side, chosen at random (chosen with probability 1/2), is dropped and the other becomes an
    unpaired response. ``units`` are ``{"prompt", "responses": [(completion, +1), (completion,
    -1)]}`` (pairs) or with one response (unpaired, untouched and drawing nothing)."""
    if not (0.0 <= ratio <= 1.0):
        raise ValueError(f"pairing_ratio must be in [0, 1], got {ratio}")
    rng = SplitMix64(seed)
    out = []
    for u in units:
        if len(u["responses"]) == 2 and rng.uniform() >= ratio:
            keep = 1 if rng.uniform() < 0.5 else 0  # the Rust trainer drops the chosen side when < 0.5
            u = {**u, "responses": [u["responses"][keep]]}
        out.append(u)
    return out


def raw_units(dataset, fmt: str) -> List[Dict]:
    """The units of a paired or unpaired dataset, prompts made explicit."""
    units = []
    has_prompt = "prompt" in dataset.column_names
    for i, ex in enumerate(dataset):
        if fmt == "paired":
            if has_prompt:
                prompt, chosen, rejected = ex["prompt"], ex["chosen"], ex["rejected"]
            else:
                prompt, chosen, rejected = implicit_prompt(ex["chosen"], ex["rejected"], i)
            units.append({"row": i, "prompt": prompt, "responses": [(chosen, 1.0), (rejected, -1.0)]})
        else:
            label = ex["label"]
            if not isinstance(label, bool) and label not in (0, 1):
                raise ValueError(f"train_dataset row {i}: label = {label!r} must be true or false")
            units.append({"row": i, "prompt": ex["prompt"], "responses": [(ex["completion"], 1.0 if label else -1.0)]})
    return units


def render(tokenizer, prompt: Any, completion: Any, row: int) -> Tuple[str, str, bool]:
    """``(prompt text, completion text, conversational)``: strings as they are; conversations
    through the tokenizer's chat template (the completion is what the whole conversation adds
    after the prompt rendered with ``add_generation_prompt=True``)."""
    if isinstance(prompt, str) and isinstance(completion, str):
        return prompt, completion, False
    if _is_conversation(prompt) and _is_conversation(completion):
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError(f"train_dataset row {row} is conversational but the tokenizer has no chat_template")
        p = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(prompt + completion, tokenize=False)
        if not full.startswith(p):
            raise ValueError(
                f"train_dataset row {row}: the chat template renders the prompt as {p!r}, which the whole "
                f"conversation {full!r} does not begin with, so the completion cannot be cut from it"
            )
        return p, full[len(p):], True
    raise TypeError(
        f"train_dataset row {row}: prompt and completion must both be strings or both conversations, got "
        f"{type(prompt).__name__} and {type(completion).__name__}"
    )


def tokenize_response(tokenizer, prompt: Any, completion: Any, row: int, max_length: Optional[int],
                      max_prompt_length: Optional[int]) -> Tuple[List[int], List[int]]:
    """``(input_ids, labels)`` of one response: the prompt's tokens (special tokens such as BOS
    added for string prompts; a chat template writes its own), then the completion's and EOS
    (unless the completion already ends with it). ``labels`` is ``-100`` over the prompt. The
    prompt keeps its last ``max_prompt_length`` tokens; the completion is cut so that the whole
    fits ``max_length``. A response left with no completion token is an error naming the row."""
    p_text, c_text, conv = render(tokenizer, prompt, completion, row)
    p_ids = tokenizer(p_text, add_special_tokens=not conv)["input_ids"]
    c_ids = tokenizer(c_text, add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no eos_token_id: the EOS that ends each completion is scored")
    if not c_ids or c_ids[-1] != eos:
        c_ids = c_ids + [eos]
    if max_prompt_length is not None and len(p_ids) > max_prompt_length:
        p_ids = p_ids[len(p_ids) - max_prompt_length:]
    if max_length is not None and len(p_ids) + len(c_ids) > max_length:
        c_ids = c_ids[: max(0, max_length - len(p_ids))]
    if not c_ids:
        raise ValueError(
            f"train_dataset row {row}: the prompt has {len(p_ids)} tokens, leaving no completion token within "
            f"max_length = {max_length}; raise max_length or set max_prompt_length"
        )
    if not p_ids:
        raise ValueError(f"train_dataset row {row}: the prompt is empty after tokenization; the first token "
                         "is never scored (causal shift), so every response needs at least one prompt token (e.g. BOS)")
    return p_ids + c_ids, [IGNORE_INDEX] * len(p_ids) + c_ids


def process(dataset, tokenizer, *, objective_pairwise: bool, keep_dispreferred: bool, pairing_ratio: float,
            seed: int, max_length: Optional[int], max_prompt_length: Optional[int]):
    """A raw TRL dataset as a processed one (see the module docstring); a processed one is
    returned as it is. ``keep_dispreferred=False`` (NLL/SFT) keeps only preferred responses."""
    import datasets

    fmt = data_format(dataset.column_names)
    if fmt == "processed":
        return dataset
    units = raw_units(dataset, fmt)
    units = apply_pairing_ratio(units, pairing_ratio, seed)
    if objective_pairwise and any(len(u["responses"]) != 2 for u in units):
        raise ValueError(
            "the objective is pairwise and needs every response in a pair, but "
            + ("the data is unpaired" if fmt == "unpaired" else f"pairing_ratio = {pairing_ratio} splits some pairs")
            + "; use objective 'bnf', 'kto' or 'nll', or paired data with pairing_ratio = 1"
        )
    cols: Dict[str, list] = {"input_ids": [], "labels": [], "preference": []}
    for u in units:
        rs = [r for r in u["responses"] if keep_dispreferred or r[1] > 0]
        if not rs:
            continue
        ids, labels = zip(*(tokenize_response(tokenizer, u["prompt"], c, u["row"], max_length, max_prompt_length)
                            for c, _ in rs))
        cols["input_ids"].append(list(ids))
        cols["labels"].append(list(labels))
        cols["preference"].append([p for _, p in rs])
    if not cols["input_ids"]:
        raise ValueError("train_dataset has no response to train on" +
                         ("" if keep_dispreferred else " (objective nll trains on preferred responses only)"))
    return datasets.Dataset.from_dict(cols)


class BNFCollator:
    """Pads a list of units into one batch: every response a row (right padding with
    ``pad_token_id``, ``labels`` ``-100`` and ``ref_logps`` 0 there), ``attention_mask``,
    ``preference`` ``(B,)``, ``pairs`` ``(P, 2)`` (chosen, rejected) row indices of the units
    that are pairs, and ``ref_logps`` when the units carry them."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = int(pad_token_id)

    def __call__(self, units: List[Dict]) -> Dict[str, torch.Tensor]:
        seqs, labels, prefs, refs, pairs = [], [], [], [], []
        with_ref = all("ref_logps" in u for u in units)
        for u in units:
            start = len(seqs)
            seqs += u["input_ids"]
            labels += u["labels"]
            prefs += u["preference"]
            if with_ref:
                refs += u["ref_logps"]
            if len(u["input_ids"]) == 2:
                pairs.append((start, start + 1))
        t = max(len(s) for s in seqs)
        b = len(seqs)
        out = {
            "input_ids": torch.full((b, t), self.pad_token_id, dtype=torch.long),
            "attention_mask": torch.zeros((b, t), dtype=torch.long),
            "labels": torch.full((b, t), IGNORE_INDEX, dtype=torch.long),
            "preference": torch.tensor(prefs, dtype=torch.float32),
            "pairs": torch.tensor(pairs, dtype=torch.long).reshape(-1, 2),
        }
        if with_ref:
            out["ref_logps"] = torch.zeros((b, t), dtype=torch.float32)
        for i, s in enumerate(seqs):
            n = len(s)
            out["input_ids"][i, :n] = torch.tensor(s)
            out["attention_mask"][i, :n] = 1
            out["labels"][i, :n] = torch.tensor(labels[i])
            if with_ref:
                out["ref_logps"][i, :n] = torch.tensor(refs[i], dtype=torch.float32)
        return out
