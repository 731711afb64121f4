"""Classification losses for imbalanced labels: class-weighted cross-entropy and focal loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def balanced_class_weights(counts: list[int]) -> torch.Tensor:
    """Inverse-frequency weights n / (k * n_c), as scikit-learn's `class_weight='balanced'`."""
    counts_t = torch.tensor(counts, dtype=torch.float32).clamp(min=1)
    return counts_t.sum() / (len(counts) * counts_t)


def focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, gamma: float, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Focal loss (Lin et al., 2017): cross-entropy scaled by (1 - p_t)^gamma so easy examples count less.

    logits (B, C), targets (B,). gamma = 0 is (weighted) cross-entropy.
    """
    log_p = F.log_softmax(logits.float(), dim=-1)  # (B, C)
    log_pt = log_p.gather(1, targets.unsqueeze(1)).squeeze(1)  # (B,)
    loss = -((1 - log_pt.exp()) ** gamma) * log_pt
    if weight is not None:
        w = weight.to(logits.device)[targets]
        return (loss * w).sum() / w.sum()
    return loss.mean()


def classification_loss(
    logits: torch.Tensor, targets: torch.Tensor, name: str, gamma: float, weight: torch.Tensor | None
) -> torch.Tensor:
    if name == "focal":
        return focal_loss(logits, targets, gamma, weight)
    return F.cross_entropy(
        logits.float(), targets, weight=None if weight is None else weight.to(logits.device)
    )
