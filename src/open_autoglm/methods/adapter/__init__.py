"""Bottleneck adapters after each feed-forward block, saved and loaded as a PEFT adapter.

Apply with `AdapterMethod().apply(model, AdapterParams(...), ctx)`; the result is a `peft.PeftModel`, so
`model.save_pretrained(dir)` writes adapter_model.safetensors + adapter_config.json and
`peft.PeftModel.from_pretrained(fresh_base, dir)` restores it (this package must be imported first: that
registers the tuner with PEFT).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field
from torch import nn

from open_autoglm.config.base import StrictModel
from open_autoglm.methods.adapter.tuner import (
    FFN_OUTPUT_MODULES,
    PEFT_TYPE,
    BottleneckAdapterConfig,
    BottleneckAdapterLayer,
    BottleneckAdapterModel,
)
from open_autoglm.methods.base import (
    METHODS,
    BaseMethod,
    MethodContext,
    MethodNotApplicable,
    MethodSpace,
    ModelShape,
)
from open_autoglm.methods.peft_glue import get_peft_model_or_explain, modules_to_save, peft_task_type

__all__ = [
    "FFN_OUTPUT_MODULES",
    "PEFT_TYPE",
    "AdapterMethod",
    "AdapterParams",
    "BottleneckAdapterConfig",
    "BottleneckAdapterLayer",
    "BottleneckAdapterModel",
]


class AdapterParams(StrictModel):
    """Knobs of the bottleneck adapter."""

    bottleneck_size: int = Field(64, gt=0, description="Width of the down-projection (the adapter's rank).")
    non_linearity: Literal["relu", "gelu", "silu", "tanh"] = Field(
        "relu", description="Activation between the down- and up-projection."
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the bottleneck activations.")
    target_modules: list[str] | None = Field(
        None,
        min_length=1,
        description="Names (or name suffixes, as in PEFT) of the FFN output projections to wrap; "
        "None picks them from the model type (e.g. mlp.down_proj for Llama).",
    )


@METHODS.register
class AdapterMethod(BaseMethod):
    """Houlsby/Pfeiffer bottleneck adapters on each FFN output; base frozen, adapters and task head trained."""

    name = "adapter"
    params_cls = AdapterParams
    uses_peft = True
    # A parameter-efficient method like LoRA: its learning rate shares LoRA's range and Optuna parameter.
    search_spaces = {
        "classification": MethodSpace(lr=(1.0e-4, 5.0e-3), params={"bottleneck_size": [16, 32, 64, 128]})
    }
    lr_param = "lr_peft"

    def apply(self, model: nn.Module, params: AdapterParams, ctx: MethodContext) -> nn.Module:
        model_type = getattr(getattr(model, "config", None), "model_type", None)
        targets = params.target_modules or FFN_OUTPUT_MODULES.get(model_type or "")
        if targets is None:
            raise MethodNotApplicable(
                f"adapter: no known feed-forward output module for model type {model_type!r}; "
                "set `method.target_modules` to the names of its FFN output projections (e.g. ['mlp.down_proj'])"
            )
        config = BottleneckAdapterConfig(
            task_type=peft_task_type(ctx),
            bottleneck_size=params.bottleneck_size,
            non_linearity=params.non_linearity,
            dropout=params.dropout,
            target_modules=targets if isinstance(targets, str) else list(targets),
            # a classification head is new, so it is trained and saved beside the adapter; an LM head stays frozen
            modules_to_save=modules_to_save(ctx),
        )
        return get_peft_model_or_explain(model, config, self.name)

    @classmethod
    def trainable_params(cls, shape: ModelShape, params: Mapping[str, Any]) -> float:
        return shape.layers * 2 * params["bottleneck_size"] * shape.hidden  # a down- and an up-projection
