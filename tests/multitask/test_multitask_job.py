"""End to end on the tiny random BERT: two synthetic tasks, every weighting, the run folder, reloading."""

from __future__ import annotations

import json
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
        "metrics.jsonl",
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

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
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
    rows = [json.loads(line) for line in (config.run_dir / "metrics.jsonl").read_text().splitlines()]
    weights = {r["value"] for r in rows if r["name"] == "weight/topic"}
    assert (len(weights) > 1) == (weighting != "pcgrad")  # learned weights move; PCGrad's are fixed


def test_same_seed_same_result_and_resume(tmp_path: Path, tiny_encoder: Path) -> None:
    first = run_multitask(_config(tmp_path / "a", tiny_encoder, **{"train.epochs": 2}))
    again = run_multitask(_config(tmp_path / "b", tiny_encoder, **{"train.epochs": 2}))
    assert first["best"]["test"] == again["best"]["test"]
    resumed = run_multitask(_config(tmp_path / "a", tiny_encoder, **{"train.epochs": 2}))
    assert resumed["resumed_from_epoch"] == 1
    assert resumed["best"]["test"] == first["best"]["test"]
    assert resumed["compute"]["train_steps"] == first["compute"]["train_steps"]
    saved = (tmp_path / "a" / "runs" / "mt" / "config.yaml").read_bytes()
    with pytest.raises(ConfigError, match=r"train\.lr: 0\.003 → 0\.001[\s\S]*--no-resume[\s\S]*--out"):
        run_multitask(_config(tmp_path / "a", tiny_encoder, **{"train.epochs": 2, "train.lr": 1e-3}))
    assert (tmp_path / "a" / "runs" / "mt" / "config.yaml").read_bytes() == saved


def test_unsupported_method_and_settings_are_refused(tmp_path: Path, tiny_encoder: Path) -> None:
    with pytest.raises(ValueError, match="full or lora"):
        run_multitask(_config(tmp_path, tiny_encoder, **{"method.name": "ia3"}))
    with pytest.raises(ValueError, match="train.grad_accum"):
        run_multitask(_config(tmp_path, tiny_encoder, **{"train.grad_accum": 2}))
