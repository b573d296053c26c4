"""bnf.trainer (BNFConfig, BNFTrainer) on a tiny 2-layer Llama built from a config and a local
character-level tokenizer: nothing is downloaded."""

import json
import math

import datasets
import pytest
import torch

import bnf
from bnf.trainer import BNFConfig, BNFTrainer, DIAGNOSTICS, bnf_scale
from bnf.trainer import data as hfdata
from bnf.trainer.tiny import tiny_model, tiny_tokenizer
from hf_common import config, dataset, max_diff, params, trainer


def _train_eval(tr):
    before = tr.evaluate()
    tr.train()
    after = tr.evaluate()
    return before, after


@pytest.mark.parametrize("kind", ["string", "conversational", "implicit", "unpaired"])
def test_a_few_steps_decrease_the_loss(tmp_path, kind):
    data = dataset(kind)
    tr = trainer(tmp_path, data, eval_dataset=data)
    before, after = _train_eval(tr)
    assert after["eval_loss"] < before["eval_loss"] - 0.05, (before, after)
    # The chosen responses gained log-prob against the reference, the rejected ones less.
    assert after["eval_logps_shift_chosen"] > after.get("eval_logps_shift_rejected", -math.inf)
    assert after["eval_logps_shift_chosen"] > 0.2
    assert 0 < after["eval_c_mean"] < 1  # below the reference somewhere: the feedback acts
    logged = [l for l in tr.state.log_history if "loss" in l]
    assert len(logged) == 4 and all("c_mean" in l and "logps_shift_chosen" in l for l in logged)
    if kind != "unpaired":
        assert after["eval_accuracy"] > 0.6
        assert all("accuracy" in l for l in logged)
    else:
        assert "eval_accuracy" not in after  # no pairs: nothing to average, left out


