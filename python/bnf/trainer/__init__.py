"""Hugging Face / TRL-style training with BNF: :class:`BNFConfig` (``TrainingArguments``) and
:class:`BNFTrainer` (``transformers.Trainer``). Needs the ``hf`` extra (``pip install
./python[hf]``: transformers, accelerate, datasets).

::

    from bnf.trainer import BNFConfig, BNFTrainer
    args = BNFConfig(output_dir="out", objective="bnf", learning_rate=5e-7, max_length=1024)
    BNFTrainer(model, args, train_dataset=dataset, processing_class=tokenizer).train()

:mod:`bnf.trainer.tiny` builds a tiny model, tokenizer and data locally (tests, the example).
"""

from .config import BNFConfig
from .data import BNFCollator, apply_pairing_ratio, process
from .trainer import DIAGNOSTICS, BNFTrainer, bnf_scale

__all__ = ["BNFCollator", "BNFConfig", "BNFTrainer", "DIAGNOSTICS", "apply_pairing_ratio", "bnf_scale", "process"]
