"""Merging an adapter: the merged folder is a full model that predicts what base+adapter predicted."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import load_run_data
from export_fixtures import trained_lora_fixture  # noqa: F401  (the trained_lora fixture)

from open_autoglm.export.merge import logits_of, merge_model
from open_autoglm.models import load_finetuned


def test_merged_lora_is_a_full_model_with_the_same_logits(trained_lora, tmp_path) -> None:
    config = trained_lora
    texts = [r["text"] for r in load_run_data(config).splits["test"]]
    merged = merge_model(config.run_dir / "model", tmp_path / "merged", texts[:8])
    assert merged.max_abs_diff <= 1e-4
    folder = tmp_path / "merged"
    assert (folder / "model.safetensors").exists() and not (folder / "adapter_config.json").exists()
    meta = json.loads((folder / "autoglm.json").read_text())
    assert meta["merged_from"] == "lora" and meta["labels"] and meta["objective"] == "seq_cls"

    adapter, tokenizer, _ = load_finetuned(config.run_dir / "model")
    full, _, _ = load_finetuned(folder)
    assert not hasattr(full, "peft_config")  # loaded as a plain transformers model
    expected = logits_of(adapter, tokenizer, texts, 24)
    got = logits_of(full, tokenizer, texts, 24)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    assert got.argmax(-1).tolist() == expected.argmax(-1).tolist()


def test_a_broken_merge_is_refused(trained_lora, tmp_path, monkeypatch) -> None:
    from peft.tuners.lora import LoraModel

    original = LoraModel.merge_and_unload

    def perturbed(self, *args, **kwargs):
        model = original(self, *args, **kwargs)
        with torch.no_grad():
            model.classifier.weight.add_(0.1)
        return model

    monkeypatch.setattr(LoraModel, "merge_and_unload", perturbed)
    with pytest.raises(ValueError, match="differ from base"):
        merge_model(trained_lora.run_dir / "model", tmp_path / "merged", ["alpha beta", "gamma"])
    assert not (tmp_path / "merged").exists()


def test_a_full_fine_tune_is_copied_as_it_is(trained_lora, tmp_path) -> None:
    from open_autoglm.train.job import run_train

    config = trained_lora.model_copy(
        update={
            "name": "full",
            "method": trained_lora.method.model_validate({"name": "full"}),
            "train": trained_lora.train.model_copy(update={"epochs": 1}),
        }
    )
    run_train(config)
    merged = merge_model(config.run_dir / "model", tmp_path / "merged", ["unused"])
    assert merged.max_abs_diff == 0.0
    assert sorted(p.name for p in (tmp_path / "merged").iterdir()) == sorted(
        p.name for p in (config.run_dir / "model").iterdir()
    )
    model, _, meta = load_finetuned(tmp_path / "merged")
    assert meta["method"] == "full" and not hasattr(model, "peft_config")


def test_a_causal_lm_adapter_exports_as_a_merged_model_that_serves(tmp_path, tiny_chat_decoder) -> None:
    """SFT LoRA on the tiny chat Llama → `autoglm export` → merged/ reloads as a full model that generates what
    base+adapter generates."""
    from conftest import SFT_PAIRS, write_jsonl

    from open_autoglm.cli import main
    from open_autoglm.config import validate_config
    from open_autoglm.serve.generation import Sampling, encode_prompt, generate_replies
    from open_autoglm.serve.loading import load_served
    from open_autoglm.train.job import run_train

    data = write_jsonl(tmp_path / "sft.jsonl", [{"prompt": p, "response": r} for p, r in SFT_PAIRS * 8])
    raw = {
        "name": "sft",
        "task": "sft",
        "output_dir": str(tmp_path),
        "model": {"name": str(tiny_chat_decoder), "device": "cpu"},
        "data": {"train": str(data), "max_length": 24, "dedup": {"exact": False, "near": False}},
        "method": {"name": "lora", "r": 4},
        "train": {"epochs": 1, "lr": 5e-3, "batch_size": 16, "seed": 3},
        "quiet": True,
    }
    config = validate_config(raw)
    run_train(config)
    (tmp_path / "sft.yaml").write_text(json.dumps(raw), encoding="utf-8")  # JSON is YAML
    assert main(["export", "-c", str(tmp_path / "sft.yaml"), "--model", str(config.run_dir / "model")]) == 0

    report = json.loads((config.run_dir / "export" / "export_report.json").read_text())
    assert report["task"] == "sft" and report["variants"] == [] and report["merge_max_abs_diff"] <= 1e-4
    merged_dir = config.run_dir / "export" / "merged"
    assert (merged_dir / "model.safetensors").exists() and not (merged_dir / "adapter_config.json").exists()
    replies = {}
    for name, folder in (("adapter", config.run_dir / "model"), ("merged", merged_dir)):
        served = load_served(folder)
        ids = encode_prompt(
            served, served.chat_prompt([{"role": "user", "content": "what do cats say"}]), chat=True
        )
        replies[name] = generate_replies(served, [(ids["input_ids"][0].tolist(), Sampling(6, 0.0, 1.0))])[0]
    assert replies["merged"] == replies["adapter"]