def test_tokenization_masks_the_prompt_and_scores_the_completion_and_eos(tmp_path):
    tok = tiny_tokenizer()
    ids, labels = hfdata.tokenize_response(tok, "3+4=", "7", 0, None, None)
    assert ids == [tok.bos_token_id] + tok("3+4=7", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert labels == [-100] * 5 + ids[5:] and labels[-1] == tok.eos_token_id
    conv = hfdata.tokenize_response(tok, [{"role": "user", "content": "3+4="}],
                                    [{"role": "assistant", "content": "7"}], 0, None, None)
    text = tok.decode(conv[0])
    assert text == "user: 3+4=\nassistant: 7\n<eos>", text
    scored = [t for t, y in zip(conv[0], conv[1]) if y != -100]
    assert tok.decode(scored) == "7\n<eos>"
    # Truncation: the prompt keeps its end, the completion is cut to max_length.
    ids, labels = hfdata.tokenize_response(tok, "12345678", "abcdef", 0, 8, 4)
    assert tok.decode(ids) == "5678abcd" and labels[:4] == [-100] * 4
    with pytest.raises(ValueError, match="row 3: the prompt has 9 tokens.*max_length = 9"):
        hfdata.tokenize_response(tok, "12345678", "abc", 3, 9, None)


def test_implicit_prompt_is_the_shared_beginning(tmp_path):
    tok = tiny_tokenizer()
    explicit = hfdata.process(dataset("conversational"), tok, objective_pairwise=False, keep_dispreferred=True,
                              pairing_ratio=1.0, seed=0, max_length=None, max_prompt_length=None)
    implicit = hfdata.process(dataset("implicit"), tok, objective_pairwise=False, keep_dispreferred=True,
                              pairing_ratio=1.0, seed=0, max_length=None, max_prompt_length=None)
    assert explicit.to_dict() == implicit.to_dict()
    p, c, r = hfdata.implicit_prompt("Q: 2+2? A: 4", "Q: 2+2? A: 5", 0)
    assert (p, c, r) == ("Q: 2+2? A: ", "4", "5")
    with pytest.raises(ValueError, match="row 2: chosen and rejected are the same"):
        hfdata.implicit_prompt([{"role": "user", "content": "x"}], [{"role": "user", "content": "x"}], 2)


def test_pairing_ratio_mirrors_the_rust_trainer():
    # SplitMix64 as trainer/src/rng.rs (the published test vector for seed 0).
    assert hfdata.SplitMix64(0).next_u64() == 0xE220A8397B1DCDAF
    units = [{"row": i, "prompt": "p", "responses": [("c", 1.0), ("r", -1.0)]} for i in range(200)]
    assert hfdata.apply_pairing_ratio(units, 1.0, 7) == units
    none = hfdata.apply_pairing_ratio(units, 0.0, 7)
    assert all(len(u["responses"]) == 1 for u in none)
    chosen = sum(u["responses"][0][1] > 0 for u in none)
    assert 60 < chosen < 140
    half = hfdata.apply_pairing_ratio(units, 0.5, 7)
    paired = sum(len(u["responses"]) == 2 for u in half)
    assert 60 < paired < 140
    assert hfdata.apply_pairing_ratio(units, 0.5, 7) == half  # seeded
    # The draw by hand: one uniform per pair, a second one when it splits (< 0.5 drops chosen).
    rng = hfdata.SplitMix64(7)
    for u in half:
        if rng.uniform() >= 0.5:
            assert len(u["responses"]) == 1 and (u["responses"][0][1] > 0) == (rng.uniform() >= 0.5)
        else:
            assert len(u["responses"]) == 2
    with pytest.raises(ValueError, match="pairing_ratio must be in"):
        hfdata.apply_pairing_ratio(units, 1.5, 7)


def test_reference_is_precomputed_per_token_and_mismatches_are_refused(tmp_path):
    tr = trainer(tmp_path, max_steps=1)
    row = tr.train_dataset[3]
    model = tr.model
    batch = hfdata.BNFCollator(0)([row])
    want = bnf.reference_logps(model, batch["input_ids"], batch["labels"], attention_mask=batch["attention_mask"])
    for k, ref in enumerate(row["ref_logps"]):
        assert torch.allclose(torch.tensor(ref), want[k, : len(ref)], atol=1e-5)
        assert all(r == 0.0 for r, y in zip(ref, row["labels"][k]) if y == -100)
    processed = tr.train_dataset
    # The processed dataset is reused as is (no second reference pass).
    again = trainer(tmp_path, processed, model_seed=5, max_steps=1)
    assert again.train_dataset["ref_logps"] == processed["ref_logps"]
    # Tokens that are not the ones the reference scored: refused, naming the row.
    bad = processed.map(lambda u, i: {"labels": [[-100] * 8 + l[8:] for l in u["labels"]]} if i == 2 else {},
                        with_indices=True)
    with pytest.raises(ValueError, match="train_dataset row 2: ref_fingerprint"):
        trainer(tmp_path, bad)
    short = processed.map(lambda u, i: {"ref_logps": [r[:-1] for r in u["ref_logps"]]} if i == 1 else {},
                          with_indices=True)
    n = len(processed[1]["labels"][0])
    with pytest.raises(ValueError, match=f"row 1, response 0: ref_logps has {n - 1} values but labels has {n}"):
        trainer(tmp_path, short)
    with pytest.raises(ValueError, match="no ref_fingerprint column"):
        trainer(tmp_path, processed.remove_columns("ref_fingerprint"))
    # Another tokenizer (one more token) gives other fingerprints.
    tok = tiny_tokenizer()
    tok.add_tokens(["<new>"])
    with pytest.raises(ValueError, match="row 0: ref_fingerprint"):
        BNFTrainer(tiny_model(len(tok)), config(tmp_path), train_dataset=processed, processing_class=tok)


def test_ref_model_is_used_instead_of_the_policy(tmp_path):
    tok = tiny_tokenizer()
    ref = tiny_model(len(tok), seed=9)
    with_ref = trainer(tmp_path, ref_model=ref, max_steps=1)
    plain = trainer(tmp_path, max_steps=1)
    batch = hfdata.BNFCollator(0)([with_ref.train_dataset[0]])
    want = bnf.reference_logps(ref, batch["input_ids"], batch["labels"], attention_mask=batch["attention_mask"])
    got = torch.tensor(with_ref.train_dataset[0]["ref_logps"][0])
    assert torch.allclose(got, want[0, : len(got)], atol=1e-5)
    assert not torch.allclose(got, torch.tensor(plain.train_dataset[0]["ref_logps"][0]), atol=1e-3)


def test_fused_head_gives_the_loss_and_training_of_the_logits(tmp_path):
    a = trainer(tmp_path, max_steps=4)
    b = trainer(tmp_path, max_steps=4, use_fused_head=True, fused_chunk_size=7)
    batch = a.data_collator([a.train_dataset[i] for i in range(4)])
    la = a.compute_loss(a.model, batch)
    lb = b.compute_loss(b.model, batch)
    assert torch.allclose(la, lb, atol=1e-5), (la, lb)
    a.train()
    b.train()
    assert max_diff(params(a), params(b)) < 1e-4
    la = [l["c_mean"] for l in a.state.log_history if "c_mean" in l]
    lb = [l["c_mean"] for l in b.state.log_history if "c_mean" in l]
    assert la == pytest.approx(lb, abs=1e-4)


def test_c_mean_is_the_cores_bnf_scale(tmp_path):
    tr = trainer(tmp_path, max_steps=3)
    tr.train()
    batch = tr.data_collator([tr.train_dataset[i] for i in range(6)])
    with torch.no_grad():
        logits = tr.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        _, stats = bnf.bnf_loss(logits, batch["labels"], batch["ref_logps"], preference=batch["preference"],
                                return_stats=True)
        logp = bnf.reference_logps(logits, labels=batch["labels"])
    mine = bnf_scale(logp, batch["ref_logps"])
    assert torch.allclose(mine[stats.scored], stats.c[stats.scored], atol=1e-5)
    assert stats.c[stats.scored].min() < 0.99  # not trivially 1


def test_global_batch_mean_under_gradient_accumulation(tmp_path):
    # pairing_ratio 0.5 gives micro-batches of unequal numbers of responses; the loss is scaled
    # by the step's total, so 2 x 2 accumulated equals one batch of 4.
    one = trainer(tmp_path, per_device_train_batch_size=4, max_steps=3, pairing_ratio=0.5, optim="sgd",
                  learning_rate=0.5)
    two = trainer(tmp_path, per_device_train_batch_size=2, gradient_accumulation_steps=2, max_steps=3,
                  pairing_ratio=0.5, optim="sgd", learning_rate=0.5)
    sizes = [len(u["input_ids"]) for u in one.train_dataset]
    assert 1 in sizes and 2 in sizes
    one.train()
    two.train()
    init = params(trainer(tmp_path, max_steps=1))
    assert max_diff(params(one), init) > 1e-2
    assert max_diff(params(one), params(two)) < 1e-5


@pytest.mark.parametrize("objective,kind,kwargs", [("dpo", "string", {"beta": 0.5}), ("simpo", "conversational", {}),
                                                   ("kto", "unpaired", {}), ("nll", "string", {})])
def test_other_objectives_train(tmp_path, objective, kind, kwargs):
    data = dataset(kind)
    tr = trainer(tmp_path, data, eval_dataset=data, objective=objective, objective_kwargs=kwargs)
    if objective == "nll":
        assert all(p == [1.0] for p in tr.train_dataset["preference"])  # SFT trains on the chosen side only
    before, after = _train_eval(tr)
    assert after["eval_loss"] < before["eval_loss"] - 0.01, (before, after)


def test_bad_configuration_is_refused(tmp_path):
    with pytest.raises(ValueError, match="objective dpo is pairwise.*pairing_ratio = 0.5"):
        config(tmp_path, objective="dpo", pairing_ratio=0.5)
    with pytest.raises(ValueError, match="pairing_ratio must be a number in \\[0, 1\\], got 2"):
        config(tmp_path, pairing_ratio=2)
    with pytest.raises(ValueError, match="beta"):
        config(tmp_path, objective="dpo", objective_kwargs={"beta": -1.0})
    with pytest.raises(ValueError):
        config(tmp_path, objective="nope")
    with pytest.raises(ValueError, match="max_length must be a positive int or None, got 0"):
        config(tmp_path, max_length=0)
    with pytest.raises(ValueError, match="pairwise and needs every response in a pair, but the data is unpaired"):
        trainer(tmp_path, dataset("unpaired"), objective="dpo")
    with pytest.raises(ValueError, match="train_dataset has columns \\['text'\\]"):
        trainer(tmp_path, datasets.Dataset.from_dict({"text": ["a"]}))
    with pytest.raises(ValueError, match="row 1: label = 2 must be true or false"):
        trainer(tmp_path, datasets.Dataset.from_dict({"prompt": ["a", "b"], "completion": ["c", "d"], "label": [1, 2]}))


def test_checkpoint_save_and_resume(tmp_path):
    full = trainer(tmp_path / "full", max_steps=6)
    full.train()
    first = trainer(tmp_path / "cut", max_steps=6, save_strategy="steps", save_steps=3)
    first.train()
    ckpt = tmp_path / "cut" / "out" / "checkpoint-3"
    saved = json.loads((ckpt / "bnf_reference.json").read_text())
    assert saved["rows"] == 16 and len(saved["sums"]) == 16
    resumed = trainer(tmp_path / "cut", max_steps=6, save_strategy="steps", save_steps=3)
    resumed.train(resume_from_checkpoint=str(ckpt))
    assert resumed.state.global_step == 6
    assert max_diff(params(full), params(resumed)) < 1e-6
    # A trainer whose reference is the checkpoint's own weights (not the initial model): refused.
    tok = tiny_tokenizer()
    from transformers import LlamaForCausalLM

    wrong = BNFTrainer(LlamaForCausalLM.from_pretrained(str(ckpt)), config(tmp_path / "cut", max_steps=6),
                       train_dataset=dataset(), processing_class=tok)
    with pytest.raises(ValueError, match="summed reference log-prob was .* the reference differs"):
        wrong.train(resume_from_checkpoint=str(ckpt))
    other = trainer(tmp_path / "cut", dataset(seed=1), max_steps=6)
    with pytest.raises(ValueError, match="token hash"):
        other.train(resume_from_checkpoint=True)


def test_diagnostics_are_named():
    assert DIAGNOSTICS == ("accuracy", "logps_shift_chosen", "logps_shift_rejected", "c_mean")
