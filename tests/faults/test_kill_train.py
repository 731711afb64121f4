"""SIGKILL `autoglm train` at points picked from its step counter (metrics.jsonl), run it again, and compare with
an uninterrupted run: the same optimizer steps, the same metrics, the same splits, every artifact whole.

One run is killed twice in a row: between two checkpoints of its second epoch, then (resumed) at the validation
of its last step, before or after the last checkpoint is complete depending on where the kill lands: both must
end the same. The run trains 1.5 epochs, so its last step is not an epoch's
end (where a resumed Trainer used to take one step too many) and the second epoch's batch order must be drawn
again on resume (it used to come from the global RNG)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from open_autoglm.cli import main
from open_autoglm.config import load_config
from open_autoglm.data.synthetic import make_topic_rows
from open_autoglm.models.loading import load_finetuned
from open_autoglm.train.callbacks import read_metrics
from open_autoglm.train.checkpoints import COMPLETE_MARKER

WAIT_S = 120  # for a kill point to come: far more than it takes, so only a hang fails here
STEPS = 23  # ceil(1.5 epochs x 15 steps): 120 training rows, batches of 8


def _config(folder: Path, data: Path, encoder: Path) -> Path:
    config = {
        "name": "run",
        "output_dir": str(folder / "runs"),
        "model": {"name": str(encoder)},
        "data": {
            "train": str(data),
            "max_length": 16,
            "val_ratio": 0.2,
            "test_ratio": 0.2,
            "dedup": {"exact": False, "near": False},  # keep all 200 rows: 120 train
        },
        "method": {"name": "lora"},
        "train": {
            "epochs": 1.5,
            "batch_size": 8,
            "lr": 1e-2,
            "logging_steps": 1,
            "save_every": 4,
            "eval_every": "epoch",
        },
        "quiet": True,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _rows(run: Path) -> list[dict[str, Any]]:
    return read_metrics(run / "trials" / "0" / "metrics.jsonl")


def _train_step_logged(run: Path, at_least: int) -> Callable[[], bool]:
    return lambda: any(r["split"] == "train" and r["step"] >= at_least for r in _rows(run))


def _last_validation_logged(run: Path) -> Callable[[], bool]:
    return lambda: any(r["split"] == "validation" and r["step"] == STEPS for r in _rows(run))


def _train_killed_when(config: Path, ready: Callable[[], bool]) -> None:
    """Start `autoglm train` and SIGKILL it as soon as `ready()` holds (polled every 5 ms)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, "-m", "open_autoglm", "train", "-c", str(config)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + WAIT_S
    while not ready():
        assert process.poll() is None, f"it ended before the kill point: {process.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "the kill point never came"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL


def _by_key(run: Path) -> dict[tuple, float]:
    rows = _rows(run)
    keys = [(r["step"], r["split"], r["name"]) for r in rows]
    assert len(keys) == len(set(keys)), "a (step, split, name) row was written twice"
    return {key: r["value"] for key, r in zip(keys, rows, strict=True)}


def _logits(model_dir: Path, texts: list[str]) -> torch.Tensor:
    model, tokenizer, _ = load_finetuned(model_dir)
    with torch.inference_mode():
        return model(**tokenizer(texts, padding=True, return_tensors="pt")).logits


@pytest.mark.slow
def test_train_killed_twice_ends_as_an_uninterrupted_run(tmp_path: Path, tiny_encoder: Path) -> None:
    data = tmp_path / "topics.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in make_topic_rows(200, seed=5)))
    reference_config = _config(tmp_path / "reference", data, tiny_encoder)
    killed_config = _config(tmp_path / "killed", data, tiny_encoder)
    reference, run = tmp_path / "reference" / "runs" / "run", tmp_path / "killed" / "runs" / "run"
    assert main(["train", "-c", str(reference_config)]) == 0

    _train_killed_when(killed_config, _train_step_logged(run, 18))  # epoch 2, after checkpoint-16
    _train_killed_when(killed_config, _last_validation_logged(run))  # around checkpoint-23
    assert not (run / "summary.json").exists(), "every kill must land before the run finished"
    assert main(["train", "-c", str(killed_config)]) == 0

    summary = json.loads((run / "summary.json").read_text())
    expected = json.loads((reference / "summary.json").read_text())
    assert summary["compute"]["train_steps"] == expected["compute"]["train_steps"] == STEPS
    assert summary["resumed_from"] is not None
    for split in ("validation", "test"):
        assert summary["best"][split] == pytest.approx(expected["best"][split], rel=1e-4, abs=1e-5)
    assert summary["baseline"]["metrics"] == pytest.approx(
        expected["baseline"]["metrics"], rel=1e-4, abs=1e-5
    )

    # metrics.jsonl reads as one uninterrupted run: the same rows, each once, with the same values
    resumed, uninterrupted = _by_key(run), _by_key(reference)
    assert resumed.keys() == uninterrupted.keys()
    assert resumed == pytest.approx(uninterrupted, rel=1e-4, abs=1e-5)

    # every artifact is whole: the same splits byte for byte, a loadable config and model, marked checkpoints
    for split in ("train", "validation", "test"):
        assert (run / "data" / f"{split}.jsonl").read_bytes() == (
            reference / "data" / f"{split}.jsonl"
        ).read_bytes()
    assert load_config(run / "config.yaml").train.epochs == 1.5
    assert json.loads((run / "model" / "autoglm.json").read_text())["labels"]
    checkpoints = list((run / "trials" / "0" / "checkpoint").glob("checkpoint-*"))
    assert checkpoints and all((c / COMPLETE_MARKER).exists() for c in checkpoints)
    assert not list(run.rglob(".*.tmp")), "a temporary file of an atomic write was left behind"
    texts = [r["text"] for r in make_topic_rows(8, seed=9)]
    assert torch.allclose(_logits(run / "model", texts), _logits(reference / "model", texts), atol=1e-5)
