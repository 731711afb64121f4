"""A third-party package installed into the venv adds a method, a data reader, a cleaner, a metric and an exporter
through entry points, and a config uses them by name — no import of the plugin anywhere in Open-AutoGLM."""

from __future__ import annotations

import json
import os
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
    build = tmp_path_factory.mktemp("plugin-build")  # not the source folder: the tests tree stays clean
    pip(
        "install",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        f"--cache-dir={build}",
        str(PLUGIN),
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


def autoglm(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "open_autoglm", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
