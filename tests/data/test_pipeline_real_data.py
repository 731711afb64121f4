"""The pipeline on the real public files in shared/data: every row accounted for, and their known defects found."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import load_run_data

from open_autoglm.config import validate_config
from open_autoglm.data.splits import LoadedData

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"  # CI has shared/ beside the repo
pytestmark = pytest.mark.slow


def prepare(tmp_path: Path, task: str = "classification", **data: Any) -> LoadedData:
    raw = {"name": "run", "output_dir": str(tmp_path), "quiet": True, "task": task, "data": data}
    loaded = load_run_data(validate_config(raw, "test"))
    report = loaded.report
    assert report["rows_in"] == report["rows_kept"] + sum(report["removed"].values()) + report["quarantined"]
    written = sum(len(rows) for rows in loaded.splits.values())
    assert written == report["rows_kept"] + report["repeated_by_weight"] + report["augmented"]
    return loaded


def removed_lines(tmp_path: Path, reason: str) -> list[int]:
    lines = (tmp_path / "run" / "data" / "removed.jsonl").read_text(encoding="utf-8").splitlines()
    return [r["line"] for r in map(json.loads, lines) if r["reason"] == reason]


def test_sst2_duplicates_and_quoting(tmp_path: Path) -> None:
    loaded = prepare(tmp_path, train=str(DATA / "sst2" / "train.tsv"), columns=["label", "text"])
    report = loaded.report
    assert report["rows_in"] == 6920 and report["quarantined"] == 0
    assert report["duplicates"]["exact"] >= 9  # the 9 duplicate lines SOURCE.txt names, at least
    assert report["duplicates"]["rate_after"] == 0.0
    assert report["languages"].get("en", 0) > 0.95 * report["rows_kept"]
    texts = [r["text"] for rows in loaded.splits.values() for r in rows]
    assert sum("``" in t for t in texts) > 100  # its `` '' quote marks survive as text (read with QUOTE_NONE)
    assert len(set(texts)) == len(texts)


def test_sms_spam_duplicates_and_phone_numbers(tmp_path: Path) -> None:
    loaded = prepare(tmp_path, train=str(DATA / "sms_spam" / "SMSSpamCollection"), columns=["label", "text"])
    report = loaded.report
    assert report["rows_in"] == 5574
    assert report["duplicates"]["exact"] >= 403  # SOURCE.txt: 403 duplicate messages
    assert report["removed"]["exact_duplicate"] == report["duplicates"]["exact"]  # keep_first: all but one go
    assert report["pii"].get("phone", 0) > 50  # premium-rate and freephone numbers in the spam
    assert set(report["labels"]["train"]) == {"ham", "spam"}


def test_chnsenticorp_empty_review_is_quarantined_with_its_line(tmp_path: Path) -> None:
    path = DATA / "chnsenticorp_htl" / "ChnSentiCorp_htl_all.csv"
    loaded = prepare(tmp_path, train=str(path), text_field="review")
    report = loaded.report
    assert report["rows_in"] == 7766 and report["quarantined"] == 1
    quarantine = (tmp_path / "run" / "data" / "quarantine.jsonl").read_text(encoding="utf-8")
    assert f'"file": "{path}", "line": 6376' in quarantine
    assert report["languages"].get("zh", 0) + report["languages"].get("zh-en", 0) > 0.95 * report["rows_kept"]
    train = report["labels"]["train"]
    assert 0.6 < train["1"] / (train["0"] + train["1"]) < 0.75  # stratified: the file's 69% positives


def test_trec_latin1_is_detected_and_converted(tmp_path: Path) -> None:
    loaded = prepare(
        tmp_path, task="pretrain", train=str(DATA / "trec_qc" / "train_5500.label"), format="text"
    )
    report = loaded.report
    assert report["encodings"][str(DATA / "trec_qc" / "train_5500.label")] == "latin-1"
    assert report["rows_in"] == 5452
    assert any("sisterðcity" in r["text"] for rows in loaded.splits.values() for r in rows)


def test_web_warc_pages_become_main_text_and_the_duplicate_payload_is_found(tmp_path: Path) -> None:
    folder = DATA / "web_warc_dolma"
    loaded = prepare(
        tmp_path,
        task="pretrain",
        train=[str(folder / "sample-0000.warc.gz"), str(folder / "sample-0001.warc.gz")],
        val_ratio=0.15,
        test_ratio=0.15,
    )
    report = loaded.report
    assert report["rows_in"] == 37
    assert report["duplicates"]["exact"] >= 1 and removed_lines(tmp_path, "exact_duplicate")
    texts = [r["text"] for rows in loaded.splits.values() for r in rows]
    assert not any("<script" in t or "<div" in t for t in texts)
    assert sum(len(t) > 200 for t in texts) > 0.6 * len(texts)


def test_medical_sharegpt_dialogues(tmp_path: Path) -> None:
    loaded = prepare(tmp_path, task="sft", train=str(DATA / "medical_sft_zh" / "medical_sft_1K_format.jsonl"))
    report = loaded.report
    assert report["rows_in"] == 1000
    rows = [r for split in loaded.splits.values() for r in split]
    assert all([t["role"] for t in r["messages"]] == ["user", "assistant"] for r in rows)
    assert report["languages"].get("zh", 0) + report["languages"].get("zh-en", 0) > 0.9 * len(rows)
