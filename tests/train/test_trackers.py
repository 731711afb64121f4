"""`train.report_to`: metrics reach the trackers users run, through the Trainer's own integrations."""

from __future__ import annotations

from pathlib import Path

import pytest

from open_autoglm.config import ConfigError, validate_config
from open_autoglm.train.job import run_train


def _config(tmp_path: Path, model: Path, data: Path, report_to: list[str]) -> object:
    return validate_config(
        {
            "name": "tracked",
            "output_dir": str(tmp_path),
            "model": {"name": str(model)},
            "data": {"train": str(data), "max_length": 16},
            "method": {"name": "lora", "r": 4},
            "train": {"epochs": 1, "batch_size": 16, "logging_steps": 2, "report_to": report_to},
            "quiet": True,
        },
        "test",
    )


def test_tensorboard_gets_training_and_evaluation_scalars(
    tmp_path: Path, tiny_encoder: Path, topic_file: Path
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = _config(tmp_path, tiny_encoder, topic_file, ["tensorboard"])
    run_train(config)
    logdir = config.run_dir / "tensorboard" / "0"
    events = EventAccumulator(str(logdir))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "eval/accuracy", "eval/loss"} <= scalars, scalars
    assert len(events.Scalars("train/loss")) >= 2
    assert "args" in " ".join(events.Tags()["tensors"])  # the training arguments, as text


def test_a_tracker_that_is_not_installed_is_refused_up_front(
    tmp_path: Path, tiny_encoder: Path, topic_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real_find_spec(name, *a)
    )
    with pytest.raises(ConfigError, match=r"train.report_to.*wandb is not installed: pip install wandb"):
        _config(tmp_path, tiny_encoder, topic_file, ["wandb"])
    with pytest.raises(ConfigError, match="report_to"):
        _config(tmp_path, tiny_encoder, topic_file, ["neptune"])
