"""An experiment, not part of the product: `benchmarks/lr_schedule.py` found it no better than cosine with warm-up
(README there), so it is not a `train.scheduler` choice. It runs as a Trainer callback passed to `fit`.

A gradient-aware learning rate: after a linear warm-up, the rate grows while successive gradients point the same
way and shrinks when they turn against each other.

Agreeing gradients (cosine similarity above the threshold) say the steps are too short to cross the valley;
opposing ones (below minus the threshold) say they overshoot it — the sign rule of Rprop and Jacobs' delta-bar-delta,
applied to the whole update. The factor stays within [1 / max_factor, max_factor] of the configured rate, and
multiplies each parameter group's own rate, so layer-wise decay keeps its proportions.

The gradient is read before the optimizer step (after clipping, which scales it and leaves the cosine as it is);
the new factor applies from the next step. Cost per step: one copy of the trainable gradients and two dot products
per parameter tensor — nothing for LoRA, one parameter-sized buffer for full fine-tuning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import TrainerCallback


def linear_warmup(step: int, warmup_steps: int) -> float:
    """The warm-up multiplier at optimizer step `step` (0-based): rising linearly to 1, never 0."""
    return (step + 1) / (warmup_steps + 1)


@dataclass(frozen=True)
class AgreementRule:
    """How the factor moves: train.scheduler's gradient_aware settings as plain numbers."""

    agree_threshold: float = 0.0
    raise_factor: float = 1.05
    lower_factor: float = 0.7
    max_factor: float = 4.0


class AdaptiveLrFactor:
    """The multiplier LambdaLR applies to every group's rate: the warm-up, then the controller's factor.

    A callable object rather than a closure: LambdaLR saves such an object's attributes with the scheduler, so a run
    resumed from a checkpoint goes on at the factor it had reached.
    """

    def __init__(self, warmup_steps: int = 0) -> None:
        self.warmup_steps = warmup_steps
        self.factor = 1.0

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return linear_warmup(step, self.warmup_steps)
        return self.factor


class GradientAwareLr(TrainerCallback):
    """Moves `schedule.factor` by the agreement of each optimizer step's gradient with the one before."""

    def __init__(self, rule: AgreementRule, schedule: AdaptiveLrFactor | None = None) -> None:
        self.rule = rule
        self.schedule = schedule or AdaptiveLrFactor()
        self.last_cosine: float | None = None
        self._previous: list[torch.Tensor] | None = (
            None  # last step's gradients, one flat fp32 tensor per parameter
        )
        self._previous_norm = 0.0

    def on_train_begin(self, args, state, control, lr_scheduler=None, **kwargs):  # type: ignore[no-untyped-def]
        """Take over the rate: the Trainer's LambdaLR (constant_with_warmup) multiplies by our factor instead."""
        self.schedule.warmup_steps = args.get_warmup_steps(state.max_steps)
        lr_scheduler.lr_lambdas = [self.schedule for _ in lr_scheduler.lr_lambdas]

    def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
        if logs is not None and "learning_rate" in logs and state.log_history:
            state.log_history[-1]["lr_factor"] = self.schedule.factor  # the record the Trainer just kept

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):  # type: ignore[no-untyped-def]
        if optimizer is not None:
            gradients = [
                p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None
            ]
            self.observe(state.global_step, gradients)

    def observe(self, step: int, gradients: Sequence[torch.Tensor]) -> float | None:
        """Compare `gradients` with the last ones and, past the warm-up, move the factor; returns the cosine
        (None when there is nothing to compare with: the first step, or a different set of parameters)."""
        current = [g.detach().reshape(-1).float() for g in gradients]  # views of fp32 gradients: no copy
        if not current:
            return None
        norm = float(torch.stack([torch.dot(g, g) for g in current]).sum().sqrt())
        cosine = self._cosine(current, norm)
        self._remember(current, norm)
        self.last_cosine = cosine
        if cosine is None or step < self.schedule.warmup_steps:
            return cosine
        rule, factor = self.rule, self.schedule.factor
        if cosine > rule.agree_threshold:
            factor *= rule.raise_factor
        elif cosine < -rule.agree_threshold:
            factor *= rule.lower_factor
        self.schedule.factor = min(max(factor, 1.0 / rule.max_factor), rule.max_factor)
        return cosine

    def _cosine(self, current: list[torch.Tensor], norm: float) -> float | None:
        previous = self._previous
        if previous is None or [p.shape for p in previous] != [g.shape for g in current]:
            return None
        if norm == 0.0 or self._previous_norm == 0.0:
            return 0.0
        dot = torch.stack([torch.dot(g, p) for g, p in zip(current, previous, strict=True)]).sum()
        return float(dot) / (norm * self._previous_norm)

    def _remember(self, current: list[torch.Tensor], norm: float) -> None:
        if self._previous is None or [p.shape for p in self._previous] != [g.shape for g in current]:
            self._previous = [g.clone() for g in current]
        else:  # reuse the buffers: no allocation per step
            for buffer, g in zip(self._previous, current, strict=True):
                buffer.copy_(g)
        self._previous_norm = norm
