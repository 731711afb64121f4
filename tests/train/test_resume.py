"""Kill-and-resume: a run killed with SIGKILL after a checkpoint resumes from it and ends with the same
number of optimizer steps as an uninterrupted run; half-written checkpoints are never resumed from."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from conftest import write_jsonl

from open_autoglm.train.checkpoints import COMPLETE_MARKER, last_complete_checkpoint, mark_complete


def _train_cmd(config: Path) -> list[str]:
    return [sys.executable, "-m", "open_autoglm", "train", "-c", str(config), "-q"]


def test_sigkill_then_resume_finishes_with_the_same_step_count(tmp_path: Path, tiny_encoder: Path) -> None:
    from open_autoglm.data.synthetic import make_topic_rows

    data = write_jsonl(tmp_path / "topics.jsonl", make_topic_rows(600, seed=5))
    config = {
        "name": "resume",
        "output_dir": str(tmp_path / "runs"),
        "model": {"name": str(tiny_encoder)},
        "data": {
            "train": str(data),
            "max_length": 32,
            "val_ratio": 0.2,
            "test_ratio": 0.0,
            "dedup": {"exact": False, "near": False},  # keep all 600 rows: 2 x 120 steps
        },
        "method": {"name": "lora"},
        "train": {"epochs": 2, "batch_size": 4, "lr": 1e-2, "save_every": 10, "eval_every": "epoch"},
    }
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    run_dir = tmp_path / "runs" / "resume"
    checkpoints = run_dir / "trials" / "0" / "checkpoint"
    expected_steps = 2 * (480 // 4)

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    first = subprocess.Popen(
        _train_cmd(config_path), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300
    while not list(checkpoints.glob(f"checkpoint-*/{COMPLETE_MARKER}")):
        assert first.poll() is None, (
            f"the run ended before it could be killed: {first.stderr.read().decode()[-2000:]}"
        )
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not (run_dir / "summary.json").exists(), "the run must have been killed before it finished"
    killed_at = last_complete_checkpoint(checkpoints)
    assert killed_at is not None
    killed_step = int(killed_at.name.split("-")[1])
    assert 0 < killed_step < expected_steps

    second = subprocess.run(_train_cmd(config_path), env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["compute"]["train_steps"] == expected_steps
    assert summary["resumed_from"] is not None
    assert int(Path(summary["resumed_from"]).name.split("-")[1]) >= killed_step
    train_steps = [
        row["step"]
        for row in map(json.loads, (run_dir / "trials" / "0" / "metrics.jsonl").read_text().splitlines())
        if row["split"] == "train" and row["name"] == "loss"
    ]
    assert max(train_steps) == expected_steps


def test_half_written_checkpoints_are_ignored_and_removed(tmp_path: Path) -> None:
    for step in (10, 20, 30):
        (tmp_path / f"checkpoint-{step}").mkdir()
    mark_complete(tmp_path / "checkpoint-10")
    mark_complete(tmp_path / "checkpoint-20")  # checkpoint-30 was being written when the run died
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-20"
    assert not (tmp_path / "checkpoint-30").exists()
    assert last_complete_checkpoint(tmp_path / "missing") is None
