"""Sequence classification, for encoders and decoders alike."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, ClassVar

import numpy as np
from datasets import Dataset
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from open_autoglm.config.data import DataConfig
from open_autoglm.config.sections import ModelConfig, TrainConfig
from open_autoglm.registry import Registry
from open_autoglm.tasks.base import TASKS, BaseTask, PreparedData


def label_names(rows: list[dict]) -> list[str]:
    """Labels as strings, in numeric order when they are all integers (0, 1, 2, ... not 0, 1, 10, 2)."""
    values = {str(row["label"]) for row in rows}
    if all(v.lstrip("-").isdigit() for v in values):
        return sorted(values, key=int)
    return sorted(values)


# Classification metrics: name -> f(predicted label ids, true label ids) -> float. The built-ins are reported at
# every evaluation; a plugin's (entry points open_autoglm.metrics) when train.metrics names it.
CLASSIFICATION_METRICS: Registry[Callable[[np.ndarray, np.ndarray], float]] = Registry(
    "metric", entry_point_group="open_autoglm.metrics"
)
BUILTIN_METRICS = ("accuracy", "f1_macro")


@CLASSIFICATION_METRICS.register
def accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(truth, predicted))


@CLASSIFICATION_METRICS.register
def f1_macro(predicted: np.ndarray, truth: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(truth, predicted, average="macro", zero_division=0))


def plugin_metrics(names: Sequence[str], preds: Any, labels: Any) -> dict[str, float]:
    """The registered metrics `names` names (a plugin's, or a built-in), on predicted and true label ids."""
    predicted, truth = np.asarray(preds), np.asarray(labels)
    return {name: float(CLASSIFICATION_METRICS.get(name)(predicted, truth)) for name in names}


def classification_metrics(eval_pred: Any, extra: Sequence[str] = ()) -> dict[str, float]:
    """The Trainer's `compute_metrics`: the built-in metrics, then the `extra` ones train.metrics names."""
    logits, labels = eval_pred.predictions, eval_pred.label_ids
    logits = logits[0] if isinstance(logits, tuple) else logits
    return plugin_metrics((*BUILTIN_METRICS, *extra), np.asarray(logits).argmax(-1), labels)


def majority_accuracy(train: list[dict], rows: list[dict]) -> float:
    """Accuracy on `rows` of always answering the most common label of `train`."""
    majority = Counter(str(r["label"]) for r in train).most_common(1)[0][0]
    return sum(str(r["label"]) == majority for r in rows) / max(len(rows), 1)


@TASKS.register
class ClassificationTask(BaseTask):
    name: ClassVar[str] = "classification"
    kind: ClassVar[str] = "classification"
    metric: ClassVar[str] = "accuracy"
    greater_is_better: ClassVar[bool] = True

    def objective(self, model_path: str, model_cfg: ModelConfig) -> str:
        return "seq_cls"

    def head_names(self, objective: str) -> tuple[str, ...]:
        return ("classifier", "score")

    def search_metrics(self, train: TrainConfig) -> dict[str, bool]:
        """The built-in scores and the plugins' that train.metrics adds (a plugin metric is a score: higher is
        better)."""
        return dict.fromkeys((*BUILTIN_METRICS, *train.metrics), True)

    def reference_baseline(self, splits: dict[str, list[dict]]) -> dict[str, float]:
        return {"majority_accuracy": majority_accuracy(splits["train"], splits["validation"])}

    def labels_of(self, splits: dict[str, list[dict]]) -> list[str]:
        return label_names(splits["train"])

    def prepare(
        self,
        splits: dict[str, list[dict]],
        tokenizer: PreTrainedTokenizerBase,
        data: DataConfig,
        train: TrainConfig,
        objective: str,
    ) -> PreparedData:
        labels = self.labels_of(splits)
        label_ids = {name: i for i, name in enumerate(labels)}
        prefix, max_length = data.text_prefix, data.max_length

        def encode(batch: dict[str, list]) -> dict[str, list]:
            enc = tokenizer([prefix + t for t in batch["text"]], truncation=True, max_length=max_length)
            enc["labels"] = [label_ids[str(v)] for v in batch["label"]]
            enc["length"] = [len(ids) for ids in enc["input_ids"]]
            return enc

        datasets = {}
        for split, rows in splits.items():
            unseen = sorted({str(r["label"]) for r in rows} - set(labels))
            if unseen:
                raise ValueError(f"{split} split has labels that train lacks: {', '.join(unseen)}")
            table = Dataset.from_dict(
                {"text": [r["text"] for r in rows], "label": [str(r["label"]) for r in rows]}
            )
            datasets[split] = table.map(encode, batched=True, remove_columns=["text", "label"])
        return PreparedData(
            datasets=datasets,
            collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=partial(classification_metrics, extra=tuple(train.metrics)),
            labels=labels,
        )
