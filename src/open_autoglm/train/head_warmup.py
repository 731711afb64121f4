"""Train the head first: for the first steps only the task head and the modules the checkpoint lacked learn.

A randomly initialised head sends large, meaningless gradients into the pretrained layers below it and distorts
their features before it has learned anything (Kumar et al. 2022, "Fine-tuning can distort pretrained features":
linear probing, then fine-tuning). Encoders shipped without their masked-LM head (MiniLM, e5) hit this in continued
pretraining. Frozen parameters get no gradient, and torch's optimizers skip a parameter without one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from torch import nn
from transformers import TrainerCallback

logger = logging.getLogger(__name__)


def is_head(name: str, heads: Sequence[str]) -> bool:
    return any(f".{head}." in f".{name}" for head in heads)


class HeadWarmupCallback(TrainerCallback):
    """Until optimizer step `steps`, the parameters outside `heads` that would train are frozen."""

    def __init__(self, model: nn.Module, heads: Sequence[str], steps: int) -> None:
        self.steps = steps
        self.body = [p for n, p in model.named_parameters() if p.requires_grad and not is_head(n, heads)]
        if len(self.body) == sum(1 for p in model.parameters() if p.requires_grad):
            raise ValueError(f"train.head_warmup_ratio: no trainable head among {list(heads)}")

    def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.global_step < self.steps:  # a run resumed after the warm-up trains everything at once
            logger.info("head warm-up: %d steps train only the head", self.steps - state.global_step)
            self._body_trains(False)

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.global_step == self.steps:
            self._body_trains(True)

    def _body_trains(self, trains: bool) -> None:
        for parameter in self.body:
            parameter.requires_grad_(trains)
