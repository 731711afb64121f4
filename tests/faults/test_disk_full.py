"""A full disk (a file-size limit, RLIMIT_FSIZE, in a child process) during `data prepare`, `report`, `eval` and
`export`: the write fails half-way, the earlier artifacts stay byte for byte as they were, the error is one line
that names the file, and the next run without the limit redoes the work instead of trusting a torn file."""

from __future__ import annotations

import json
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

LIMIT = 8 * 1024  # bytes: more than config.yaml, less than the data's staging file and splits


def assert_failed_cleanly(code: int, printed: str, file_name: str) -> None:
    assert code == 1, printed
    assert "Traceback" not in printed, printed
    assert "could not write" in printed and file_name in printed, printed


@pytest.mark.slow
def test_data_prepare_on_a_full_disk_keeps_the_prepared_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = classifier_config(tmp_path, tmp_path / "no-model-needed", rows=600)
    data = config.run_dir / "data"
    assert main(["data", "prepare", "-c", str(tmp_path / "config.yaml")]) == 0
    before = snapshot(config.run_dir)
    assert (data / "train.jsonl").stat().st_size > LIMIT

    code, printed = finished(
        autoglm("data", "prepare", "--force", "-c", str(tmp_path / "config.yaml"), file_limit=LIMIT)
    )

    assert_failed_cleanly(code, printed, "staging.jsonl")
    assert snapshot(config.run_dir) == before  # no torn split, no leftover temporary file
    # What the in-place writer used to leave after such a failure: the next run must not call it up to date.
    (data / "train.jsonl").write_bytes(before["data/train.jsonl"][: LIMIT // 2])
    capsys.readouterr()
    assert main(["data", "prepare", "-c", str(tmp_path / "config.yaml")]) == 0
    assert "up to date" not in capsys.readouterr().out
    after = snapshot(config.run_dir)
    for name in ("train", "validation", "test"):
        assert after[f"data/{name}.jsonl"] == before[f"data/{name}.jsonl"]


@pytest.mark.slow
def test_report_on_a_full_disk_keeps_the_earlier_report(tmp_path: Path) -> None:
    from open_autoglm.report import write_report

    run_dir = tmp_path / "run"
    (run_dir / "trials" / "0").mkdir(parents=True)
    (run_dir / "config.yaml").write_text("name: run\ntask: classification\n", encoding="utf-8")
    (run_dir / "summary.json").write_text(json.dumps({"metric": "accuracy", "trials": {"complete": 1}}))
    rows = [
        {"step": s, "epoch": s / 4, "split": "validation", "name": "accuracy", "value": s / 10}
        for s in range(8)
    ]
    (run_dir / "trials" / "0" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_report(run_dir)
    before = snapshot(run_dir)
    assert len(before["report.html"]) > 2**20  # plotly.js is inlined: the limit cuts it mid-write

    code, printed = finished(autoglm("report", str(run_dir), file_limit=2**20))

    assert_failed_cleanly(code, printed, "report.html")
    assert snapshot(run_dir) == before


@pytest.mark.slow
def test_export_on_a_full_disk_names_the_file_and_keeps_the_run(trained_classifier: Config) -> None:  # noqa: F811
    run_dir = trained_classifier.run_dir
    kept = {k: v for k, v in snapshot(run_dir).items() if not k.startswith("export/")}

    args = ["export", "-c", str(run_dir.parent.parent / "config.yaml"), "--model", str(run_dir / "model")]
    code, printed = finished(autoglm(*args, "--onnx", "--quantize", "dynamic", file_limit=64 * 1024))

    assert_failed_cleanly(code, printed, "merged")  # the merged weights are the first file past the limit
    after = snapshot(run_dir)
    assert {k: v for k, v in after.items() if not k.startswith("export/")} == kept
    assert not [name for name in after if name.startswith("export/") and ".partial-" in name]
    assert "export/export_report.json" not in after  # nothing claims an export that did not finish


@pytest.mark.slow
def test_eval_on_a_full_disk_keeps_the_earlier_results(
    trained_classifier: Config,  # noqa: F811
    tmp_path: Path,
) -> None:
    run_dir = trained_classifier.run_dir
    out = tmp_path / "eval-run"
    args = ["eval", "-c", str(run_dir.parent.parent / "config.yaml"), "--model", str(run_dir / "model")]
    args += ["--out", str(out)]
    assert finished(autoglm(*args))[0] == 0
    results = (out / "eval.json").read_bytes()
    assert len(results) > 1024

    code, printed = finished(autoglm(*args, file_limit=1024))

    # The resource samples are a side record (the monitor says it stopped); the results file is the error.
    assert_failed_cleanly(code, printed, "eval.json")
    assert (out / "eval.json").read_bytes() == results
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temporary left behind


@pytest.mark.slow
def test_train_on_a_full_disk_names_the_checkpoint_and_keeps_the_finished_model(
    trained_classifier: Config,  # noqa: F811
    tmp_path: Path,
) -> None:
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(trained_classifier.run_dir, run_dir)
    finished_run = {
        k: v for k, v in snapshot(run_dir).items() if k.startswith(("model/", "data/", "summary"))
    }
    args = [
        "train",
        "-c",
        str(trained_classifier.run_dir.parent.parent / "config.yaml"),
        "--out",
        str(run_dir),
    ]

    code, printed = finished(autoglm(*args, "--no-resume", file_limit=4 * 1024))

    assert_failed_cleanly(code, printed, "checkpoint")
    after = snapshot(run_dir)
    assert {k: v for k, v in after.items() if k in finished_run} == finished_run  # the model is the old one
    assert not [k for k in after if ".partial-" in k or k.endswith(".tmp")]
    code, printed = finished(autoglm(*args))  # room again: the run finishes
    assert code == 0, printed
    assert json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))["compute"]["train_steps"] > 0
