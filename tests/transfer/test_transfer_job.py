"""End to end on the tiny random BERT: continued pretraining, LoRA fine-tuning, the control, the probe, the run
folder, and a resumed run that skips the finished steps."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import write_jsonl

from open_autoglm.config import ConfigError, validate_config
from open_autoglm.data.synthetic import make_topic_rows
from open_autoglm.models import load_finetuned
from open_autoglm.transfer import job as transfer_job
from open_autoglm.transfer import run_transfer

GROUP = {"sports": "play", "entertainment": "play"}  # the second task: play vs work, over other headlines
STEPS = ("pretrain", "finetune", "control", "probe")


def _config(tmp: Path, encoder: Path):
    domain = tmp / "domain.txt"
    domain.write_text("\n".join(r["text"] for r in make_topic_rows(300, seed=7)) + "\n", encoding="utf-8")
    topics = write_jsonl(tmp / "topics.jsonl", make_topic_rows(160, seed=3))
    groups = write_jsonl(
        tmp / "groups.jsonl",
        [{"text": r["text"], "label": GROUP.get(r["label"], "work")} for r in make_topic_rows(160, seed=5)],
    )
    return validate_config(
        {
            "name": "tr",
            "output_dir": str(tmp / "runs"),
            "recipe": "transfer",
            "model": {"name": str(encoder), "device": "cpu", "precision": "fp32"},
            "data": {"train": str(topics), "val_ratio": 0.15, "test_ratio": 0.25, "max_length": 32},
            "method": {"name": "lora", "r": 4},
            "train": {"epochs": 3, "lr": 1e-2, "batch_size": 16, "seed": 0},
            "transfer": {
                "domain_text": str(domain),
                "pretrain_epochs": 2,
                "pretrain_lr": 3e-3,
                "second_task": {"train": str(groups), "val_ratio": 0.1, "test_ratio": 0.3, "max_length": 32},
            },
            "quiet": True,
        }
    )


@pytest.fixture(scope="module")
def transfer_run(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Path):
    """One transfer run shared by the tests below: (config, summary)."""
    config = _config(tmp_path_factory.mktemp("transfer"), tiny_encoder)
    return config, run_transfer(config)


def test_run_folder_has_every_step_and_a_loadable_model(transfer_run) -> None:
    config, _ = transfer_run
    run = config.run_dir
    for step in STEPS:
        assert (run / "steps" / step / "step.json").is_file(), step
    assert (run / "adapted" / "config.json").is_file()
    assert json.loads((run / "summary.json").read_text())["task"] == "transfer"
    model, _, meta = load_finetuned(run / "model")
    assert meta["task"] == "classification"
    assert meta["base_model"] == str(run / "adapted")  # step 2 started from step 1's model
    assert sorted(meta["labels"]) == sorted({r["label"] for r in make_topic_rows(40)})


def test_summary_has_the_contract_shape_and_the_transfer_figures(transfer_run) -> None:
    _, summary = transfer_run
    assert summary["metric"] == "accuracy"
    assert set(summary["best"]) == {"params", "metrics", "validation", "test"}
    assert "majority_accuracy" in summary["baseline"]["metrics"]
    assert summary["compute"]["train_steps"] == sum(
        s["train_steps"] for s in summary["transfer"]["steps"].values()
    )
    block = summary["transfer"]
    perplexity = block["domain_perplexity"]
    assert perplexity["after"] < perplexity["before"]  # continued pretraining fitted the domain text
    target = block["target"]
    assert target["split"] == "test"
    assert target["gain"] == pytest.approx(
        target["adapted"]["accuracy"] - target["without_adaptation"]["accuracy"]
    )
    assert target["adapted"]["accuracy"] > target["majority_accuracy"]
    second = block["second_task"]
    assert set(second["accuracy"]) == {"original", "adapted", "finetuned"}
    assert all(0.0 <= a <= 1.0 for a in second["accuracy"].values())
    assert second["accuracy"]["original"] > second["majority_accuracy"]  # the features tell play from work
    assert second["change"]["finetuned"] == pytest.approx(
        second["accuracy"]["finetuned"] - second["accuracy"]["original"]
    )


def test_a_resumed_run_skips_finished_steps(transfer_run, tmp_path: Path, monkeypatch) -> None:
    config, summary = transfer_run
    copy = config.model_copy(update={"output_dir": tmp_path})
    shutil.copytree(config.run_dir, copy.run_dir)
    (copy.run_dir / "steps" / "control" / "step.json").unlink()  # as if killed during the control run
    trained = []
    real_fit = transfer_job.fit

    def counting_fit(step_config, step_dir, **kwargs):
        trained.append(step_dir.name)
        return real_fit(step_config, step_dir, **kwargs)

    monkeypatch.setattr(transfer_job, "fit", counting_fit)
    changed = copy.model_copy(update={"train": copy.train.model_copy(update={"lr": 5e-3})})
    with pytest.raises(ConfigError, match=r"train\.lr: 0\.01 → 0\.005"):
        run_transfer(changed)  # finished steps are not reused under other settings
    assert trained == []
    resumed = run_transfer(copy)
    assert trained == ["control"]
    assert resumed["transfer"]["domain_perplexity"] == summary["transfer"]["domain_perplexity"]
    assert resumed["transfer"]["second_task"] == summary["transfer"]["second_task"]


def test_run_transfer_refuses_another_recipe(tiny_encoder: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, tiny_encoder).model_copy(update={"recipe": "single"})
    with pytest.raises(ValueError, match="recipe: transfer"):
        run_transfer(config)
