"""Applying a method to a model, with a dry run so an unsupported combination fails now, clearly."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from open_autoglm.methods import BaseMethod, MethodContext, MethodNotApplicable


def apply_method(
    method: BaseMethod, model: nn.Module, params: Any, ctx: MethodContext, probe: dict
) -> nn.Module:
    """Apply `method` and run one forward pass on `probe` (a collated batch of two examples)."""
    model_type = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
    adapted = method.apply(model, params, ctx)
    trainable, _ = count_parameters(adapted)
    if trainable == 0:
        raise MethodNotApplicable(
            f"method {method.name!r} left no trainable parameter in the {model_type} model"
        )
    was_training = adapted.training
    adapted.eval()
    try:
        with torch.no_grad():
            adapted(**probe)
    except Exception as err:  # any failure here means this method cannot run on this model
        raise MethodNotApplicable(
            f"method {method.name!r} cannot run on a {model_type} model for {ctx.task}: "
            f"{type(err).__name__}: {err}"
        ) from err
    finally:
        adapted.train(was_training)
    return adapted


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
