"""Training options run through the whole job on tiny models: precision, accumulation, checkpointing,
optimizers, schedules, imbalanced-label losses."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from open_autoglm.config import validate_config
from open_autoglm.train.job import fit


def _fit(tmp_path: Path, model: Path, data: Path, task: str = "classification", **train) -> object:
    config = validate_config(
        {
            "name": "opts",
            "output_dir": str(tmp_path),
            "task": task,
            "model": {"name": str(model)},
            "data": {
                "train": str(data),
                "max_length": 32,
                "val_ratio": 0.2,
                "test_ratio": 0.0,
                "dedup": {"exact": False, "near": False},
            },
            "method": {"name": train.pop("method", "lora")},
            "train": {"epochs": 2, "lr": 1e-2, "batch_size": 8, **train},
            "quiet": True,
        }
    )
    return fit(config, tmp_path / "trial")


@pytest.mark.parametrize(
    "options",
    [
        {
            "grad_accum": 2,
            "optimizer": "sgd",
            "lr": 0.1,
            "scheduler": {"name": "cosine", "warmup_ratio": 0.1},
        },
        {"optimizer": "adam", "scheduler": {"name": "step", "step_size": 5, "gamma": 0.7}},
        {"loss": {"name": "focal", "focal_gamma": 2.0, "class_weights": "balanced"}, "scheduler": "constant"},
        {"loss": {"class_weights": [1.0, 2.0, 1.0, 1.0]}, "group_by_length": False, "max_grad_norm": 0.0},
        {"scheduler": {"name": "plateau", "patience": 0}, "eval_every": 8},
    ],
    ids=["sgd-accum-cosine", "adam-step", "focal-balanced", "weights-no-grouping", "plateau-eval-steps"],
)
def test_classification_options_train(
    options: dict, tmp_path: Path, tiny_encoder: Path, topic_file: Path
) -> None:
    result = _fit(tmp_path, tiny_encoder, topic_file, **options)
    assert result.metrics["validation"]["loss"] < result.baseline["loss"]
    train_rows = len(result.prepared.datasets["train"])
    per_epoch = math.ceil(math.ceil(train_rows / 8) / options.get("grad_accum", 1))
    assert result.trainer.state.global_step == 2 * per_epoch


def test_gradient_checkpointing(tmp_path: Path, tiny_decoder: Path, sft_file: Path) -> None:
    result = _fit(tmp_path, tiny_decoder, sft_file, task="sft", gradient_checkpointing=True)
    assert result.trainer.model.get_base_model().model.gradient_checkpointing
    assert result.metrics["validation"]["loss"] < result.baseline["loss"]


def test_bf16_autocast_trains(tmp_path: Path, tiny_encoder: Path, topic_file: Path) -> None:
    config = validate_config(
        {
            "name": "bf16",
            "output_dir": str(tmp_path),
            "model": {"name": str(tiny_encoder), "device": "cpu", "precision": "bf16"},
            "data": {"train": str(topic_file), "max_length": 32, "val_ratio": 0.2, "test_ratio": 0.0},
            "train": {"epochs": 2, "lr": 1e-2, "batch_size": 8},
            "quiet": True,
        }
    )
    result = fit(config, tmp_path / "trial")
    assert result.trainer.args.bf16
    assert result.metrics["validation"]["loss"] < result.baseline["loss"]


def test_metrics_file_follows_the_contract(tmp_path: Path, tiny_encoder: Path, topic_file: Path) -> None:
    _fit(tmp_path, tiny_encoder, topic_file, eval_every=10, logging_steps=5)
    rows = [json.loads(line) for line in (tmp_path / "trial" / "metrics.jsonl").read_text().splitlines()]
    assert rows and all(set(r) == {"step", "epoch", "split", "name", "value"} for r in rows)
    names = {(r["split"], r["name"]) for r in rows}
    assert {("train", "loss"), ("train", "lr"), ("validation", "loss"), ("validation", "accuracy")} <= names
    validation_steps = sorted(
        {r["step"] for r in rows if r["split"] == "validation" and r["name"] == "accuracy"}
    )
    assert validation_steps[:3] == [10, 20, 30]  # every 10 steps
    baseline = [r for r in rows if r["split"] == "baseline" and r["name"] == "accuracy"]
    assert [r["step"] for r in baseline] == [0]  # the untuned model, before any step, as its own split
