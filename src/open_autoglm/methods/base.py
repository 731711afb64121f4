"""What every fine-tuning method is: a small params model and an `apply` that turns a model into a trainable one,
plus the facts other parts ask of it — how many parameters it trains (the memory estimate) and what `tune`
searches for it (its own parameters and learning-rate range) — so adding a method touches its own module only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
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

    task: str  # classification | sft | pretrain | multitask
    objective: str  # seq_cls | causal_lm | masked_lm
    # Modules that must train and be saved with any adapter: the task head ("classifier", "score") and any
    # module the checkpoint lacked (e.g. "bert.pooler.dense"), matched as a name or a dotted name ending.
    head_names: tuple[str, ...] = ()
    total_steps: int = 0  # optimizer steps of the whole run (AdaLoRA's budget schedule needs it)


@dataclass(frozen=True)
class ModelShape:
    """What a trainable-parameter formula reads of a model, known from its config.json before it loads."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    params: int

    @property
    def layer_params(self) -> int:
        """Parameters of one transformer block: all but the token embeddings, shared by the blocks."""
        return max(self.params - self.vocab * self.hidden, 0) // self.layers


@dataclass(frozen=True)
class MethodSpace:
    """What `tune` searches for a method on one task when the task's default space names it.

    `params` maps the method's own keys to distributions in the entry syntax of a search-space YAML
    (`{type: float, low: 0.0, high: 0.2}`, or a list of choices), without `key` or `if`: the space builder sets
    `method.<key>` and makes the entry conditional on this method. `lr` is the method's learning-rate range,
    searched log-uniformly.
    """

    lr: tuple[float, float]
    params: Mapping[str, Any] = field(default_factory=dict)


class BaseMethod(ABC):
    """A fine-tuning method. Subclasses set `name`, `params_cls` and implement `apply`; the memory and search
    facts below have defaults a plugin may keep. A built-in registers with `@METHODS.register` above its class,
    a plugin's through the `open_autoglm.methods` entry points. Registration checks only what it needs, a `name`
    not yet taken: the rest of a class is checked by use (its params model where a config names it)."""

    name: ClassVar[str]
    params_cls: ClassVar[type[StrictModel]]
    # Where `autoglm train` may use it; "multitask" when it can adapt a bare shared encoder (no task head).
    tasks: ClassVar[frozenset[str]] = TASKS_ALL
    uses_peft: ClassVar[bool] = True  # saved as an adapter (adapter_config.json) rather than a full model
    # The default search space by task; a task missing here cannot name this method in its default space.
    search_spaces: ClassVar[Mapping[str, MethodSpace]] = {}
    # Optuna name of the learning rate (None: lr_<name>). Methods whose rates share a range on every task share
    # the name (lr_peft), so one parameter covers them and the sampler learns across them.
    lr_param: ClassVar[str | None] = None

    @abstractmethod
    def apply(self, model: nn.Module, params: Any, ctx: MethodContext) -> nn.Module:
        """Return the model ready to train (parameters frozen / adapters added as the method says)."""

    def callbacks(self, model: nn.Module) -> list[TrainerCallback]:
        """Trainer callbacks the method needs while training (most need none)."""
        return []

    @classmethod
    def trainable_params(cls, shape: ModelShape, params: Mapping[str, Any]) -> float:
        """How many parameters the method trains on a model of `shape` (the task head left out), from its params
        as a dict with defaults filled in; the memory estimate sizes gradients and optimizer states by it.

        This default counts every parameter, as full fine-tuning does: a method without its own formula may
        shrink a batch needlessly, but an underestimate would crash the trial.
        """
        return shape.params

    @classmethod
    def blocks_with_activations(cls, shape: ModelShape, params: Mapping[str, Any]) -> int:
        """Transformer blocks that gradients flow through, which keep their activations for backward: all of them
        unless the method freezes whole blocks below the ones that train."""
        return shape.layers


METHODS: Registry[type[BaseMethod]] = Registry("method", entry_point_group="open_autoglm.methods")
