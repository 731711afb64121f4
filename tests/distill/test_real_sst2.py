"""Real data: a 2-layer student cut from a fine-tuned MiniLM learns more with its teacher than without it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from open_autoglm.config import validate_config
from open_autoglm.distill.job import run_distill

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, name: str, alpha: float) -> dict:
    """300 labelled SST-2 rows for the student; all 872 dev sentences as the test split (a point is 9 rows)."""
    return {
        "name": name,
        "output_dir": str(tmp_path),
        "model": {"name": "minilm"},
        "data": {
            "train": str(SHARED_DATA / "sst2" / "train.tsv"),
            "test": str(SHARED_DATA / "sst2" / "dev.tsv"),
            "columns": ["label", "text"],
            "max_rows": 300,
            "max_length": 64,
            "val_ratio": 0.1,
        },
        "method": {"name": "full"},
        "train": {"epochs": 4, "lr": 2e-4, "batch_size": 16, "seed": 7},
        "distill": {"student_layers": 2, "alpha": alpha, "temperature": 2.0},
        "quiet": True,
    }


def test_distilled_student_beats_the_same_student_without_teacher(trained_minilm, tmp_path: Path) -> None:
    """The teacher (the shared MiniLM + LoRA, trained on other SST-2 rows) knows more than the student's 300
    labels say; alpha 0 is the same run, same steps and seed, with the teacher unused."""
    teacher = trained_minilm.run_dir / "model"
    started = time.perf_counter()
    reports = {
        name: run_distill(validate_config(_config(tmp_path, name, alpha)), teacher)
        for name, alpha in (("distilled", 0.9), ("plain", 0.0))
    }
    accuracy = {name: report["models"][1]["metrics"]["accuracy"] for name, report in reports.items()}
    teacher_accuracy = reports["distilled"]["models"][0]["metrics"]["accuracy"]
    figures = (
        f"teacher {teacher_accuracy:.4f}, distilled {accuracy['distilled']:.4f}, plain {accuracy['plain']:.4f} "
        f"(by {accuracy['distilled'] - accuracy['plain']:+.4f}), {time.perf_counter() - started:.0f} s"
    )
    print(figures)
    assert accuracy["distilled"] > accuracy["plain"], (
        f"the distilled student does not beat the plain one: {figures}"
    )
    versus = reports["distilled"]["student_vs_teacher"]
    assert versus["parameter_ratio"] < 1 and versus["size_ratio"] < 1
