"""Freeze tuning: train only the top N transformer layers and the task head."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field
from torch import nn

from open_autoglm.config.base import StrictModel
from open_autoglm.methods.base import (
    METHODS,
    BaseMethod,
    MethodContext,
    MethodNotApplicable,
    ModelShape,
)

# Final norms sit between the top layer and the head; they train with the top layers.
_FINAL_NORM_NAMES = ("norm", "ln_f", "final_layer_norm", "final_layernorm")


class FreezeParams(StrictModel):
    layers: int = Field(2, ge=1, description="number of top transformer layers that train")


def find_layer_stack(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The model's stack of transformer blocks: the longest ModuleList of identical blocks."""
    best: tuple[str, nn.ModuleList] | None = None
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            same_kind = len({type(m) for m in module}) == 1
            if same_kind and (best is None or len(module) > len(best[1])):
                best = (name, module)
    if best is None:
        raise MethodNotApplicable(f"freeze: found no stack of transformer layers in {type(model).__name__}")
    return best


@METHODS.register
class FreezeMethod(BaseMethod):
    name: ClassVar[str] = "freeze"
    params_cls = FreezeParams
    uses_peft = False

    def apply(self, model: nn.Module, params: FreezeParams, ctx: MethodContext) -> nn.Module:
        _, layers = find_layer_stack(model)
        model.requires_grad_(False)
        for block in layers[-min(params.layers, len(layers)) :]:
            block.requires_grad_(True)
        for name, module in model.named_modules():
            leaf = name.rsplit(".", 1)[-1]
            if leaf in _FINAL_NORM_NAMES or any(name == h or name.endswith("." + h) for h in ctx.head_names):
                module.requires_grad_(True)
        return model

    @classmethod
    def trainable_params(cls, shape: ModelShape, params: Mapping[str, Any]) -> float:
        return cls.blocks_with_activations(shape, params) * shape.layer_params

    @classmethod
    def blocks_with_activations(cls, shape: ModelShape, params: Mapping[str, Any]) -> int:
        return min(params["layers"], shape.layers)
