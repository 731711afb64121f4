"""A third-party package installed into the venv adds a task, a method, a data reader, a cleaner, a metric, an
exporter and a search objective through entry points, and a config uses them by name — no import of the plugin
anywhere in Open-AutoGLM."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow
PLUGIN = Path(__file__).parent / "demo_plugin"


def pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    build = tmp_path_factory.mktemp(
        "plugin-build"
    )  # setuptools writes build/ and egg-info/ beside the source
    source = shutil.copytree(PLUGIN, build / "source")
    pip(
        "install",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        f"--cache-dir={build}",
        str(source),
    )
    try:
        yield
    finally:
        pip("uninstall", "-q", "-y", "autoglm-demo-plugin")


def test_a_config_trains_with_the_plugins_method_and_reader(
    installed_plugin: None, tmp_path: Path, tiny_encoder: Path
) -> None:
    from open_autoglm.data.synthetic import make_topic_rows

    rows = make_topic_rows(120, seed=5)
    data = tmp_path / "topics.pipe"
    lines = [f"{r['label']}|{r['text']} room 42" for r in rows] + ["a line without a bar"]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = {
        "name": "plugged",
        "output_dir": str(tmp_path / "runs"),
        "task": "topics",
        "model": {"name": str(tiny_encoder)},
        "data": {
            "train": str(data),
            "format": "pipe",
            "max_length": 16,
            "max_bad_ratio": 0.05,
            "clean": {"extra": ["mask_digits"]},
        },
        "method": "bias_only",
        "train": {"epochs": 1, "lr": 1e-2, "batch_size": 16, "metrics": ["balanced_accuracy"]},
        "export": {"extra": ["label_list"]},
        "quiet": True,
    }
    path = tmp_path / "plugged.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    run = tmp_path / "runs" / "plugged"
    autoglm("train", "-c", str(path))
    autoglm("export", "-c", str(path), "--model", str(run / "model"), "--merge", "--latency-rows", "5")

    summary = json.loads((run / "summary.json").read_text())
    assert summary["method"] == "bias_only"
    assert (summary["task"], summary["metric"]) == (
        "topics",
        "f1_macro",
    )  # the plugin's task chose the metric
    trainable, total = summary["parameters"]["trainable"], summary["parameters"]["total"]
    assert 0 < trainable < total / 5  # biases and the head only
    report = json.loads((run / "data" / "data_report.json").read_text())
    assert report["rows_in"] == len(rows) + 1 and report["quarantined"] == 1  # read by the plugin's reader
    quarantine = (run / "data" / "quarantine.jsonl").read_text(encoding="utf-8")
    assert "expected label|text" in quarantine and f'"line": {len(rows) + 1}' in quarantine
    kept = (run / "data" / "train.jsonl").read_text(encoding="utf-8")
    assert "room ##" in kept and "42" not in kept  # the plugin's cleaner ran
    for split in ("validation", "test"):
        assert 0.0 <= summary["best"][split]["balanced_accuracy"] <= 1.0  # the plugin's metric
    written = json.loads((run / "export" / "export_report.json").read_text())["plugins"]["label_list"]
    labels = json.loads((run / "model" / "autoglm.json").read_text())["labels"]
    assert Path(written).read_text(encoding="utf-8").split() == labels  # the plugin's exporter


def test_a_search_optimises_the_plugins_objective(
    installed_plugin: None, tmp_path: Path, tiny_encoder: Path, topic_file: Path
) -> None:
    import optuna
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    from open_autoglm.search.storage import open_storage

    config = {
        "name": "study",
        "output_dir": str(tmp_path / "runs"),
        "model": {"name": str(tiny_encoder)},
        "data": {"train": str(topic_file), "max_length": 16, "val_ratio": 0.25, "test_ratio": 0.1},
        "method": {"name": "lora", "r": 4},
        "train": {"epochs": 1, "lr": 5e-3, "batch_size": 16},
        "search": {
            "n_trials": 3,
            "sampler": "random",
            "pruner": "none",
            "objectives": ["quality", "calibration_error"],
            "mode": "pareto",
            "space": {"train.lr": {"type": "float", "low": 1e-4, "high": 3e-2, "log": True}},
        },
        "quiet": True,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    autoglm("tune", "-c", str(path))

    study = optuna.load_study(study_name="study", storage=open_storage(None, tmp_path / "runs" / "study"))
    assert study.directions == [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3
    errors = [t.user_attrs["objectives"]["calibration_error"] for t in complete]
    assert all(0.0 <= e <= 1.0 for e in errors)
    assert len(set(errors)) == 3  # measured on each trial's own model
    assert [t.values for t in complete] == [
        [t.user_attrs["objectives"]["quality"], e] for t, e in zip(complete, errors, strict=True)
    ]
    summary = json.loads((tmp_path / "runs" / "study" / "summary.json").read_text())
    assert summary["objectives"] == ["quality", "calibration_error"]


def autoglm(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "open_autoglm", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
