"""`autoglm data prepare`: the run folder's data/, the terminal table, reuse, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from open_autoglm.cli import main


def write_config(tmp_path: Path, train: Path, **data: object) -> Path:
    config = {"name": "prep", "output_dir": str(tmp_path / "runs"), "data": {"train": str(train), **data}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_prepare_writes_the_data_folder_and_prints_where_rows_went(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = tmp_path / "reviews.jsonl"
    rows = [
        {"text": f"guest {i} found room {i * 3} {'quiet' if i % 2 else 'loud'}", "label": i % 2}
        for i in range(40)
    ]
    rows += rows[:5] + [{"text": "mail me at guest@example.org", "label": 1}]
    train.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken\n")
    config = write_config(tmp_path, train, max_bad_ratio=0.1)
    assert main(["data", "prepare", "-c", str(config), "-q"]) == 0
    out = tmp_path / "runs" / "prep" / "data"
    assert {p.name for p in out.iterdir()} == {
        "train.jsonl",
        "validation.jsonl",
        "test.jsonl",
        "data_report.json",
        "quarantine.jsonl",
        "removed.jsonl",
    }
    report = json.loads((out / "data_report.json").read_text())
    assert (report["rows_in"], report["rows_kept"], report["quarantined"]) == (47, 41, 1)
    assert report["removed"] == {"exact_duplicate": 5} and report["pii"] == {"email": 1}
    err = capsys.readouterr().err
    assert "removed: exact duplicate" in err and "quarantined" in err and "email 1" in err

    assert main(["data", "prepare", "-c", str(config), "-q"]) == 0
    assert "up to date" in capsys.readouterr().err


def test_bad_data_setting_is_a_config_error_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, tmp_path / "x.jsonl", dedup={"threshold": 1.5})
    assert main(["data", "prepare", "-c", str(config)]) == 2
    assert "data.dedup.threshold" in capsys.readouterr().err


def test_missing_input_names_the_key_and_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.csv"
    assert main(["data", "prepare", "-c", str(write_config(tmp_path, missing))]) == 1
    err = capsys.readouterr().err
    assert "data.train" in err and "nowhere.csv" in err
