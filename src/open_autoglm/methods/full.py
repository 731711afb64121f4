"""Full fine-tuning: every parameter trains."""

from __future__ import annotations

from typing import ClassVar

from torch import nn

from open_autoglm.config.base import StrictModel
from open_autoglm.methods.base import BaseMethod, MethodContext, register_method


class FullParams(StrictModel):
    pass


@register_method
class FullMethod(BaseMethod):
    name: ClassVar[str] = "full"
    params_cls = FullParams
    uses_peft = False

    def apply(self, model: nn.Module, params: FullParams, ctx: MethodContext) -> nn.Module:
        model.requires_grad_(True)
        return model
