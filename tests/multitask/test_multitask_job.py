"""End to end on the tiny random BERT: two synthetic tasks, every weighting, the run folder, reloading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import write_jsonl

from open_autoglm.config import ConfigError, validate_config
from open_autoglm.data.synthetic import make_topic_rows
from open_autoglm.multitask import load_multitask, run_multitask

GROUP = {"sports": "people", "world": "people"}  # the second task: people vs money-and-lab, other headlines


def _config(tmp_path: Path, encoder: Path, **overrides: object):
    tmp_path.mkdir(parents=True, exist_ok=True)
    topics = write_jsonl(tmp_path / "topics.jsonl", make_topic_rows(120, seed=3))
    groups = write_jsonl(
        tmp_path / "groups.jsonl",
        [{"text": r["text"], "label": GROUP.get(r["label"], "other")} for r in make_topic_rows(80, seed=5)],
    )
    data = {"val_ratio": 0.15, "test_ratio": 0.25, "max_length": 32}
    raw = {
        "name": "mt",
        "output_dir": str(tmp_path / "runs"),
        "recipe": "multitask",
        "model": {"name": str(encoder), "device": "cpu", "precision": "fp32"},
        "method": {"name": "full"},
        "train": {"epochs": 3, "lr": 3e-3, "batch_size": 16, "seed": 0, "logging_steps": 2},
        "multitask": {
            "tasks": [
                {"name": "topic", "data": {"train": str(topics), **data}},
                {"name": "group", "data": {"train": str(groups), **data}, "weight": 0.5},
            ],
        },
        "quiet": True,
    }
    for key, value in overrides.items():
        section, name = key.split(".")
        raw.setdefault(section, {})[name] = value  # type: ignore[index]
    return validate_config(raw)


def test_run_folder_metrics_and_reload(tmp_path: Path, tiny_encoder: Path) -> None:
    config = _config(tmp_path, tiny_encoder)
    summary = run_multitask(config)
    run = config.run_dir
    for name in (
        "config.yaml",
        "trials/0/metrics.jsonl",
        "summary.json",
        "model/multitask.json",
        "model/heads.safetensors",
    ):
        assert (run / name).is_file(), name
    assert (run / "model" / "backbone" / "model.safetensors").is_file()
    assert (run / "data" / "topic" / "train.jsonl").is_file() and (
        run / "data" / "group" / "test.jsonl"
    ).is_file()

    assert summary["metric"] == "accuracy" and summary["trials"]["complete"] == 1
    test = summary["best"]["test"]
    assert test["accuracy"] == pytest.approx((test["topic/accuracy"] + test["group/accuracy"]) / 2)
    assert summary["best"]["metrics"] == test
    for task in ("topic", "group"):
        block = summary["tasks"][task]
        assert block["test"]["accuracy"] >= block["majority_accuracy"] + 0.2, (task, block)
        assert summary["baseline"]["metrics"][f"{task}/majority_accuracy"] == block["majority_accuracy"]
    assert summary["tasks"]["group"]["labels"] == ["other", "people"]
    assert len(summary["tasks"]["topic"]["labels"]) == 4
    assert summary["compute"]["train_steps"] > 0 and summary["compute"]["train_examples"] > 0

    rows = [json.loads(line) for line in (run / "trials/0/metrics.jsonl").read_text().splitlines()]
    names = {(r["split"], r["name"]) for r in rows}
    assert {("train", "loss/topic"), ("train", "weight/group"), ("validation", "topic/accuracy")} <= names
    assert max(r["epoch"] for r in rows) == 3

    model, tokenizer, meta = load_multitask(run / "model")
    assert [t["name"] for t in meta["tasks"]] == ["topic", "group"]
    texts = [
        r["text"]
        for r in json.loads("[" + ",".join((run / "data/topic/test.jsonl").read_text().splitlines()) + "]")
    ]
    enc = tokenizer(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        preds = model("topic", enc["input_ids"], enc["attention_mask"]).argmax(-1)
    gold = [json.loads(line)["label"] for line in (run / "data/topic/test.jsonl").read_text().splitlines()]
    reloaded = sum(meta["tasks"][0]["labels"][int(p)] == g for p, g in zip(preds, gold, strict=True)) / len(
        gold
    )
    assert reloaded == pytest.approx(summary["tasks"]["topic"]["test"]["accuracy"])


@pytest.mark.parametrize("weighting", ["uncertainty", "gradnorm", "pcgrad"])
def test_every_weighting_learns_with_lora(tmp_path: Path, tiny_encoder: Path, weighting: str) -> None:
    config = _config(
        tmp_path,
        tiny_encoder,
        **{"method.name": "lora", "method.r": 4, "train.lr": 1e-2, "multitask.loss_weighting": weighting},
    )
    summary = run_multitask(config)
    for task, block in summary["tasks"].items():
        assert block["validation"]["accuracy"] > block["majority_accuracy"], (weighting, task, block)
    rows = [json.loads(line) for line in (config.run_dir / "trials/0/metrics.jsonl").read_text().splitlines()]
    weights = {r["value"] for r in rows if r["name"] == "weight/topic"}
    assert (len(weights) > 1) == (weighting != "pcgrad")  # learned weights move; PCGrad's are fixed


def test_same_seed_same_result_and_resume(tmp_path: Path, tiny_encoder: Path) -> None:
    first = run_multitask(_config(tmp_path / "a", tiny_encoder, **{"train.epochs": 2}))
    again = run_multitask(_config(tmp_path / "b", tiny_encoder, **{"train.epochs": 2}))
    assert first["best"]["test"] == again["best"]["test"]

    # Killed after its first epoch's checkpoint: the resumed run trains the second epoch as the first run did.
    checkpoints = tmp_path / "a" / "runs" / "mt" / "trials" / "0" / "checkpoint"
    epoch_one, epoch_two = sorted(checkpoints.iterdir(), key=lambda p: int(p.name.split("-")[1]))
    shutil.rmtree(epoch_two)
    resumed = run_multitask(_config(tmp_path / "a", tiny_encoder, **{"train.epochs": 2}))
    assert resumed["resumed_from"] == str(epoch_one)
    assert resumed["best"]["test"] == first["best"]["test"]
    assert resumed["compute"]["train_steps"] == first["compute"]["train_steps"]

    saved = (tmp_path / "a" / "runs" / "mt" / "config.yaml").read_bytes()
    with pytest.raises(ConfigError, match=r"train\.lr: 0\.003 → 0\.001[\s\S]*--no-resume[\s\S]*--out"):
        run_multitask(_config(tmp_path / "a", tiny_encoder, **{"train.epochs": 2, "train.lr": 1e-3}))
    assert (tmp_path / "a" / "runs" / "mt" / "config.yaml").read_bytes() == saved


def test_every_train_option_of_the_shared_trainer_applies(tmp_path: Path, tiny_encoder: Path) -> None:
    """The options the multitask loop once refused: accumulation, another optimizer and schedule, focal loss
    with balanced class weights, layer-wise decay, frozen layers, a head warm-up."""
    train = {
        "grad_accum": 2,
        "optimizer": {"name": "adam"},
        "scheduler": {"name": "cosine", "warmup_ratio": 0.1},
        "loss": {"name": "focal", "class_weights": "balanced"},
        "layer_lr_decay": 0.8,
        "freeze_layers": 1,
        "head_warmup_ratio": 0.3,
    }
    config = _config(tmp_path, tiny_encoder, **{"train.epochs": 4, "multitask.loss_weighting": "gradnorm"})
    config = config.model_copy(
        update={"train": config.train.model_validate({**config.train.model_dump(), **train})}
    )
    summary = run_multitask(config)
    plain = run_multitask(_config(tmp_path / "plain", tiny_encoder, **{"train.epochs": 4}))
    assert summary["compute"]["train_steps"] * 2 == plain["compute"]["train_steps"]  # two batches a step
    assert summary["compute"]["train_examples"] == plain["compute"]["train_examples"]
    for task, block in summary["tasks"].items():
        assert block["validation"]["accuracy"] > block["majority_accuracy"], (task, block)


def test_unsupported_method_is_refused(tmp_path: Path, tiny_encoder: Path) -> None:
    with pytest.raises(ValueError, match="full or lora"):
        run_multitask(_config(tmp_path, tiny_encoder, **{"method.name": "ia3"}))
