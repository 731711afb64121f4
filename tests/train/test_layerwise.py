"""Layer-wise learning-rate decay and freezing the bottom layers, on a 2-layer BERT: the rates each parameter group
gets (full and LoRA), what freezing stops, and both knobs as search parameters."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers import AutoModelForSequenceClassification

from open_autoglm.config import validate_config
from open_autoglm.search.space import apply_overrides, parse_space
from open_autoglm.train.job import fit
from open_autoglm.train.layerwise import freeze_bottom_layers, layerwise_param_groups


def _classifier(path: Path) -> nn.Module:
    return AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=3)


def _lora(model: nn.Module) -> nn.Module:
    config = LoraConfig(task_type="SEQ_CLS", r=2, target_modules=["query", "value"])
    return get_peft_model(model, config)


def _rates(model: nn.Module, groups: list[dict]) -> dict[str, tuple[float, float]]:
    """Parameter name -> (lr, weight decay) of the group that holds it."""
    by_id = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    return {name: by_id[id(p)] for name, p in model.named_parameters() if id(p) in by_id}


def _decayed(model: nn.Module) -> set[str]:
    return {n for n, _ in model.named_parameters() if "bias" not in n and "LayerNorm" not in n}


def test_full_model_rates_fall_with_depth(tiny_encoder: Path) -> None:
    model = _classifier(tiny_encoder)
    rates = _rates(model, layerwise_param_groups(model, 1.0, 0.01, 0.5, _decayed(model)))
    assert len(rates) == len(list(model.parameters()))  # every trainable parameter is in a group
    assert rates["classifier.weight"] == (1.0, 0.01)
    assert rates["bert.pooler.dense.weight"] == (1.0, 0.01)  # after the stack: the head's rate
    assert rates["bert.encoder.layer.1.attention.self.query.weight"] == (0.5, 0.01)  # d^(L-k), L=2, k=1
    assert rates["bert.encoder.layer.0.output.dense.weight"] == (0.25, 0.01)
    assert rates["bert.encoder.layer.0.output.dense.bias"] == (0.25, 0.0)  # no weight decay on biases
    assert rates["bert.embeddings.word_embeddings.weight"] == (0.125, 0.01)  # d^(L+1)
    assert rates["bert.embeddings.LayerNorm.weight"] == (0.125, 0.0)  # nor on norms


def test_lora_parameters_take_their_layers_rate(tiny_encoder: Path) -> None:
    model = _lora(_classifier(tiny_encoder))
    groups = layerwise_param_groups(model, 2.0, 0.0, 0.5, _decayed(model))
    rates = {name: lr for name, (lr, _) in _rates(model, groups).items()}
    assert set(rates) == {n for n, p in model.named_parameters() if p.requires_grad}  # frozen base left out
    lora = {n: lr for n, lr in rates.items() if "lora_" in n}
    assert lora and all(lr == (1.0 if ".layer.1." in n else 0.5) for n, lr in lora.items())
    assert all(lr == 2.0 for n, lr in rates.items() if "classifier" in n)
    assert groups[0]["lr"] == 2.0  # the head's group first: it is the rate the Trainer logs


def test_freeze_stops_embeddings_and_bottom_layers_lora_included(tiny_encoder: Path) -> None:
    model = _lora(_classifier(tiny_encoder))
    freeze_bottom_layers(model, 1)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(".layer.0." in n for n in trainable)
    assert any(".layer.1." in n and "lora_" in n for n in trainable)
    assert any("classifier" in n for n in trainable)


def test_freeze_all_layers_is_refused(tiny_encoder: Path) -> None:
    with pytest.raises(ValueError, match=r"train.freeze_layers=2: the model has 2 transformer layers"):
        freeze_bottom_layers(_classifier(tiny_encoder), 2)


def test_frozen_layers_do_not_move_in_training(tmp_path: Path, tiny_encoder: Path, topic_file: Path) -> None:
    config = validate_config(
        {
            "name": "freeze",
            "output_dir": str(tmp_path),
            "model": {"name": str(tiny_encoder)},
            "data": {"train": str(topic_file), "max_length": 32, "val_ratio": 0.2, "test_ratio": 0.0},
            "method": {"name": "full"},
            "train": {"epochs": 1, "lr": 1e-2, "batch_size": 8, "freeze_layers": 1, "layer_lr_decay": 0.8},
            "quiet": True,
        }
    )
    result = fit(config, tmp_path / "trial", baseline=False)
    before = dict(_classifier(tiny_encoder).named_parameters())
    after = dict(result.trainer.model.named_parameters())
    for name in (
        "bert.embeddings.word_embeddings.weight",
        "bert.encoder.layer.0.attention.self.query.weight",
    ):
        assert torch.equal(after[name].cpu(), before[name]), f"{name} moved though frozen"
    moved = "bert.encoder.layer.1.attention.self.query.weight"
    assert not torch.allclose(after[moved].cpu(), before[moved]), f"{moved} should have trained"
    initial_rates = sorted({g["initial_lr"] for g in result.trainer.optimizer.param_groups})
    assert initial_rates == pytest.approx([0.8e-2, 1e-2])  # layer 1 at lr·0.8, the head at lr; nothing below


def test_layer_knobs_are_search_parameters() -> None:
    space = parse_space(
        {
            "train.layer_lr_decay": {"type": "float", "low": 0.6, "high": 1.0},
            "train.freeze_layers": {"type": "int", "low": 0, "high": 3},
        },
        "search.space",
    )
    config = validate_config({"task": "classification"}, "test")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(3):
        sampled = space.sample(study.ask())
        trial_config = apply_overrides(config, space.overrides(sampled), "trial")
        assert trial_config.train.layer_lr_decay == sampled["train.layer_lr_decay"]
        assert trial_config.train.freeze_layers == sampled["train.freeze_layers"]
