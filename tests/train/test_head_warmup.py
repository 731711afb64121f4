"""train.head_warmup_ratio: the pretrained layers stay put while a new head learns, then everything trains."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from open_autoglm.config import validate_config
from open_autoglm.train import job as train_job
from open_autoglm.train.head_warmup import HeadWarmupCallback


class Snapshots(TrainerCallback):
    """The weights of one body layer and of the head after every optimizer step."""

    def __init__(self) -> None:
        self.body: list[torch.Tensor] = []
        self.head: list[torch.Tensor] = []

    def on_step_end(self, args, state, control, model=None, **kwargs):  # type: ignore[no-untyped-def]
        weights = dict(model.named_parameters())
        self.body.append(weights["bert.encoder.layer.0.attention.self.query.weight"].detach().clone())
        self.head.append(weights["classifier.weight"].detach().clone())


def _config(tmp_path: Path, model: Path, data: Path, ratio: float) -> object:
    return validate_config(
        {
            "name": "warm",
            "output_dir": str(tmp_path),
            "model": {"name": str(model)},
            "data": {"train": str(data), "max_length": 16, "val_ratio": 0.2, "test_ratio": 0.0},
            "method": "full",
            "train": {"epochs": 1, "lr": 5e-3, "batch_size": 16, "head_warmup_ratio": ratio},
            "quiet": True,
        }
    )


def test_the_body_waits_for_the_head(tmp_path: Path, tiny_encoder: Path, topic_file: Path) -> None:
    config = _config(tmp_path, tiny_encoder, topic_file, 0.5)
    initial = dict(
        train_job.load_model(str(tiny_encoder), config.model, "seq_cls", ["a"], 0)[0].named_parameters()
    )
    snapshots = Snapshots()
    result = train_job.fit(config, tmp_path / "trial", resume=False, callbacks=[snapshots], baseline=False)

    steps = result.trainer.state.global_step
    warm = math.ceil(steps / 2)
    assert steps >= 4 and len(snapshots.body) == steps
    start = initial["bert.encoder.layer.0.attention.self.query.weight"]
    assert all(torch.equal(body, start) for body in snapshots.body[:warm])  # frozen during the warm-up
    assert not torch.equal(snapshots.body[warm], start)  # then it trains
    assert not torch.equal(snapshots.head[0], snapshots.head[1])  # the head learns from the first step
    assert all(p.requires_grad for p in result.trainer.model.parameters())


def test_no_head_to_warm_up_is_an_error(tmp_path: Path, tiny_encoder: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="no trainable head"):
        HeadWarmupCallback(model, ("classifier",), 3)
