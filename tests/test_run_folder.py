"""The run folder is named in one module, and its two read-back artifacts (summary.json, autoglm.json) round-trip
through their dataclasses: older files without a format version read, damaged ones are named."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import open_autoglm
from open_autoglm.run_folder import (
    CONFIG,
    META_FORMAT,
    MODEL_META,
    STUDY_DB,
    SUMMARY,
    SUMMARY_FORMAT,
    ModelFolderError,
    ModelMeta,
    RunFolder,
    RunSummary,
    read_json_object,
    read_model_meta,
    read_summary,
    write_model_meta,
    write_summary,
)

SRC = Path(open_autoglm.__file__).parent
NAMES = (
    CONFIG,
    SUMMARY,
    STUDY_DB,
    MODEL_META,
    "study.journal",
    "metrics.jsonl",
    "baseline.json",
    "eval.json",
    "export_report.json",
    "data_report.json",
    "report.html",
    "multitask.json",
    "step.json",
    "distill_report.json",
    "resources.jsonl",
)


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """Every string literal of a module (f-string parts included), docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_every_run_folder_file_is_named_only_in_run_folder() -> None:
    spelled = [
        f"{path.relative_to(SRC)}:{line}: {name}"
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "run_folder.py" or path.parent != SRC
        for line, text in _code_strings(path)
        for name in NAMES
        if name in text
    ]
    assert spelled == [], "use open_autoglm.run_folder's names instead of spelling these"


def _summary() -> RunSummary:
    return RunSummary(
        task="classification",
        metric="accuracy",
        greater_is_better=True,
        model="minilm",
        method="lora",
        best={"params": {"train.lr": 1e-3}, "metrics": {"accuracy": 0.9}, "validation": {"accuracy": 0.8}},
        baseline={"metrics": {"accuracy": 0.25}},
        trials={"complete": 1, "pruned": 0, "failed": 0},
        compute={"train_steps": 8, "seconds": 1.5},
        parameters={"trainable": 10, "total": 100},
        versions={"open-autoglm": "0"},
        sections={"resumed_from": None, "data": {"rows_in": 5}},
    )


def test_a_summary_round_trips_with_its_format(tmp_path: Path) -> None:
    path = RunFolder(tmp_path).summary
    write_summary(path, _summary())
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written["format"] == SUMMARY_FORMAT
    assert written["resumed_from"] is None and "placement" not in written and "resources" not in written
    read = read_summary(path)
    assert read == _summary()
    assert read.validation == {"accuracy": 0.8} and read.test is None and read.untuned == {"accuracy": 0.25}


def test_an_older_summary_without_format_reads(tmp_path: Path) -> None:
    path = tmp_path / SUMMARY
    older = {"metric": "accuracy", "best": {"test": {"accuracy": 0.7}, "trial": 3}, "default": {"trial": 0}}
    path.write_text(json.dumps(older), encoding="utf-8")
    summary = read_summary(path)
    assert summary.format == 0 and summary.metric == "accuracy" and summary.task is None
    assert summary.test == {"accuracy": 0.7} and summary.best_trial == 3
    assert summary.sections == {"default": {"trial": 0}}  # another job's keys are kept as they are
    assert summary.to_json()["format"] == SUMMARY_FORMAT


def _meta() -> ModelMeta:
    return ModelMeta(
        task="classification",
        objective="seq_cls",
        method="lora",
        base_model="minilm",
        labels=["a", "b"],
        text_prefix="",
        max_length=32,
        model={"name": "minilm"},
        versions={"open-autoglm": "0"},
        extra={"merged_from": "lora"},
    )


def test_model_meta_round_trips(tmp_path: Path) -> None:
    write_model_meta(tmp_path, _meta())
    written = json.loads((tmp_path / MODEL_META).read_text(encoding="utf-8"))
    assert written["format"] == META_FORMAT and written["merged_from"] == "lora"
    assert read_model_meta(tmp_path) == _meta()


def test_older_model_meta_without_format_reads_and_keeps_its_keys(tmp_path: Path) -> None:
    older = {"task": "sft", "objective": "causal_lm", "labels": None, "versions": {}}
    (tmp_path / MODEL_META).write_text(json.dumps(older), encoding="utf-8")
    meta = read_model_meta(tmp_path)
    assert meta.format == 0 and meta.objective == "causal_lm" and meta.max_length is None
    assert meta.to_json() == older | {"format": META_FORMAT}  # no key it lacked is invented


@pytest.mark.parametrize(
    ("content", "fault"),
    [
        (b'{"task": "classification", "obj', "not valid JSON at line 1"),
        (b"[1, 2]", "a JSON list, not an object"),
        (b'{"task": "\xff"}', "not UTF-8"),
    ],
)
def test_a_damaged_file_is_named_with_what_is_wrong(tmp_path: Path, content: bytes, fault: str) -> None:
    path = tmp_path / SUMMARY
    path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        read_summary(path)
    assert str(err.value).startswith(f"{path}: not a run summary (") and fault in str(err.value)
    (tmp_path / MODEL_META).write_bytes(content)
    with pytest.raises(ModelFolderError, match=fault):
        read_model_meta(tmp_path)
    with pytest.raises(ValueError, match=r"; delete it$"):
        read_json_object(path, "a record", "delete it")


def test_model_meta_names_a_missing_key(tmp_path: Path) -> None:
    (tmp_path / MODEL_META).write_text('{"task": "classification"}', encoding="utf-8")
    with pytest.raises(ModelFolderError, match=r"autoglm\.json: missing key 'objective'"):
        read_model_meta(tmp_path)


def test_removing_a_study_removes_its_files_and_keeps_the_data(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    for path in (*folder.study_files(), folder.config, folder.data_report, folder.trial(0).metrics):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x", encoding="utf-8")
    folder.model.mkdir()
    folder.remove_study()
    assert not any(p.exists() for p in (*folder.study_files(), folder.trials, folder.model))
    assert folder.config.exists() and folder.data_report.exists()
