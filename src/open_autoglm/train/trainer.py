"""Our Trainer: the Hugging Face Trainer plus what it lacks — class-weighted/focal loss, a step schedule,
Adam/SGD choice, and a hard stop on a non-finite loss."""

from __future__ import annotations

import math
from typing import Any

import torch
from transformers import Trainer


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training would only produce garbage from here."""


class AutoglmTrainer(Trainer):
    def __init__(
        self,
        *args: Any,
        loss_name: str = "ce",
        focal_gamma: float = 2.0,
        class_weights: torch.Tensor | None = None,
        step_schedule: tuple[int, float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.loss_name = loss_name
        self.focal_gamma = focal_gamma
        self.class_weights = class_weights
        self.step_schedule = step_schedule  # (step_size, gamma) for the `step` scheduler

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[no-untyped-def]
        if self.loss_name == "ce" and self.class_weights is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        from open_autoglm.train.losses import classification_loss

        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = classification_loss(
            outputs.logits, labels, self.loss_name, self.focal_gamma, self.class_weights
        )
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):  # type: ignore[no-untyped-def]
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not math.isfinite(float(loss)):
            raise NonFiniteLossError(
                f"the training loss became {float(loss)} at step {self.state.global_step + 1}; "
                "lower train.lr, raise train.max_grad_norm clipping (e.g. 1.0), or use precision fp32"
            )
        return loss

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None):  # type: ignore[no-untyped-def]
        if self.step_schedule is None or self.lr_scheduler is not None:
            return super().create_scheduler(num_training_steps, optimizer)
        step_size, gamma = self.step_schedule
        warmup = self.args.get_warmup_steps(num_training_steps)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            return gamma ** ((step - warmup) // step_size)

        target = optimizer or self.optimizer
        assert target is not None, "the optimizer is created before the scheduler"
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(target, factor)
        return self.lr_scheduler
