"""Align a Hugging Face causal LM with BNF (or any objective of bnf.objective_names()) through
bnf.trainer.BNFTrainer.

With no arguments it trains a tiny 2-layer Llama built from a config, with a local
character-level tokenizer, on arithmetic preference pairs (nothing is downloaded). For real
use give a model (a local path or a hub name) and a data file in TRL's format (JSON Lines:
prompt/chosen/rejected, or prompt/completion/label; strings or chat messages):

    python examples/align_hf.py --model path/to/model --data prefs.jsonl --output-dir out \\
        --lr 5e-7 --batch-size 4 --grad-accum 8 --bf16
    accelerate launch --num_processes 8 examples/align_hf.py --model ... --data ...   # 8 GPUs
"""

import argparse
import json


def parse_args(argv=None):
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model path or name (default: a tiny Llama built locally)")
    p.add_argument("--tokenizer", help="tokenizer path or name (default: --model's)")
    p.add_argument("--ref-model", help="reference model (default: the initial --model)")
    p.add_argument("--data", help="JSON Lines file in TRL's format (default: built-in arithmetic pairs)")
    p.add_argument("--eval-data", help="JSON Lines file to evaluate on (default: none; built-in data: itself)")
    p.add_argument("--output-dir", default="bnf_align_out")
    p.add_argument("--objective", default="bnf")
    p.add_argument("--objective-kwargs", default="{}", help='JSON, e.g. \'{"beta": 0.1}\'')
    p.add_argument("--pairing-ratio", type=float, default=1.0)
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--max-prompt-length", type=int)
    p.add_argument("--lr", type=float, help="learning rate (default 1e-2 for the tiny model, 5e-7 otherwise)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, default=-1)
    p.add_argument("--batch-size", type=int, default=4, help="rows (pairs or single responses) per device")
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--fused-head", action="store_true", help="loss from the hidden states, no logits")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--seed", type=int, default=42)
    return p.parse_args(argv)


def main(argv=None):
    """Build the model, tokenizer, data and trainer from the command line and train."""
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bnf.trainer import BNFConfig, BNFTrainer
    from bnf.trainer.tiny import tiny_model, tiny_pairs, tiny_tokenizer

    a = parse_args(argv)
    tiny = a.model is None
    if tiny:
        tok = tiny_tokenizer()
        model = tiny_model(len(tok), seed=a.seed)
    else:
        tok = AutoTokenizer.from_pretrained(a.tokenizer or a.model)
        model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.bfloat16 if a.bf16 else None)
    if a.data is None:
        train = datasets.Dataset.from_dict(tiny_pairs(64, seed=a.seed))
        evald = train
    else:
        train = datasets.load_dataset("json", data_files=a.data, split="train")
        evald = None if a.eval_data is None else datasets.load_dataset("json", data_files=a.eval_data, split="train")
    args = BNFConfig(
        output_dir=a.output_dir, objective=a.objective, objective_kwargs=json.loads(a.objective_kwargs),
        pairing_ratio=a.pairing_ratio, max_length=a.max_length, max_prompt_length=a.max_prompt_length,
        learning_rate=a.lr if a.lr is not None else (1e-2 if tiny else 5e-7), num_train_epochs=a.epochs,
        max_steps=a.max_steps, per_device_train_batch_size=a.batch_size, gradient_accumulation_steps=a.grad_accum,
        use_fused_head=a.fused_head, bf16=a.bf16, seed=a.seed, logging_steps=1 if tiny else 10,
        lr_scheduler_type="cosine", warmup_steps=0.1, report_to="none", save_strategy="no" if tiny else "epoch",
        use_cpu=tiny or not torch.cuda.is_available(),
    )
    trainer = BNFTrainer(model, args, train_dataset=train, eval_dataset=evald, processing_class=tok,
                         ref_model=a.ref_model)
    if evald is not None:
        print("before:", trainer.evaluate())
    trainer.train()
    if evald is not None:
        print("after:", trainer.evaluate())
    trainer.save_model(a.output_dir)
    return trainer


if __name__ == "__main__":
    main()
