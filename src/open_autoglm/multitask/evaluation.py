"""Per-task metrics of an evaluation over the tasks' joined rows, and their mean over tasks (the headline)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from transformers import EvalPrediction

from open_autoglm.multitask.data import TaskData

METRICS = ("accuracy", "f1_macro")


def per_task_metrics(
    logits: np.ndarray, labels: np.ndarray, task_ids: np.ndarray, tasks: Sequence[TaskData]
) -> dict[str, dict[str, float]]:
    """task -> {accuracy, f1_macro, loss} from padded logits (N, W), labels (N,) and task positions (N,);
    tasks with no rows are left out."""
    from sklearn.metrics import accuracy_score, f1_score

    results = {}
    for index, task in enumerate(tasks):
        rows = task_ids == index
        if not rows.any():
            continue
        scores = logits[rows, : len(task.labels)].astype(np.float64)  # (n, C)
        gold = labels[rows].astype(np.int64)
        shifted = scores - scores.max(-1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
        preds = scores.argmax(-1)
        results[task.name] = {
            "accuracy": float(accuracy_score(gold, preds)),
            "f1_macro": float(f1_score(gold, preds, average="macro", zero_division=0)),
            "loss": float(-log_p[np.arange(len(gold)), gold].mean()),
        }
    return results


def metrics_of(tasks: Sequence[TaskData]) -> Callable[[EvalPrediction], dict[str, float]]:
    """The Trainer's `compute_metrics`: its labels are (class, task position) pairs."""

    def compute(prediction: EvalPrediction) -> dict[str, float]:
        labels, task_ids = prediction.label_ids  # type: ignore[misc]
        logits = prediction.predictions
        logits = logits[0] if isinstance(logits, tuple) else logits
        return flatten(per_task_metrics(np.asarray(logits), np.asarray(labels), np.asarray(task_ids), tasks))

    return compute


def flatten(per_task: dict[str, dict[str, float]]) -> dict[str, float]:
    """{accuracy, f1_macro: means over tasks} plus every `task/metric`."""
    flat = {name: sum(m[name] for m in per_task.values()) / len(per_task) for name in METRICS}
    for task, metrics in per_task.items():
        flat |= {f"{task}/{name}": value for name, value in metrics.items()}
    return flat


def unflatten(flat: dict[str, float], tasks: Sequence[TaskData]) -> dict[str, dict[str, float]]:
    """task -> its metrics, back from `flatten`'s names."""
    return {
        t.name: {k.split("/", 1)[1]: v for k, v in flat.items() if k.startswith(f"{t.name}/")}
        for t in tasks
        if any(k.startswith(f"{t.name}/") for k in flat)
    }
