"""Sequence classification, for encoders and decoders alike."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, ClassVar

import numpy as np
from datasets import Dataset
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from open_autoglm.config import Config
from open_autoglm.registry import Registry
from open_autoglm.tasks.base import TASKS, BaseTask, PreparedData


def label_names(rows: list[dict]) -> list[str]:
    """Labels as strings, in numeric order when they are all integers (0, 1, 2, ... not 0, 1, 10, 2)."""
    values = {str(row["label"]) for row in rows}
    if all(v.lstrip("-").isdigit() for v in values):
        return sorted(values, key=int)
    return sorted(values)


# Plugin metrics: name -> f(predicted label ids, true label ids) -> float; train.metrics names the ones to report.
CLASSIFICATION_METRICS: Registry[Callable[[np.ndarray, np.ndarray], float]] = Registry(
    "metric", entry_point_group="open_autoglm.metrics"
)


def plugin_metrics(names: Sequence[str], preds: Any, labels: Any) -> dict[str, float]:
    return {
        name: float(CLASSIFICATION_METRICS.get(name)(np.asarray(preds), np.asarray(labels))) for name in names
    }


def classification_metrics(eval_pred: Any, extra: Sequence[str] = ()) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    logits, labels = eval_pred.predictions, eval_pred.label_ids
    logits = logits[0] if isinstance(logits, tuple) else logits
    preds = np.asarray(logits).argmax(-1)
    return {
        "accuracy": float(accuracy_score(labels, preds)),
        "f1_macro": float(f1_score(labels, preds, average="macro", zero_division=0)),
    } | plugin_metrics(extra, preds, labels)


@TASKS.register
class ClassificationTask(BaseTask):
    name: ClassVar[str] = "classification"
    metric: ClassVar[str] = "accuracy"
    greater_is_better: ClassVar[bool] = True
    required_fields: ClassVar[tuple[str, ...]] = ("text", "label")

    def head_names(self, objective: str) -> tuple[str, ...]:
        return ("classifier", "score")

    def labels_of(self, splits: dict[str, list[dict]]) -> list[str]:
        return label_names(splits["train"])

    def prepare(
        self,
        splits: dict[str, list[dict]],
        tokenizer: PreTrainedTokenizerBase,
        config: Config,
        objective: str,
    ) -> PreparedData:
        labels = self.labels_of(splits)
        label_ids = {name: i for i, name in enumerate(labels)}
        prefix, max_length = config.data.text_prefix, config.data.max_length

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
            compute_metrics=partial(classification_metrics, extra=tuple(config.train.metrics)),
            labels=labels,
        )
