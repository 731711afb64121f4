"""`-c` is optional: a run can be described wholly by `--set`, and the keys its recipe needs are named together."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from open_autoglm.cli import main


def test_a_run_described_wholly_by_set_trains(tmp_path: Path, tiny_encoder: Path, topic_file: Path) -> None:
    run = tmp_path / "by-set"
    code = main(
        [
            "train",
            "--set", "task=classification",
            "--set", f"model.name={tiny_encoder}",
            "--set", f"data.train={topic_file}",
            "--set", "data.max_length=16",
            "--set", "train.epochs=1",
            "--set", "model.precision=fp32",
            "--out", str(run),
            "-q",
        ]
    )  # fmt: skip
    assert code == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["task"] == "classification" and summary["model"] == str(tiny_encoder)
    assert (run / "model" / "autoglm.json").is_file()


def test_the_keys_a_recipe_needs_are_named_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--set", "recipe=transfer", "--out", str(tmp_path / "run"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "recipe transfer needs data.train, transfer.domain_text" in err
    assert "--set data.train=... --set transfer.domain_text=..." in err
    assert not (tmp_path / "run").exists()  # refused before any work


def test_an_unknown_task_given_by_set_is_refused_naming_the_known(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--set", "task=translation", "--set", "data.train=x.jsonl", "-q"]) == 2
    assert "task: unknown task 'translation'; known: classification, pretrain, sft" in capsys.readouterr().err
