"""Real data, real model: MiniLM adapted to question text (TREC training questions, labels dropped), fine-tuned
with LoRA on TREC question types, and probed on SST-2 sentiment (what it kept of another task)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SHARED_DATA, write_jsonl

from open_autoglm.config import validate_config
from open_autoglm.transfer import run_transfer

pytestmark = pytest.mark.slow


def _trec(name: str, encoding: str) -> list[dict[str, str]]:
    """Rows of "<COARSE>:<fine> <question>" (train_5500 is Latin-1, TREC_10 ASCII) as {text, label}."""
    lines = (SHARED_DATA / "trec_qc" / name).read_text(encoding=encoding).splitlines()
    return [{"text": line.split(" ", 1)[1], "label": line.split(":", 1)[0]} for line in lines]


def _sst2(n: int) -> list[dict[str, str]]:
    """Headerless TSV "<label>\t<sentence>", split on the first tab (sentences hold quote characters)."""
    lines = (SHARED_DATA / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()[:n]
    return [{"text": s, "label": y} for y, s in (line.split("\t", 1) for line in lines)]


def test_minilm_adapted_to_questions_then_lora_on_trec(tmp_path: Path) -> None:
    domain = tmp_path / "questions.txt"
    domain.write_text("\n".join(r["text"] for r in _trec("train_5500.label", "latin-1")[::25]) + "\n")
    target = write_jsonl(tmp_path / "trec.jsonl", _trec("TREC_10.label", "ascii")[:300])
    sentiment = write_jsonl(tmp_path / "sst2.jsonl", _sst2(240))
    config = validate_config(
        {
            "name": "minilm-transfer",
            "output_dir": str(tmp_path / "runs"),
            "recipe": "transfer",
            "model": {"name": "minilm", "device": "cpu", "precision": "fp32"},
            "data": {"train": str(target), "max_length": 32, "val_ratio": 0.1, "test_ratio": 0.3},
            "method": {"name": "lora", "r": 8},
            "train": {"epochs": 2, "lr": 5e-3, "batch_size": 16, "seed": 0},
            "transfer": {
                "domain_text": str(domain),
                "pretrain_epochs": 1,
                "pretrain_lr": 1e-4,
                "second_task": {
                    "train": str(sentiment),
                    "max_length": 32,
                    "val_ratio": 0.1,
                    "test_ratio": 0.4,
                },
            },
            "quiet": True,
        }
    )
    summary = run_transfer(config)
    block = summary["transfer"]
    print(json.dumps(block, indent=1))  # the figures, for the log
    assert block["domain_perplexity"]["after"] < block["domain_perplexity"]["before"]
    for run in ("adapted", "without_adaptation"):
        assert block["target"][run]["accuracy"] > block["target"]["majority_accuracy"] + 0.1, run
    second = block["second_task"]
    assert second["rows"]["test"] >= 90
    for backbone, accuracy in second["accuracy"].items():
        assert second["majority_accuracy"] + 0.05 < accuracy <= 1.0, backbone
