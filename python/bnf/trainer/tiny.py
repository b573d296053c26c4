"""A tiny causal LM, tokenizer and preference data built locally (nothing downloaded), for the
tests and the example's default run.

- :func:`tiny_tokenizer`: character-level (``tokenizers`` WordLevel over single characters)
  with ``<pad>``, ``<bos>`` (added to string prompts), ``<eos>``, ``<unk>`` and a chat template
  rendering ``"{role}: {content}\\n"`` per message, then ``"assistant: "`` for a generation
  prompt;
- :func:`tiny_model`: a 2-layer ``LlamaForCausalLM`` from a config (no dropout), seeded;
- :func:`tiny_pairs`: arithmetic prompts with the right answer chosen and a wrong one rejected,
  as strings, conversations, or conversations without a prompt column (implicit prompt);
  :func:`tiny_unpaired`: the same as prompt/completion/label.
"""

from __future__ import annotations

import random
import string
from typing import Dict, List

import torch

CHARS = string.digits + string.ascii_letters + " +-*=?:.,!\n"
SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def tiny_tokenizer():
    """A character-level ``PreTrainedTokenizerFast`` built in memory (see the module docstring)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS + list(CHARS))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("(?m)."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", vocab["<bos>"])])
    out = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>",
                                  unk_token="<unk>")
    out.chat_template = CHAT_TEMPLATE
    return out


def tiny_model(vocab_size: int, seed: int = 0, hidden_size: int = 32, layers: int = 2):
    """A ``LlamaForCausalLM`` of ``layers`` layers and ``hidden_size`` from a config, weights
    drawn with ``seed``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=256, tie_word_embeddings=False, attention_dropout=0.0,
                      pad_token_id=0, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg)


def _problems(n: int, seed: int):
    rng = random.Random(seed)
    for _ in range(n):
        a, b = rng.randint(0, 20), rng.randint(0, 20)
        wrong = a + b + rng.choice([-3, -2, -1, 1, 2, 3])
        yield f"{a}+{b}=", str(a + b), str(wrong)


def tiny_pairs(n: int = 16, seed: int = 0, style: str = "string") -> Dict[str, List]:
    """Paired data as columns: ``style`` ``"string"`` (prompt/chosen/rejected strings),
    ``"conversational"`` (messages) or ``"implicit"`` (chosen/rejected whole conversations,
    no prompt column)."""
    cols: Dict[str, List] = {"prompt": [], "chosen": [], "rejected": []}
    for q, good, bad in _problems(n, seed):
        if style == "string":
            cols["prompt"].append(q)
            cols["chosen"].append(good)
            cols["rejected"].append(bad)
        else:
            user = [{"role": "user", "content": q}]
            cols["prompt"].append(user)
            cols["chosen"].append([{"role": "assistant", "content": good}])
            cols["rejected"].append([{"role": "assistant", "content": bad}])
    if style == "implicit":
        return {"chosen": [p + c for p, c in zip(cols["prompt"], cols["chosen"])],
                "rejected": [p + r for p, r in zip(cols["prompt"], cols["rejected"])]}
    if style not in ("string", "conversational"):
        raise ValueError(f"style must be 'string', 'conversational' or 'implicit', got {style!r}")
    return cols


def tiny_unpaired(n: int = 16, seed: int = 0) -> Dict[str, List]:
    """Unpaired data as columns (prompt/completion/label strings): each problem with its right
    answer (label True) or a wrong one (False), alternately."""
    cols: Dict[str, List] = {"prompt": [], "completion": [], "label": []}
    for i, (q, good, bad) in enumerate(_problems(n, seed)):
        cols["prompt"].append(q)
        cols["completion"].append(good if i % 2 == 0 else bad)
        cols["label"].append(i % 2 == 0)
    return cols
