"""`autoglm train` under torchrun: DDP on the CPU (gloo), 2 processes x batch 4, matches one process x batch 8."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import write_jsonl

pytestmark = pytest.mark.slow


@pytest.fixture
def dropout_free_encoder(tiny_encoder: Path, tmp_path: Path) -> Path:
    """The tiny BERT without dropout: each rank's dropout masks differ, the comparison must not depend on them."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    config = BertConfig.from_pretrained(
        tiny_encoder, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )
    model = BertForMaskedLM.from_pretrained(tiny_encoder, config=config)
    path = tmp_path / "no-dropout"
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_encoder).save_pretrained(path)
    return path


@pytest.fixture
def whole_batch_splits(tmp_path: Path) -> dict[str, object]:
    """96 distinct training rows: every batch is whole (8 = 2 x 4), so DDP has no short batch to even out."""
    from open_autoglm.data.synthetic import make_topic_rows

    distinct = list({r["text"]: r for r in make_topic_rows(600, seed=3)}.values())
    splits = {"train": distinct[:96], "validation": distinct[96:136], "test": distinct[136:176]}
    files = {name: str(write_jsonl(tmp_path / f"{name}.jsonl", rows)) for name, rows in splits.items()}
    return {**files, "dedup": {"near": False}}


def write_config(tmp_path: Path, name: str, model: Path, data: dict[str, object], batch_size: int) -> Path:
    config = {
        "name": name,
        "output_dir": str(tmp_path / "runs"),
        "model": {"name": str(model), "precision": "fp32"},
        "data": {**data, "max_length": 16},
        "method": {"name": "lora", "r": 4, "dropout": 0.0},
        "train": {
            "epochs": 2,
            "lr": 5e-3,
            "batch_size": batch_size,
            "group_by_length": False,
            "logging_steps": 2,
        },
        "quiet": True,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def run(command: list[str]) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]


def test_two_process_ddp_matches_one_process_with_the_same_effective_batch(
    tmp_path: Path, dropout_free_encoder: Path, whole_batch_splits: dict[str, object]
) -> None:
    single = write_config(tmp_path, "single", dropout_free_encoder, whole_batch_splits, batch_size=8)
    ddp = write_config(tmp_path, "ddp", dropout_free_encoder, whole_batch_splits, batch_size=4)
    autoglm = ["-m", "open_autoglm", "train", "--no-resume", "-c"]
    run([sys.executable, *autoglm, str(single)])
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    run([*launcher, *autoglm, str(ddp)])

    one, two = (json.loads((tmp_path / "runs" / n / "summary.json").read_text()) for n in ("single", "ddp"))
    assert one["data"]["rows_kept"]["train"] == 96
    assert one["compute"]["train_steps"] == 24  # 96 rows / 8 per step x 2 epochs
    assert two["compute"]["train_steps"] == one["compute"]["train_steps"]  # 2 x 4 rows per step, as 1 x 8
    assert two["compute"]["train_examples"] == one["compute"]["train_examples"]
    # The same updates up to float summation order: the same losses, and the same predictions on held-out rows.
    for split in ("validation", "test"):
        assert two["best"][split]["loss"] == pytest.approx(one["best"][split]["loss"], abs=1e-4), split
        assert two["best"][split]["accuracy"] == one["best"][split]["accuracy"], split

    curves = {}
    for name in ("single", "ddp"):
        rows = (tmp_path / "runs" / name / "trials" / "0" / "metrics.jsonl").read_text().splitlines()
        records = [json.loads(r) for r in rows]
        curves[name] = [
            {"step": r["step"], "loss": r["value"]}
            for r in records
            if r["split"] == "train" and r["name"] == "loss"
        ]
    steps = [r["step"] for r in curves["ddp"]]
    assert steps == sorted(set(steps)) == [r["step"] for r in curves["single"]]  # rank 0 alone logs: once
    assert [r["loss"] for r in curves["ddp"]] == pytest.approx(
        [r["loss"] for r in curves["single"]], abs=1e-3
    )
    assert (tmp_path / "runs" / "ddp" / "model" / "adapter_model.safetensors").is_file()


def test_tune_under_torchrun_trains_each_trial_on_both_processes(
    tmp_path: Path, dropout_free_encoder: Path, topic_file: Path
) -> None:
    import optuna
    from optuna.trial import TrialState

    from open_autoglm.search.storage import open_storage

    splits = {"train": str(topic_file), "val_ratio": 0.2, "test_ratio": 0.2}
    path = write_config(tmp_path, "study", dropout_free_encoder, splits, batch_size=4)
    config = yaml.safe_load(path.read_text())
    config["search"] = {
        "n_trials": 3,
        "sampler": "random",
        "pruner": "none",
        "space": {"train.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    run([*launcher, "-m", "open_autoglm", "tune", "-c", str(path), "-q"])

    run_dir = tmp_path / "runs" / "study"
    trials = optuna.load_study(study_name="study", storage=open_storage(None, run_dir)).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3  # one study, rank 0's trials only
    assert all(t.user_attrs["processes"] == 2 for t in trials)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["trials"]["complete"] == 3
    steps = {t.number: t.user_attrs["train_steps"] for t in trials}
    examples = {t.number: t.user_attrs["train_examples"] for t in trials}
    assert all(examples[n] == steps[n] * 8 for n in steps)  # 2 processes x 4 rows per optimizer step
    assert (run_dir / "model" / "adapter_model.safetensors").is_file()
