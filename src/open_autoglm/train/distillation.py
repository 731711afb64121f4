"""Distillation in the Trainer: a training run with `distill.teacher` mixes the teacher's soft targets into its
loss (the loss and the teacher live in `distill/`; this is the Trainer glue every training run shares)."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from open_autoglm.config import Config
from open_autoglm.distill.loss import alpha_at, mix_losses, soft_loss
from open_autoglm.distill.teacher import check_compatible, load_teacher
from open_autoglm.train.trainer import AutoglmTrainer

logger = logging.getLogger(__name__)


def distillation_kwargs(
    config: Config,
    objective: str,
    student: nn.Module,
    student_tokenizer: PreTrainedTokenizerBase,
    labels: list[str] | None,
) -> dict[str, Any]:
    """DistillationTrainer's extra arguments when the config names a teacher; {} when it does not."""
    distill = config.distill
    if not distill.teacher:
        return {}
    teacher, teacher_tokenizer = load_teacher(
        distill.teacher, objective, trust_remote_code=config.model.trust_remote_code
    )
    names = (distill.teacher, config.model.name)
    check_compatible(teacher, teacher_tokenizer, student, student_tokenizer, labels, names)
    logger.info(
        "distilling from %s (alpha %g%s, temperature %g)",
        distill.teacher,
        distill.alpha,
        "" if distill.alpha_end is None else f" → {distill.alpha_end:g}",
        distill.temperature,
    )
    return {
        "teacher": teacher,
        "alpha": distill.alpha,
        "alpha_end": distill.alpha_end,
        "temperature": distill.temperature,
        "token_level": objective != "seq_cls",
        "shift": objective == "causal_lm",
    }


class DistillationTrainer(AutoglmTrainer):
    """AutoglmTrainer whose training loss mixes in the teacher's soft targets; evaluation keeps the task loss,
    so eval_loss and perplexity compare with a run without a teacher."""

    def __init__(
        self,
        *args: Any,
        teacher: nn.Module,
        alpha: float,
        alpha_end: float | None,
        temperature: float,
        token_level: bool,
        shift: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.teacher = teacher.to(self.args.device).eval().requires_grad_(False)
        self.alpha, self.alpha_end, self.temperature = alpha, alpha_end, temperature
        self.token_level, self.shift = token_level, shift

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # type: ignore[no-untyped-def]
        alpha = alpha_at(self.state.global_step, self.state.max_steps, self.alpha, self.alpha_end)
        if not model.training or alpha == 0:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs["labels"]  # the hard loss may pop them from `inputs`
        teacher_inputs = {k: v for k, v in inputs.items() if k != "labels"}
        hard, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
        with torch.no_grad():
            teacher_logits = self.teacher(**teacher_inputs).logits
        # The token-level hard loss is divided by num_items_in_batch when the model takes it; so is the soft one.
        num_items = num_items_in_batch if self.token_level and self.model_accepts_loss_kwargs else None
        soft = soft_loss(
            outputs.logits,
            teacher_logits,
            self.temperature,
            labels if self.token_level else None,
            self.shift,
            num_items,
        )
        loss = mix_losses(hard, soft, alpha)
        return (loss, outputs) if return_outputs else loss
