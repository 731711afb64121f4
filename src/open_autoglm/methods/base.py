"""What every fine-tuning method is: a small params model and an `apply` that turns a model into a trainable one."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn
from transformers import TrainerCallback

from open_autoglm.config.base import StrictModel
from open_autoglm.registry import Registry

TASKS_ALL = frozenset({"classification", "sft", "pretrain"})


class MethodNotApplicable(ValueError):
    """The method cannot be applied to this model or task; the message says why and what to use instead."""


@dataclass(frozen=True)
class MethodContext:
    """What a method needs to know about the job, beyond the model itself."""

    task: str  # classification | sft | pretrain
    objective: str  # seq_cls | causal_lm | masked_lm
    # Modules that must train and be saved with any adapter: the task head ("classifier", "score") and any
    # module the checkpoint lacked (e.g. "bert.pooler.dense"), matched as a name or a dotted name ending.
    head_names: tuple[str, ...] = ()
    total_steps: int = 0  # optimizer steps of the whole run (AdaLoRA's budget schedule needs it)


class BaseMethod(ABC):
    """A fine-tuning method. Subclasses set `name`, `params_cls` and implement `apply`."""

    name: ClassVar[str]
    params_cls: ClassVar[type[StrictModel]]
    tasks: ClassVar[frozenset[str]] = TASKS_ALL
    uses_peft: ClassVar[bool] = True  # saved as an adapter (adapter_config.json) rather than a full model

    @abstractmethod
    def apply(self, model: nn.Module, params: Any, ctx: MethodContext) -> nn.Module:
        """Return the model ready to train (parameters frozen / adapters added as the method says)."""

    def callbacks(self, model: nn.Module) -> list[TrainerCallback]:
        """Trainer callbacks the method needs while training (most need none)."""
        return []


METHODS: Registry[type[BaseMethod]] = Registry("method", entry_point_group="open_autoglm.methods")


def register_method(cls: type[BaseMethod]) -> type[BaseMethod]:
    """Class decorator: register a method under its `name`."""
    METHODS.add(cls.name, cls)
    return cls
