"""What every peft-backed method shares: the task type and turning peft's errors into clear ones."""

from __future__ import annotations

import warnings
from typing import Any

from torch import nn

from open_autoglm.methods.base import MethodContext, MethodNotApplicable

# peft 0.21 still calls transformers' deprecated `is_gradient_checkpointing`; nothing for our users to act on.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


def peft_task_type(ctx: MethodContext) -> Any:
    from peft import TaskType

    return {"seq_cls": TaskType.SEQ_CLS, "causal_lm": TaskType.CAUSAL_LM}.get(ctx.objective)


def get_peft_model_or_explain(model: nn.Module, config: Any, method: str) -> nn.Module:
    """`peft.get_peft_model`, with a failure restated in terms of our config keys."""
    from peft import get_peft_model

    try:
        return get_peft_model(model, config)
    except (ValueError, KeyError, TypeError, NotImplementedError, AttributeError) as err:
        model_type = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        hint = ""
        if "target_modules" in str(err) or "target modules" in str(err):
            hint = " — set method.target_modules to module names of this model (or 'all-linear')"
        raise MethodNotApplicable(
            f"method {method!r} cannot be applied to a {model_type} model: {err}{hint}"
        ) from err


def modules_to_save(ctx: MethodContext) -> list[str] | None:
    """Classification heads (and randomly initialised modules) train and are saved beside the adapter;
    an LM head stays frozen."""
    return list(ctx.head_names) if ctx.objective == "seq_cls" and ctx.head_names else None
