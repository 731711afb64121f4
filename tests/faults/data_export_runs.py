"""What the data-prepare, report, eval and export fault tests share: a tiny trained classifier and a way to run
the CLI in a child process (so that a file-size limit or a SIGKILL hits it, not pytest)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from open_autoglm.config import Config, validate_config
from open_autoglm.data.synthetic import make_topic_rows

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def classifier_config(root: Path, model: Path, rows: int = 240, seed: int = 5) -> Config:
    """A tiny LoRA classification run under `root` (its data file written there too)."""
    root.mkdir(parents=True, exist_ok=True)
    data = root / "topics.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in make_topic_rows(rows, seed=seed)), encoding="utf-8")
    raw = {
        "name": "run",
        "task": "classification",
        "output_dir": str(root / "runs"),
        "model": {"name": str(model), "device": "cpu"},
        "data": {"train": str(data), "max_length": 24, "val_ratio": 0.2, "test_ratio": 0.25},
        "method": {"name": "lora", "r": 4},
        "train": {"epochs": 1, "lr": 5e-3, "batch_size": 16, "seed": 3},
        "export": {"calibration_rows": 100},
        "quiet": True,
    }
    (root / "config.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    return validate_config(raw, "test")


@pytest.fixture(scope="session")
def trained_classifier(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Path) -> Config:
    """Trained once per session: eval and export need a model folder."""
    from open_autoglm.train.job import run_train

    config = classifier_config(tmp_path_factory.mktemp("faults-trained"), tiny_encoder)
    run_train(config)
    return config


def autoglm(*args: str, file_limit: int | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`autoglm ARGS` in a child process; with `file_limit`, no file it writes may grow past that many bytes."""
    preexec: Callable[[], None] | None = None
    if file_limit is not None:

        def preexec() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    return subprocess.Popen(
        [sys.executable, "-m", "open_autoglm", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ | OFFLINE | {"COLUMNS": "200"} | (env or {}),
        preexec_fn=preexec,
    )


def finished(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    """(exit code, everything it printed)."""
    out, _ = process.communicate(timeout=timeout)
    return process.returncode, out


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by relative path: to compare a folder byte for byte before and after."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
