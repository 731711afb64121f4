"""Full fine-tuning: every parameter trains."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import nn

from open_autoglm.config.base import StrictModel
from open_autoglm.methods.base import (
    METHODS,
    TASKS_ALL,
    BaseMethod,
    MethodContext,
    MethodSpace,
    ModelShape,
)


class FullParams(StrictModel):
    pass


@METHODS.register
class FullMethod(BaseMethod):
    name: ClassVar[str] = "full"
    params_cls = FullParams
    tasks = TASKS_ALL | {"multitask"}
    uses_peft = False
    # Every weight moves from a good start: rates about a tenth of those of parameter-efficient methods.
    search_spaces = {
        "classification": MethodSpace(lr=(1.0e-5, 5.0e-4)),
        "sft": MethodSpace(lr=(5.0e-6, 2.0e-4)),
        "pretrain": MethodSpace(lr=(1.0e-5, 3.0e-4)),
    }
    lr_param = "lr_full"

    def apply(self, model: nn.Module, params: FullParams, ctx: MethodContext) -> nn.Module:
        model.requires_grad_(True)
        return model

    @classmethod
    def trainable_params(cls, shape: ModelShape, params: Mapping[str, Any]) -> float:
        return shape.params
