"""Helper of test_hf_ddp.py (not a test): trains the tiny model with BNFTrainer for a few steps
and saves the final parameters to argv[1]. Run as one process (plain ``python``) or under
``torchrun --nproc_per_node N`` (gloo on CPU); argv[2] is the per-process batch size, so the
global batch is ``N x argv[2]``, argv[3] the pairing ratio, argv[4] the learning rate, argv[5] the optimizer."""

import os
import sys

import datasets
import torch

from bnf.trainer import BNFConfig, BNFTrainer
from bnf.trainer.tiny import tiny_model, tiny_pairs, tiny_tokenizer


def main():
    out, per_device, ratio = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    torch.set_num_threads(1)
    tok = tiny_tokenizer()
    model = tiny_model(len(tok), seed=3)
    ds = datasets.Dataset.from_dict(tiny_pairs(32, seed=5))
    args = BNFConfig(
        output_dir=os.path.join(os.path.dirname(out), "run"), per_device_train_batch_size=per_device, max_steps=4,
        learning_rate=float(sys.argv[4]), optim=sys.argv[5], lr_scheduler_type="constant", weight_decay=0.0, seed=11, pairing_ratio=ratio,
        logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, ddp_backend="gloo" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        disable_tqdm=True, dataloader_num_workers=0,
    )
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    trainer = BNFTrainer(model, args, train_dataset=ds, processing_class=tok)
    trainer.train()
    if trainer.args.process_index == 0:
        params = {k: v.detach().clone() for k, v in trainer.accelerator.unwrap_model(trainer.model).state_dict().items()}
        torch.save({"params": params, "init": init, "world": trainer.args.world_size, "log": trainer.state.log_history}, out)
    if torch.distributed.is_initialized():
        # Gloo's threads must stop before the interpreter exits; left to static destructors they
        # abort the process now and then ("terminate called without an active exception").
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
