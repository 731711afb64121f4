"""The gradient-aware learning rate of benchmarks/gradient_aware_lr.py (an experiment the benchmark compares with
cosine; not a product schedule): driven with synthetic gradients, then through a whole training run."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

from open_autoglm.config import validate_config
from open_autoglm.train.job import fit

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from gradient_aware_lr import AdaptiveLrFactor, AgreementRule, GradientAwareLr  # noqa: E402

RULE = AgreementRule(agree_threshold=0.5, raise_factor=1.25, lower_factor=0.5, max_factor=2.0)


def _gradient(sign: float = 1.0) -> list[torch.Tensor]:
    return [sign * torch.tensor([[1.0, 2.0], [3.0, 4.0]]), sign * torch.tensor([0.5, -1.0])]


def test_agreeing_gradients_raise_the_rate_up_to_the_clamp() -> None:
    controller = GradientAwareLr(RULE)
    assert controller.observe(0, _gradient()) is None  # nothing to compare with yet
    assert controller.observe(1, [1.1 * g for g in _gradient()]) == pytest.approx(1.0)
    assert controller.schedule.factor == pytest.approx(1.25)
    for step in range(2, 10):
        controller.observe(step, _gradient())
    assert controller.schedule.factor == pytest.approx(2.0)  # lr * max_factor at most


def test_alternating_gradients_lower_the_rate_down_to_the_clamp() -> None:
    controller = GradientAwareLr(RULE)
    controller.observe(0, _gradient())
    assert controller.observe(1, _gradient(-1.0)) == pytest.approx(-1.0)
    assert controller.schedule.factor == pytest.approx(0.5)
    for step in range(2, 10):
        controller.observe(step, _gradient(-1.0 if step % 2 else 1.0))
    assert controller.schedule.factor == pytest.approx(0.5)  # lr / max_factor at least


def test_weakly_related_gradients_leave_the_rate() -> None:
    controller = GradientAwareLr(RULE)
    controller.observe(0, [torch.tensor([1.0, 0.0])])
    assert controller.observe(1, [torch.tensor([1.0, 1.0])]) == pytest.approx(0.5**0.5)  # above 0.5: raise
    assert controller.observe(2, [torch.tensor([1.0, -0.5])]) == pytest.approx(0.5 / 2.5**0.5)  # within ±0.5
    assert controller.schedule.factor == pytest.approx(1.25)


def test_warm_up_comes_first_and_the_factor_is_saved_with_the_scheduler() -> None:
    schedule = AdaptiveLrFactor(warmup_steps=3)
    controller = GradientAwareLr(RULE, schedule)
    for step in range(3):
        controller.observe(step, _gradient())
    assert schedule.factor == 1.0  # agreement during the warm-up does not count
    assert [schedule(s) for s in range(3)] == pytest.approx([0.25, 0.5, 0.75])
    controller.observe(3, _gradient())
    assert schedule(3) == pytest.approx(1.25)

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    restored = AdaptiveLrFactor()
    torch.optim.lr_scheduler.LambdaLR(optimizer, restored).load_state_dict(scheduler.state_dict())
    assert (restored.warmup_steps, restored.factor) == (3, pytest.approx(1.25))


def test_gradient_aware_run_trains_and_moves_the_rate(
    tmp_path: Path, tiny_encoder: Path, topic_file: Path
) -> None:
    config = validate_config(
        {
            "name": "gradient-aware",
            "output_dir": str(tmp_path),
            "model": {"name": str(tiny_encoder)},
            "data": {"train": str(topic_file), "max_length": 32, "val_ratio": 0.2, "test_ratio": 0.0},
            "method": {"name": "lora"},
            "train": {
                "epochs": 2,
                "lr": 1e-2,
                "batch_size": 8,
                "logging_steps": 1,
                "scheduler": {"name": "constant", "warmup_ratio": 0.1},
            },
            "quiet": True,
        }
    )
    controller = GradientAwareLr(AgreementRule(raise_factor=1.2))
    result = fit(config, tmp_path / "trial", callbacks=[controller])
    # trains to the end (whether it trains *well* is the benchmark's question: it did not)
    assert math.isfinite(result.metrics["validation"]["loss"])
    rows = [json.loads(line) for line in (tmp_path / "trial" / "metrics.jsonl").read_text().splitlines()]
    warmup = controller.schedule.warmup_steps
    rates = [r["value"] for r in rows if r["name"] == "lr" and r["step"] > warmup + 1]
    assert len(set(rates)) > 2, f"the rate did not move after the warm-up: {rates}"
    factors = [log["lr_factor"] for log in result.trainer.state.log_history if "lr_factor" in log]
    assert factors and all(1 / 4.0 <= f <= 4.0 for f in factors) and max(factors) != min(factors)
