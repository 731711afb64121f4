"""Real pretrained encoders on two real tasks each: every task must beat its majority class clearly.

Kept small for a 2-core CI machine (a few hundred rows per task, 48 tokens, LoRA, two or three epochs).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SHARED_DATA, SHARED_MODELS, write_jsonl

from open_autoglm.config import validate_config
from open_autoglm.multitask import run_multitask

pytestmark = pytest.mark.slow
SPLIT = {"max_length": 48, "val_ratio": 0.1, "test_ratio": 0.3}


def _run(tmp_path: Path, model: str, tasks: list[dict], weighting: str, epochs: float = 2) -> dict:
    config = validate_config(
        {
            "name": "mt",
            "output_dir": str(tmp_path),
            "recipe": "multitask",
            "model": {"name": model, "device": "cpu", "precision": "fp32"},
            "method": {"name": "lora", "r": 8},
            "train": {"epochs": epochs, "lr": 5e-3, "batch_size": 16, "seed": 0},
            "multitask": {"tasks": tasks, "sampling": "temperature", "loss_weighting": weighting},
            "quiet": True,
        }
    )
    return run_multitask(config)


def _beats_majority(summary: dict, margins: dict[str, float]) -> None:
    for task, margin in margins.items():
        block = summary["tasks"][task]
        assert block["test"]["accuracy"] >= block["majority_accuracy"] + margin, (task, block)


def test_e5_on_chinese_sentiment_and_news_topics_with_uncertainty(tmp_path: Path) -> None:
    tnews = SHARED_DATA / "fewclue_tnews" / "train_few_all.json"
    tasks = [
        {
            "name": "sentiment",
            "data": {
                "train": str(SHARED_DATA / "chnsenticorp_htl" / "ChnSentiCorp_htl_all.csv"),
                "text_field": "review",
                "text_prefix": "query: ",
                "max_rows": 300,
                **SPLIT,
            },
        },
        {
            "name": "news",
            "data": {
                "train": str(tnews),
                "text_field": "sentence",
                "text_prefix": "query: ",
                "max_rows": 300,
                **SPLIT,
            },
        },
    ]
    model = str(SHARED_MODELS / "multilingual-e5-small-zhen")
    summary = _run(tmp_path, model, tasks, "uncertainty", epochs=3)  # at 2, sentiment stays at its majority
    _beats_majority(summary, {"sentiment": 0.08, "news": 0.15})  # majorities: about 0.69 and 0.07 (15 topics)


def test_minilm_on_sst2_and_trec_with_pcgrad(tmp_path: Path) -> None:
    lines = (SHARED_DATA / "trec_qc" / "train_5500.label").read_text(encoding="latin-1").splitlines()
    trec = write_jsonl(  # "<COARSE>:<fine> question" → the six coarse classes
        tmp_path / "trec.jsonl",
        [{"text": line.split(" ", 1)[1], "label": line.split(":", 1)[0]} for line in lines],
    )
    tasks = [
        {
            "name": "sst2",
            "data": {
                "train": str(SHARED_DATA / "sst2" / "train.tsv"),
                "columns": ["label", "text"],
                "max_rows": 400,
                **SPLIT,
            },
        },
        {"name": "trec", "data": {"train": str(trec), "max_rows": 400, **SPLIT}},
    ]
    summary = _run(tmp_path / "run", "minilm", tasks, "pcgrad")
    _beats_majority(summary, {"sst2": 0.15, "trec": 0.25})  # majorities: about 0.52 and 0.23
    assert json.loads((tmp_path / "run" / "mt" / "summary.json").read_text())["tasks"]["trec"]["labels"] == [
        "ABBR",
        "DESC",
        "ENTY",
        "HUM",
        "LOC",
        "NUM",
    ]
