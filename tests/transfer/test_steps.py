"""The step configs derived from one `recipe: transfer` config."""

from __future__ import annotations

from pathlib import Path

import pytest

from open_autoglm.config import validate_config
from open_autoglm.transfer.steps import finetune_config, pretrain_config, second_task_config


def _config(tmp_path: Path, **transfer: object):
    return validate_config(
        {
            "name": "tr",
            "output_dir": str(tmp_path),
            "recipe": "transfer",
            "model": {"name": "some/hub-model", "revision": "v1"},
            "data": {
                "train": "labelled.tsv",
                "columns": ["label", "text"],
                "max_length": 48,
                "max_rows": 500,
            },
            "method": {"name": "lora", "r": 4},
            "train": {"lr": 1e-3, "epochs": 3, "freeze_layers": 2, "layer_lr_decay": 0.8},
            "transfer": {"domain_text": "domain.jsonl", "text_field": "body", "max_rows": 90, **transfer},
        }
    )


def test_pretrain_step_trains_the_whole_model_on_the_domain_text(tmp_path: Path) -> None:
    config = _config(tmp_path, pretrain_lr=2e-5, pretrain_epochs=0.5)
    step = pretrain_config(config, tmp_path / "tr" / "steps" / "pretrain")
    assert step.task == "pretrain"
    assert step.run_dir == tmp_path / "tr" / "steps" / "pretrain"
    assert step.method.name == "full"
    assert (step.train.lr, step.train.epochs) == (2e-5, 0.5)
    assert (step.train.freeze_layers, step.train.layer_lr_decay) == (0, 1.0)
    data = step.data
    assert (str(data.train), data.text_field, data.max_rows, data.columns) == (
        "domain.jsonl",
        "body",
        90,
        None,
    )
    assert (data.test_ratio, data.max_length) == (0.0, 48)


def test_finetune_step_keeps_the_method_and_swaps_the_model(tmp_path: Path) -> None:
    config = _config(tmp_path)
    adapted = finetune_config(config, tmp_path / "finetune", str(tmp_path / "adapted"))
    assert adapted.task == "classification"
    assert adapted.model.name == str(tmp_path / "adapted")
    assert adapted.model.revision is None  # a local folder
    assert adapted.method == config.method
    assert adapted.train == config.train
    assert adapted.data == config.data
    control = finetune_config(config, tmp_path / "control", config.model.name)
    assert control.model == config.model


def test_second_task_step_needs_a_second_task(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="second_task"):
        second_task_config(_config(tmp_path), tmp_path / "probe")
    config = _config(tmp_path, second_task={"train": "other.jsonl", "max_length": 32})
    step = second_task_config(config, tmp_path / "probe")
    assert (str(step.data.train), step.data.max_length, step.task) == ("other.jsonl", 32, "classification")
