"""Shared helpers of the test_hf_*.py tests (not tests): the tiny trainer setup."""

import datasets
import torch

from bnf.trainer import BNFConfig, BNFTrainer
from bnf.trainer.tiny import tiny_model, tiny_pairs, tiny_tokenizer, tiny_unpaired

torch.set_num_threads(1)


def config(tmp_path, **kw):
    """A BNFConfig for a short CPU run in ``tmp_path`` (overrides in ``kw``)."""
    base = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, per_device_eval_batch_size=8,
                max_steps=8, learning_rate=1e-2, lr_scheduler_type="constant", logging_steps=2, report_to="none",
                use_cpu=True, save_strategy="no", disable_tqdm=True, seed=7)
    base.update(kw)
    return BNFConfig(**base)


def dataset(kind="string", n=16, seed=0):
    """Tiny data: ``string``, ``conversational``, ``implicit`` (paired) or ``unpaired``."""
    cols = tiny_unpaired(n, seed) if kind == "unpaired" else tiny_pairs(n, seed, style=kind)
    return datasets.Dataset.from_dict(cols)


def trainer(tmp_path, data=None, model_seed=0, ref_model=None, eval_dataset=None, **kw):
    """A BNFTrainer on the tiny model (seeded), tokenizer and ``data`` (default paired strings)."""
    tok = tiny_tokenizer()
    model = tiny_model(len(tok), seed=model_seed)
    return BNFTrainer(model, config(tmp_path, **kw), train_dataset=dataset() if data is None else data,
                      eval_dataset=eval_dataset, processing_class=tok, ref_model=ref_model)


def params(tr):
    """The trained model's parameters, detached copies."""
    return {k: v.detach().clone() for k, v in tr.accelerator.unwrap_model(tr.model).state_dict().items()}


def max_diff(a, b):
    """The largest absolute difference between two parameter dicts."""
    return max((a[k] - b[k]).abs().max().item() for k in a)
