"""What a task is: how rows become tensors, which head the model gets, and how quality is measured."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from open_autoglm.config import Config
from open_autoglm.registry import Registry


@dataclass
class PreparedData:
    """Tokenised splits and what the trainer needs to batch and score them."""

    datasets: dict[str, Dataset]  # train, validation and (when there is one) test
    collator: Callable[[list[dict[str, Any]]], dict[str, Any]]
    compute_metrics: Callable[[Any], dict[str, float]] | None = None
    labels: list[str] | None = None  # classification: id -> label name
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows that could not become examples


class BaseTask(ABC):
    name: ClassVar[str]
    metric: ClassVar[str]  # the primary quality metric (as reported by evaluation, without the eval_ prefix)
    greater_is_better: ClassVar[bool]
    required_fields: ClassVar[tuple[str, ...]]

    @abstractmethod
    def head_names(self, objective: str) -> tuple[str, ...]:
        """Names of the task-head modules that must stay trainable."""

    @abstractmethod
    def prepare(
        self,
        splits: dict[str, list[dict]],
        tokenizer: PreTrainedTokenizerBase,
        config: Config,
        objective: str,
    ) -> PreparedData:
        """Tokenise the canonical rows of every split."""

    def labels_of(self, splits: dict[str, list[dict]]) -> list[str] | None:
        """The label set (classification only)."""
        return None


TASKS: Registry[type[BaseTask]] = Registry("task", entry_point_group="open_autoglm.tasks")
