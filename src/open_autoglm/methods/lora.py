"""LoRA and its family through `peft`: LoRA, DoRA, AdaLoRA, IA3."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field
from torch import nn
from transformers import TrainerCallback

from open_autoglm.config.base import StrictModel
from open_autoglm.methods.base import (
    METHODS,
    TASKS_ALL,
    BaseMethod,
    MethodContext,
    MethodNotApplicable,
    MethodSpace,
    ModelShape,
)
from open_autoglm.methods.peft_glue import get_peft_model_or_explain, modules_to_save, peft_task_type

TargetModules = list[str] | Literal["all-linear"] | None


class LoraParams(StrictModel):
    r: int = Field(8, ge=1, le=1024, description="rank of the update matrices")
    alpha: int = Field(16, ge=1, description="scaling numerator (update is scaled by alpha / r)")
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: TargetModules = Field(
        None, description="module names; None: peft's default for the model"
    )
    bias: Literal["none", "all", "lora_only"] = "none"
    rslora: bool = Field(False, description="rank-stabilised scaling alpha / sqrt(r)")


# Parameter-efficient methods train few weights from a good start and want rates about 10x those of full
# fine-tuning. Generation (sft, pretrain) searches higher ranks than classification, whose head is new anyway.
LORA_SPACES = {
    "classification": MethodSpace(
        lr=(1.0e-4, 5.0e-3),
        params={"r": [4, 8, 16, 32], "dropout": {"type": "float", "low": 0.0, "high": 0.2}},
    ),
    "sft": MethodSpace(
        lr=(5.0e-5, 2.0e-3),
        params={
            "r": [8, 16, 32, 64],
            "alpha": [16, 32, 64],
            "dropout": {"type": "float", "low": 0.0, "high": 0.1},
        },
    ),
    "pretrain": MethodSpace(lr=(1.0e-4, 3.0e-3), params={"r": [16, 32, 64]}),
}


def lora_width(shape: ModelShape, params: Mapping[str, Any]) -> int:
    """Sum of (in + out) features over one block's target matrices: a rank-r update adds r times this."""
    targets = params.get("target_modules")
    if targets == "all-linear":  # q, k, v, o and the MLP's up and down
        return 4 * 2 * shape.hidden + 2 * (shape.hidden + shape.intermediate)
    return len(targets or ("query", "value")) * 2 * shape.hidden  # peft's default targets query and value


@METHODS.register
class LoraMethod(BaseMethod):
    name: ClassVar[str] = "lora"
    params_cls: ClassVar[type[StrictModel]] = LoraParams
    tasks = TASKS_ALL | {"multitask"}
    search_spaces = LORA_SPACES
    lr_param = "lr_peft"
    use_dora: ClassVar[bool] = False

    def apply(self, model: nn.Module, params: Any, ctx: MethodContext) -> nn.Module:
        from peft import LoraConfig

        config = LoraConfig(
            task_type=peft_task_type(ctx),
            r=params.r,
            lora_alpha=params.alpha,
            lora_dropout=params.dropout,
            target_modules=params.target_modules,
            bias=params.bias,
            use_rslora=params.rslora,
            use_dora=self.use_dora,
            modules_to_save=modules_to_save(ctx),
        )
        return get_peft_model_or_explain(model, config, self.name)

    @classmethod
    def trainable_params(cls, shape: ModelShape, params: Mapping[str, Any]) -> float:
        return shape.layers * params["r"] * lora_width(shape, params)


@METHODS.register
class DoraMethod(LoraMethod):
    """Weight-decomposed LoRA: magnitude and direction trained apart."""

    name: ClassVar[str] = "dora"
    tasks = TASKS_ALL  # multitask is not tried with DoRA
    use_dora: ClassVar[bool] = True

    @classmethod
    def trainable_params(cls, shape: ModelShape, params: Mapping[str, Any]) -> float:
        return (
            shape.layers * (params["r"] + 0.5) * lora_width(shape, params)
        )  # + a magnitude per output feature


class AdaLoraParams(StrictModel):
    init_r: int = Field(12, ge=1, description="starting rank of every update")
    target_r: int = Field(8, ge=1, description="average rank the budget is pruned down to")
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    tinit: float = Field(0.1, ge=0.0, lt=1.0, description="share of steps before rank pruning starts")
    tfinal: float = Field(0.2, ge=0.0, lt=1.0, description="share of final steps with the budget fixed")
    delta_t: int = Field(1, ge=1, description="steps between budget updates")
    target_modules: TargetModules = None


@METHODS.register
class AdaLoraMethod(BaseMethod):
    """AdaLoRA reallocates rank between matrices during training; it needs the run's total steps."""

    name: ClassVar[str] = "adalora"
    params_cls = AdaLoraParams

    def apply(self, model: nn.Module, params: AdaLoraParams, ctx: MethodContext) -> nn.Module:
        from peft import AdaLoraConfig

        total = max(ctx.total_steps, 1)
        tinit, tfinal = int(params.tinit * total), int(params.tfinal * total)
        if tinit + tfinal >= total:
            raise MethodNotApplicable(
                f"adalora: the run has {total} optimizer steps, too few for method.tinit + method.tfinal "
                f"({params.tinit} + {params.tfinal} of them); train longer or lower them"
            )
        config = AdaLoraConfig(
            task_type=peft_task_type(ctx),
            init_r=params.init_r,
            target_r=params.target_r,
            lora_alpha=params.alpha,
            lora_dropout=params.dropout,
            tinit=tinit,
            tfinal=tfinal,
            deltaT=params.delta_t,
            total_step=total,
            target_modules=params.target_modules,
            modules_to_save=modules_to_save(ctx),
        )
        return get_peft_model_or_explain(model, config, self.name)

    def callbacks(self, model: nn.Module) -> list[TrainerCallback]:
        return [_AdaLoraBudgetCallback(model)]

    @classmethod
    def trainable_params(cls, shape: ModelShape, params: Mapping[str, Any]) -> float:
        return shape.layers * params["init_r"] * lora_width(shape, params)  # the budget before pruning


class _AdaLoraBudgetCallback(TrainerCallback):
    """AdaLoRA must see the gradients after each optimizer step (before they are zeroed) to reallocate rank."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def on_optimizer_step(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.model.base_model.update_and_allocate(state.global_step)


class Ia3Params(StrictModel):
    target_modules: TargetModules = None
    feedforward_modules: list[str] | None = Field(
        None, description="subset of target_modules that are FFN layers"
    )


@METHODS.register
class Ia3Method(BaseMethod):
    """(IA)^3: learned vectors that rescale keys, values and FFN activations."""

    name: ClassVar[str] = "ia3"
    params_cls = Ia3Params
    # Scaling activations wants rates higher still than the other parameter-efficient methods.
    search_spaces = {
        "classification": MethodSpace(lr=(1.0e-3, 5.0e-2)),
        "sft": MethodSpace(lr=(5.0e-4, 2.0e-2)),
    }
    lr_param = "lr_ia3"

    def apply(self, model: nn.Module, params: Ia3Params, ctx: MethodContext) -> nn.Module:
        from peft import IA3Config

        config = IA3Config(
            task_type=peft_task_type(ctx),
            target_modules=params.target_modules,
            feedforward_modules=params.feedforward_modules,
            modules_to_save=modules_to_save(ctx),
        )
        return get_peft_model_or_explain(model, config, self.name)

    @classmethod
    def trainable_params(cls, shape: ModelShape, params: Mapping[str, Any]) -> float:
        return shape.layers * (2 * shape.hidden + shape.intermediate)  # scales keys, values, FFN inputs
