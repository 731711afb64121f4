"""Knowledge distillation: the student learns from a frozen teacher's temperature-softened logits as well as from
the hard labels (Hinton et al., 2015).

loss = alpha · KL(teacher_T ‖ student_T) · T² + (1 - alpha) · hard loss, where alpha may move linearly over the
steps. The T² keeps the soft term's gradients on the hard term's scale whatever the temperature. The student reads
the teacher's token ids, so both must share a vocabulary (and, for classification, the label set).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedTokenizerBase

from open_autoglm.config import Config
from open_autoglm.config.sections import ModelConfig
from open_autoglm.models import AUTOGLM_META, load_finetuned, load_model, load_tokenizer, resolve_model_path
from open_autoglm.train.trainer import AutoglmTrainer

IGNORE_INDEX = -100
logger = logging.getLogger(__name__)


def soft_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float,
    labels: torch.Tensor | None = None,
    shift: bool = False,
    num_items: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """KL(teacher_T ‖ student_T) · T², averaged over examples, or over the tokens whose label is not -100.

    Classification: logits (B, C), no labels. Token level: logits (B, L, V) and labels (B, L); `shift` for a causal
    LM, whose logits at t predict token t+1. `num_items` divides the summed KL instead of the token count, as the
    Trainer's token-level loss does under gradient accumulation.
    """
    if labels is not None:
        if shift:
            student_logits, teacher_logits, labels = (
                student_logits[:, :-1],
                teacher_logits[:, :-1],
                labels[:, 1:],
            )
        counted = labels != IGNORE_INDEX  # (B, L')
        student_logits, teacher_logits = student_logits[counted], teacher_logits[counted]  # (N, V)
    log_student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_teacher = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    kl = F.kl_div(log_student, log_teacher, reduction="none", log_target=True).sum(-1)  # (N,)
    denominator = num_items if num_items is not None else max(kl.numel(), 1)
    return kl.sum() / denominator * temperature**2


def mix_losses(hard: torch.Tensor, soft: torch.Tensor, alpha: float) -> torch.Tensor:
    return alpha * soft + (1 - alpha) * hard


def alpha_at(step: int, total_steps: int, alpha: float, alpha_end: float | None) -> float:
    """The soft loss's weight at optimizer step `step` (0-based): alpha, moving linearly to alpha_end at the last."""
    if alpha_end is None or total_steps <= 1:
        return alpha
    progress = min(step / (total_steps - 1), 1.0)
    return alpha + (alpha_end - alpha) * progress


def load_teacher(
    path: str | Path, objective: str, *, trust_remote_code: bool = False
) -> tuple[nn.Module, PreTrainedTokenizerBase]:
    """A model folder written by train (adapters load on their base), or — for language models only — any
    pretrained model: an untrained classifier head would teach noise. Its own code runs only when the caller's
    `trust_remote_code` (the operator's config) says so."""
    folder = Path(resolve_model_path(str(path)))
    if (folder / AUTOGLM_META).is_file():
        model, tokenizer, meta = load_finetuned(folder, trust_remote_code=trust_remote_code)
        if meta["objective"] != objective:
            raise ValueError(
                f"teacher {folder} was trained for {meta['objective']}, the student trains for {objective}"
            )
        return model, tokenizer
    if objective == "seq_cls":
        raise ValueError(
            f"teacher {folder} has no {AUTOGLM_META}: a classification teacher must be a model trained by "
            "autoglm train on the same labels"
        )
    model_cfg = ModelConfig(trust_remote_code=trust_remote_code)
    tokenizer = load_tokenizer(str(folder), model_cfg)
    model, _ = load_model(str(folder), model_cfg, objective, pad_token_id=tokenizer.pad_token_id)
    return model.eval(), tokenizer


def check_compatible(
    teacher: nn.Module,
    teacher_tokenizer: PreTrainedTokenizerBase,
    student: nn.Module,
    student_tokenizer: PreTrainedTokenizerBase,
    labels: list[str] | None,
    names: tuple[str, str],
) -> None:
    """Refuse now what would make the KL term meaningless: a different vocabulary (the student's token ids would
    mean other words to the teacher), logits of another width, or classes in another order."""
    teacher_name, student_name = names
    teacher_config: Any = teacher.config
    student_config: Any = student.config
    if teacher_tokenizer.get_vocab() != student_tokenizer.get_vocab():
        raise ValueError(
            f"teacher {teacher_name} and student {student_name} have different vocabularies "
            f"({len(teacher_tokenizer)} and {len(student_tokenizer)} tokens); distillation needs a shared tokenizer"
        )
    if labels is not None:
        teacher_labels = [teacher_config.id2label[i] for i in range(teacher_config.num_labels)]
        if teacher_labels != labels:
            raise ValueError(
                f"teacher {teacher_name} predicts labels {teacher_labels} but student {student_name} "
                f"trains on {labels}; distillation needs the same labels in the same order"
            )
    elif teacher_config.vocab_size != student_config.vocab_size:
        raise ValueError(
            f"teacher {teacher_name} has {teacher_config.vocab_size} output tokens but student {student_name} "
            f"has {student_config.vocab_size}"
        )


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
