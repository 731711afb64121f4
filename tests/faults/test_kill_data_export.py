"""SIGKILL `data prepare` and `export` part-way, start them again, and compare with an uninterrupted run: the
same splits byte for byte, every artifact whole, no stale report describing files that are gone.

The kill points are seen from outside (a temporary file growing, model.onnx replaced) except one: the instant
between the new splits and their data_report.json, which `AUTOGLM_FAULT_KILL_AT=data:before-report` reaches
(see data/pipeline.py: _fault_point)."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from data_export_runs import (  # noqa: F401  (trained_classifier is a fixture)
    autoglm,
    classifier_config,
    finished,
    snapshot,
    trained_classifier,
)

from open_autoglm.cli import main
from open_autoglm.config import Config
from open_autoglm.data.pipeline import KILL_AT_ENV, OUTPUTS
from open_autoglm.data.synthetic import make_topic_rows

NO_MODEL = Path("data-prepare-loads-no-model")
WAIT_S = 90  # for a kill point to come: far more than it takes, so only a hang fails here


def kill_when(process, ready: Callable[[], bool]) -> None:
    """SIGKILL `process` as soon as `ready()` holds (polled every 5 ms); it must still be running then."""
    deadline = time.monotonic() + WAIT_S
    while not ready():
        assert process.poll() is None, f"it ended before the kill point: {process.communicate()[0]}"
        assert time.monotonic() < deadline, "the kill point never came"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert finished(process)[0] == -signal.SIGKILL


def write_rows(path: Path, seed: int) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in make_topic_rows(3000, seed=seed)), encoding="utf-8")


def outputs(data: Path) -> dict[str, bytes]:
    return {name: (data / name).read_bytes() for name in OUTPUTS if (data / name).exists()}


@pytest.mark.slow
def test_data_prepare_killed_while_reading_gives_the_same_splits(tmp_path: Path) -> None:
    reference = classifier_config(tmp_path / "reference", NO_MODEL)
    killed = classifier_config(tmp_path / "killed", NO_MODEL)
    shared = tmp_path / "topics.jsonl"  # one input file for both, so removed.jsonl names the same file
    write_rows(shared, seed=11)
    args = ["data", "prepare", "--set", f"data.train={shared}"]
    assert main([*args, "-c", str(tmp_path / "reference" / "config.yaml")]) == 0
    data = killed.run_dir / "data"

    process = autoglm(*args, "-c", str(tmp_path / "killed" / "config.yaml"))
    kill_when(process, lambda: any(p.stat().st_size > 0 for p in data.glob(".staging.jsonl.*.tmp")))

    assert not (data / "data_report.json").exists()
    assert main([*args, "-c", str(tmp_path / "killed" / "config.yaml")]) == 0
    assert outputs(data) == outputs(reference.run_dir / "data")
    assert set(outputs(data)) == set(OUTPUTS)
    assert not list(data.glob(".*.tmp")) and not (data / "staging.jsonl").exists()


@pytest.mark.slow
def test_data_prepare_killed_before_its_report_is_not_taken_as_prepared(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = classifier_config(tmp_path, NO_MODEL)
    source, cfg = Path(config.data.train), str(tmp_path / "config.yaml")
    write_rows(source, seed=21)
    assert main(["data", "prepare", "-c", cfg]) == 0
    data = config.run_dir / "data"
    prepared = snapshot(data)

    write_rows(source, seed=22)  # other inputs: new splits, then killed before their data_report.json
    code, printed = finished(autoglm("data", "prepare", "-c", cfg, env={KILL_AT_ENV: "data:before-report"}))
    assert code == -signal.SIGKILL, printed
    assert (data / "train.jsonl").read_bytes() != prepared["train.jsonl"]
    assert (data / "data_report.json").read_bytes() == prepared["data_report.json"]

    write_rows(source, seed=21)  # the inputs the old report describes: only the outputs' check can tell
    capsys.readouterr()
    assert main(["data", "prepare", "-c", cfg]) == 0
    assert "up to date" not in capsys.readouterr().out
    assert outputs(data) == {name: prepared[name] for name in OUTPUTS if name in prepared}


@pytest.mark.slow
def test_export_killed_midway_leaves_no_stale_report_and_a_rerun_matches(
    trained_classifier: Config,  # noqa: F811
) -> None:
    from open_autoglm.export.job import EXPORT_REPORT, ExportOptions, run_export

    config, run_dir = trained_classifier, trained_classifier.run_dir
    options = ExportOptions(model=run_dir / "model", onnx=True, quantize=("dynamic",), latency_rows=5)
    reference = run_export(config, options)
    out = run_dir / "export"
    earlier = (out / "model.onnx").stat().st_ino

    process = autoglm(
        "export", "-c", str(run_dir.parent.parent / "config.yaml"), "--model", str(run_dir / "model"),
        "--onnx", "--quantize", "dynamic", "--latency-rows", "5",
    )  # fmt: skip

    def replaced() -> bool:  # the new model.onnx is in place: quantizing and measuring are still to come
        onnx = out / "model.onnx"
        return not (out / EXPORT_REPORT).exists() and onnx.exists() and onnx.stat().st_ino != earlier

    kill_when(process, replaced)
    assert not (out / EXPORT_REPORT).exists()  # no report lists files the kill left unwritten

    rerun = run_export(config, options)
    assert [v["name"] for v in rerun["variants"]] == [v["name"] for v in reference["variants"]]
    for again, first in zip(rerun["variants"], reference["variants"], strict=True):
        assert again["accuracy"] == first["accuracy"] and again["size_mb"] == pytest.approx(first["size_mb"])
    for variant in rerun["variants"]:
        assert variant["path"] is None or Path(variant["path"]).exists()
    assert json.loads((out / EXPORT_REPORT).read_text(encoding="utf-8"))["variants"] == rerun["variants"]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".partial-")]
