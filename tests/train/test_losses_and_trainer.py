"""Losses for imbalanced labels, the step schedule, and the hard stop on a non-finite loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import TrainingArguments

from open_autoglm.train.losses import balanced_class_weights, classification_loss, focal_loss
from open_autoglm.train.trainer import AutoglmTrainer, NonFiniteLossError


def test_focal_with_gamma_zero_is_cross_entropy() -> None:
    logits, targets = (
        torch.randn(8, 3, generator=torch.Generator().manual_seed(0)),
        torch.tensor([0, 1, 2, 0, 1, 2, 0, 1]),
    )
    assert focal_loss(logits, targets, gamma=0.0) == pytest.approx(
        nn.functional.cross_entropy(logits, targets).item()
    )


def test_focal_down_weights_easy_examples() -> None:
    easy = torch.tensor([[6.0, 0.0]])
    hard = torch.tensor([[0.2, 0.0]])
    target = torch.tensor([0])
    ratio_focal = focal_loss(easy, target, 2.0) / focal_loss(hard, target, 2.0)
    ratio_ce = focal_loss(easy, target, 0.0) / focal_loss(hard, target, 0.0)
    assert ratio_focal < ratio_ce / 10


def test_balanced_weights_are_inverse_frequency() -> None:
    weights = balanced_class_weights([75, 25])
    assert weights.tolist() == pytest.approx([100 / (2 * 75), 100 / (2 * 25)])


def test_weighted_cross_entropy_counts_the_rare_class_more() -> None:
    logits = torch.zeros(2, 2)
    targets = torch.tensor([0, 1])
    plain = classification_loss(logits, targets, "ce", 2.0, None)
    weighted = classification_loss(logits, targets, "ce", 2.0, torch.tensor([1.0, 3.0]))
    assert plain == pytest.approx(weighted.item())  # uniform predictions: same mean, the weights cancel
    logits = torch.tensor([[2.0, 0.0], [2.0, 0.0]])  # right on class 0, wrong on class 1
    assert classification_loss(logits, targets, "ce", 2.0, torch.tensor([1.0, 3.0])) > classification_loss(
        logits, targets, "ce", 2.0, None
    )


class _Toy(nn.Module):
    def __init__(self, poison: bool = False) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 2)
        self.poison = poison

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.linear(x)
        loss = nn.functional.cross_entropy(logits, labels)
        return {"loss": loss * float("nan") if self.poison else loss, "logits": logits}


def _toy_trainer(tmp_path: Path, poison: bool = False, **kwargs) -> AutoglmTrainer:
    rows = [{"x": torch.randn(2), "labels": torch.tensor(i % 2)} for i in range(32)]
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        max_steps=8,
        learning_rate=0.1,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
        save_strategy="no",
        label_names=["labels"],
        remove_unused_columns=False,
        logging_nan_inf_filter=False,
    )
    return AutoglmTrainer(model=_Toy(poison), args=args, train_dataset=rows, **kwargs)


def test_non_finite_loss_stops_the_run_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(NonFiniteLossError, match="became nan at step 1; lower train.lr"):
        _toy_trainer(tmp_path, poison=True).train()


def test_step_schedule_decays_by_gamma_every_step_size(tmp_path: Path) -> None:
    trainer = _toy_trainer(tmp_path, step_schedule=(3, 0.5))
    trainer.create_optimizer_and_scheduler(num_training_steps=8)
    rates = []
    for _ in range(7):
        rates.append(trainer.lr_scheduler.get_last_lr()[0])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    assert rates == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025])
