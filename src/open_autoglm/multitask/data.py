"""Each task's labelled splits: prepared like a classification run's (into <run>/data/<task>/), then tokenised."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from open_autoglm.config import Config
from open_autoglm.config.sections import TaskSpec
from open_autoglm.data.prepared import load_data
from open_autoglm.data.request import DataRequest
from open_autoglm.data.splits import LoadedData
from open_autoglm.tasks.classification import majority_accuracy


@dataclass
class TaskData:
    """One task's rows, label names and tokenised splits."""

    name: str
    weight: float
    labels: list[str]
    loaded: LoadedData
    encoded: dict[str, list[dict[str, Any]]]  # split -> [{input_ids, attention_mask, ..., labels}]

    def rows(self, split: str) -> int:
        return len(self.encoded.get(split, []))

    def majority_accuracy(self, split: str) -> float:
        """Accuracy of always answering the most common training label."""
        return majority_accuracy(self.loaded.splits["train"], self.loaded.splits.get(split, []))


def load_task(config: Config, task: TaskSpec, data_dir: Path, tokenizer: PreTrainedTokenizerBase) -> TaskData:
    """Prepare (or reuse) the task's splits and tokenise them with its own prefix and max_length."""
    from open_autoglm.tasks.classification import label_names

    request = DataRequest(task.data, "classification", "classification", config.train.seed, config.model)
    loaded = load_data(request, data_dir)
    if "validation" not in loaded.splits:
        raise ValueError(
            f"multitask task {task.name!r}: no validation split (set data.val_ratio or data.validation)"
        )
    labels = label_names(loaded.splits["train"])
    label_ids = {name: i for i, name in enumerate(labels)}
    encoded = {}
    for split, rows in loaded.splits.items():
        unseen = sorted({str(r["label"]) for r in rows} - set(labels))
        if unseen:
            raise ValueError(
                f"task {task.name!r}: the {split} split has labels train lacks: {', '.join(unseen)}"
            )
        texts = [task.data.text_prefix + str(r["text"]) for r in rows]
        enc = tokenizer(texts, truncation=True, max_length=task.data.max_length)
        encoded[split] = [
            {**{key: enc[key][i] for key in enc}, "labels": label_ids[str(row["label"])]}
            for i, row in enumerate(rows)
        ]
    return TaskData(task.name, task.weight, labels, loaded, encoded)


def joined_rows(tasks: list[TaskData], split: str) -> list[dict[str, Any]]:
    """Every task's tokenised rows of `split`, one after the other, each with its task's position (`task`)."""
    return [{**row, "task": i} for i, task in enumerate(tasks) for row in task.encoded.get(split, [])]


def collate(tokenizer: PreTrainedTokenizerBase, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Pad a batch of tokenised rows into tensors (input_ids (B, T), attention_mask (B, T), labels (B,), task (B,))."""
    return dict(tokenizer.pad(examples, return_tensors="pt"))
