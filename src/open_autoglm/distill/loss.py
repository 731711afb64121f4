"""Knowledge distillation's loss: the student learns from a frozen teacher's temperature-softened logits as
well as from the hard labels (Hinton et al., 2015).

loss = alpha · KL(teacher_T ‖ student_T) · T² + (1 - alpha) · hard loss, where alpha may move linearly over the
steps. The T² keeps the soft term's gradients on the hard term's scale whatever the temperature.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


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
