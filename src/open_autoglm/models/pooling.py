"""One vector per text from an encoder's token states."""

from __future__ import annotations

from torch import Tensor


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """(B, T, H) states averaged over each text's real tokens (padding left out): (B, H)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
