"""A method that cannot apply to a model or task fails before training, saying why and which key to change."""

from __future__ import annotations

from pathlib import Path

import pytest

from open_autoglm.config import validate_config
from open_autoglm.methods import MethodNotApplicable
from open_autoglm.train.job import fit


def _fit(tmp_path: Path, model: Path, data: Path, task: str, method: dict, max_steps: int = 1) -> None:
    config = validate_config(
        {
            "output_dir": str(tmp_path),
            "task": task,
            "model": {"name": str(model)},
            "data": {
                "train": str(data),
                "max_length": 16,
                "val_ratio": 0.2,
                "test_ratio": 0.0,
                "dedup": {"exact": False, "near": False},
            },
            "method": method,
            "train": {"max_steps": max_steps},
            "quiet": True,
        }
    )
    fit(config, tmp_path / "trial")


def test_prompt_methods_refuse_masked_lm(tmp_path: Path, tiny_encoder: Path, text_file: Path) -> None:
    with pytest.raises(
        MethodNotApplicable, match="method 'prompt' needs sequence classification or a causal LM"
    ):
        _fit(tmp_path, tiny_encoder, text_file, "pretrain", {"name": "prompt"})


def test_unknown_target_module_names_the_key(tmp_path: Path, tiny_encoder: Path, topic_file: Path) -> None:
    with pytest.raises(
        MethodNotApplicable, match=r"method 'lora' cannot be applied to a bert model.*method\.target_modules"
    ):
        _fit(
            tmp_path,
            tiny_encoder,
            topic_file,
            "classification",
            {"name": "lora", "target_modules": ["q_proj"]},
        )


def test_adalora_needs_enough_steps(tmp_path: Path, tiny_encoder: Path, topic_file: Path) -> None:
    with pytest.raises(MethodNotApplicable, match="adalora: the run has 10 optimizer steps"):
        _fit(
            tmp_path,
            tiny_encoder,
            topic_file,
            "classification",
            {"name": "adalora", "tinit": 0.6, "tfinal": 0.4},
            10,
        )


def test_freeze_more_layers_than_the_model_has_trains_them_all(
    tmp_path: Path, tiny_encoder: Path, topic_file: Path
) -> None:
    _fit(tmp_path, tiny_encoder, topic_file, "classification", {"name": "freeze", "layers": 99})
