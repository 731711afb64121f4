"""Soft-prompt methods through `peft`: prefix tuning, prompt tuning, P-tuning.

They prepend learned virtual tokens (or per-layer key/value prefixes), so they need a task type peft can wrap:
sequence classification or causal LM. Masked-LM pretraining is refused with a clear message.
"""

from __future__ import annotations

from abc import abstractmethod
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
from open_autoglm.methods.peft_glue import get_peft_model_or_explain, modules_to_save, peft_task_type


class PrefixParams(StrictModel):
    num_virtual_tokens: int = Field(16, ge=1, le=512)
    projection: bool = Field(False, description="reparameterise the prefix through a 2-layer MLP")


class PromptParams(StrictModel):
    num_virtual_tokens: int = Field(16, ge=1, le=512)


class PtuningParams(StrictModel):
    num_virtual_tokens: int = Field(16, ge=1, le=512)
    encoder_hidden_size: int = Field(128, ge=1, description="hidden size of the prompt encoder (MLP)")


class _SoftPromptMethod(BaseMethod):
    tasks: ClassVar[frozenset[str]] = frozenset({"classification", "sft", "pretrain"})

    def apply(self, model: nn.Module, params: Any, ctx: MethodContext) -> nn.Module:
        task_type = peft_task_type(ctx)
        if task_type is None:
            raise MethodNotApplicable(
                f"method {self.name!r} needs sequence classification or a causal LM; "
                f"it cannot train a {ctx.objective} objective — use lora, ia3, adapter, freeze or full"
            )
        config = self.peft_config(params, task_type)
        config.modules_to_save = modules_to_save(ctx)
        return get_peft_model_or_explain(model, config, self.name)

    @abstractmethod
    def peft_config(self, params: Any, task_type: Any) -> Any:
        """The peft config of this soft-prompt method."""


@METHODS.register
class PrefixMethod(_SoftPromptMethod):
    name: ClassVar[str] = "prefix"
    params_cls = PrefixParams

    def peft_config(self, params: PrefixParams, task_type: Any) -> Any:
        from peft import PrefixTuningConfig

        return PrefixTuningConfig(
            task_type=task_type,
            num_virtual_tokens=params.num_virtual_tokens,
            prefix_projection=params.projection,
        )

    @classmethod
    def trainable_params(cls, shape: ModelShape, params: Mapping[str, Any]) -> float:
        """A key and a value per layer and virtual token, or (projection) an embedding and a 2-layer MLP to them."""
        tokens, per_token = params["num_virtual_tokens"], 2 * shape.layers * shape.hidden
        if params["projection"]:  # peft sizes the MLP's hidden layer like the model's
            return tokens * shape.hidden + shape.hidden * shape.hidden + shape.hidden * per_token
        return tokens * per_token


@METHODS.register
class PromptMethod(_SoftPromptMethod):
    name: ClassVar[str] = "prompt"
    params_cls = PromptParams

    def peft_config(self, params: PromptParams, task_type: Any) -> Any:
        from peft import PromptTuningConfig

        return PromptTuningConfig(task_type=task_type, num_virtual_tokens=params.num_virtual_tokens)

    @classmethod
    def trainable_params(cls, shape: ModelShape, params: Mapping[str, Any]) -> float:
        return params["num_virtual_tokens"] * shape.hidden


@METHODS.register
class PtuningMethod(_SoftPromptMethod):
    name: ClassVar[str] = "ptuning"
    params_cls = PtuningParams

    def peft_config(self, params: PtuningParams, task_type: Any) -> Any:
        from peft import PromptEncoderConfig

        return PromptEncoderConfig(
            task_type=task_type,
            num_virtual_tokens=params.num_virtual_tokens,
            encoder_hidden_size=params.encoder_hidden_size,
        )

    @classmethod
    def trainable_params(cls, shape: ModelShape, params: Mapping[str, Any]) -> float:
        """The virtual-token embeddings and the prompt encoder's MLP."""
        width = params["encoder_hidden_size"]
        return params["num_virtual_tokens"] * shape.hidden + width * (2 * shape.hidden + width)
