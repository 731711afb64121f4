"""A tiny LoRA classifier trained once for the export tests (a plain module, not conftest.py: a second
conftest module would shadow tests/conftest.py, which the test modules import by name)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from open_autoglm.config import Config, validate_config
from open_autoglm.train.job import run_train


def tiny_config(tmp_path: Path, model: Path, data: Path, method: str = "lora") -> Config:
    return validate_config(
        {
            "name": "run",
            "task": "classification",
            "output_dir": str(tmp_path),
            "model": {"name": str(model), "device": "cpu"},
            "data": {"train": str(data), "max_length": 24, "val_ratio": 0.2, "test_ratio": 0.25},
            "method": {"name": method, "r": 4} if method == "lora" else {"name": method},
            "train": {"epochs": 2, "lr": 5e-3, "batch_size": 16, "seed": 3},
            "export": {"calibration_rows": 100},
            "quiet": True,
        },
        "test",
    )


@pytest.fixture(scope="session", name="trained_lora")
def trained_lora_fixture(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: Path) -> Config:
    from open_autoglm.data.synthetic import make_topic_rows

    tmp = tmp_path_factory.mktemp("export")
    data = tmp / "topics.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in make_topic_rows(240, seed=5)), encoding="utf-8")
    config = tiny_config(tmp, tiny_encoder, data)
    run_train(config)
    return config
