"""What a task is: the rows it reads, the head the model gets, how rows become tensors, how quality is measured.

Everything about a task lives on its class, so a plugin task (entry points `open_autoglm.tasks`) is selected by
`task: <name>` and works wherever a built-in does. `kind` names the built-in task a class is, or extends: the
canonical rows it reads (data/readers/canonical.py), how `autoglm eval` scores it, which exports apply; a plugin
task subclasses a built-in and inherits its kind.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, ClassVar

import yaml
from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from open_autoglm.config.data import DataConfig
from open_autoglm.config.sections import ModelConfig, TrainConfig
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
    kind: ClassVar[str]  # classification | sft | pretrain
    default_model: ClassVar[str] = "minilm"  # the alias a config that names no model trains
    metric: ClassVar[str]  # the primary quality metric (as reported by evaluation, without the eval_ prefix)
    greater_is_better: ClassVar[bool]
    # Evaluations an epoch when train.evals_per_epoch is unset: an LLM fine-tune lasts an epoch or two, and a
    # search can only stop a trial where it reports.
    evals_per_epoch: ClassVar[int] = 1

    def evaluation_grid(self, train: TrainConfig) -> int | None:
        """Evaluations an epoch at equal shares of the examples, or None where train.eval_every counts steps."""
        if train.eval_every != "epoch":
            return None
        return train.evals_per_epoch or self.evals_per_epoch

    @abstractmethod
    def objective(self, model_path: str, model_cfg: ModelConfig) -> str:
        """The head the model is loaded with: seq_cls, causal_lm or masked_lm."""

    @abstractmethod
    def head_names(self, objective: str) -> tuple[str, ...]:
        """Names of the task-head modules that must stay trainable."""

    @abstractmethod
    def prepare(
        self,
        splits: dict[str, list[dict]],
        tokenizer: PreTrainedTokenizerBase,
        data: DataConfig,
        train: TrainConfig,
        objective: str,
    ) -> PreparedData:
        """Tokenise the canonical rows of every split, as the `data` section says (`train`: the settings of
        batching and scoring, such as extra metrics)."""

    def configure_model(self, model: Any, tokenizer: PreTrainedTokenizerBase) -> None:
        """Settings of the loaded model that belong to the task and are saved with it (sft: where generation
        stops). Nothing by default."""
        return None

    def search_metrics(self, train: TrainConfig) -> dict[str, bool]:
        """What `search.metric` may name, each reported at every evaluation of validation: metric -> greater is
        better. The task's own metric by default."""
        return {self.metric: self.greater_is_better}

    def search_metric(self, name: str | None, train: TrainConfig) -> tuple[str, bool]:
        """The metric a search optimises (`name`; None: the task's own) and whether greater is better; a metric
        the task does not report is refused, naming the ones it does."""
        choices = self.search_metrics(train)
        chosen = name or self.metric
        if chosen not in choices:
            raise ValueError(
                f"search.metric: {chosen!r} is not a metric of task {self.name}; "
                f"choose one of {', '.join(choices)}"
            )
        return chosen, choices[chosen]

    def labels_of(self, splits: dict[str, list[dict]]) -> list[str] | None:
        """The label set (classification only)."""
        return None

    def default_space(self) -> dict[str, Any] | None:
        """What `tune` searches under `search.space: default` (`space:` and `seeds:`): the methods to try and the
        training knobs of the task's kind (`tasks/spaces/<kind>.yaml`); each method adds its own parameters. A
        plugin task inherits its built-in's, or overrides this (None: search.space must be given)."""
        text = (resources.files("open_autoglm.tasks") / "spaces" / f"{self.kind}.yaml").read_text(
            encoding="utf-8"
        )
        return dict(yaml.safe_load(text))

    def reference_baseline(self, splits: dict[str, list[dict]]) -> dict[str, float]:
        """Scores on validation of a predictor that learns nothing, reported beside the untuned model's."""
        return {}


TASKS: Registry[type[BaseTask]] = Registry("task", entry_point_group="open_autoglm.tasks")
