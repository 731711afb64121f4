"""`recipe: multitask` under torchrun: DDP on the CPU (gloo), 2 processes, with the weightings that take their
own gradients (PCGrad's per-task gradients, GradNorm's norms), which DDP's reduction must still see once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import write_jsonl

from open_autoglm.data.synthetic import make_topic_rows

pytestmark = pytest.mark.slow

GROUP = {"sports": "people", "world": "people"}


@pytest.mark.parametrize("weighting", ["pcgrad", "gradnorm"])
def test_two_processes_train_every_task(tmp_path: Path, tiny_encoder: Path, weighting: str) -> None:
    topics = write_jsonl(tmp_path / "topics.jsonl", make_topic_rows(120, seed=3))
    groups = write_jsonl(
        tmp_path / "groups.jsonl",
        [{"text": r["text"], "label": GROUP.get(r["label"], "other")} for r in make_topic_rows(80, seed=5)],
    )
    data = {"val_ratio": 0.15, "test_ratio": 0.25, "max_length": 32}
    config = {
        "name": "mt",
        "output_dir": str(tmp_path / "runs"),
        "recipe": "multitask",
        "model": {"name": str(tiny_encoder), "precision": "fp32"},
        "method": {"name": "lora", "r": 4},
        "train": {"epochs": 3, "lr": 1e-2, "batch_size": 8, "seed": 0, "logging_steps": 2},
        "multitask": {
            "tasks": [
                {"name": "topic", "data": {"train": str(topics), **data}},
                {"name": "group", "data": {"train": str(groups), **data}},
            ],
            "loss_weighting": weighting,
        },
        "quiet": True,
    }
    path = tmp_path / "mt.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [*launcher, "-m", "open_autoglm", "train", "--no-resume", "-c", str(path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]

    summary = json.loads((tmp_path / "runs" / "mt" / "summary.json").read_text())
    one_process_steps = 3 * -(-int(0.6 * 120 + 0.6 * 80) // (8 * 2))  # epochs x ceil(rows / (batch x tasks))
    assert summary["compute"]["train_steps"] < one_process_steps  # each process took half the steps
    for task, block in summary["tasks"].items():
        assert block["validation"]["accuracy"] > block["majority_accuracy"], (task, block)
