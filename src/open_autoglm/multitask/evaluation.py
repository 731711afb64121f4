"""Per-task metrics on a split, and their mean over tasks (the run's headline number)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedTokenizerBase

from open_autoglm.multitask.data import TaskData, collate
from open_autoglm.multitask.model import MultitaskModel

METRICS = ("accuracy", "f1_macro")


@torch.no_grad()
def evaluate_tasks(
    model: MultitaskModel,
    tasks: Sequence[TaskData],
    split: str,
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int,
    device: torch.device,
) -> dict[str, dict[str, float]]:
    """task -> {accuracy, f1_macro, loss} on `split` (tasks without that split are left out)."""
    from sklearn.metrics import accuracy_score, f1_score

    was_training = model.training
    model.eval()
    results = {}
    for task in tasks:
        examples = task.encoded.get(split, [])
        if not examples:
            continue
        preds, golds, loss_sum = [], [], 0.0
        for start in range(0, len(examples), batch_size):
            batch = {
                k: v.to(device) for k, v in collate(tokenizer, examples[start : start + batch_size]).items()
            }
            labels = batch.pop("labels")
            logits = model(task.name, **batch).float()  # (B, C)
            loss_sum += float(torch.nn.functional.cross_entropy(logits, labels, reduction="sum"))
            preds += logits.argmax(-1).tolist()
            golds += labels.tolist()
        results[task.name] = {
            "accuracy": float(accuracy_score(golds, preds)),
            "f1_macro": float(f1_score(golds, preds, average="macro", zero_division=0)),
            "loss": loss_sum / len(examples),
        }
    model.train(was_training)
    return results


def flatten(per_task: dict[str, dict[str, float]]) -> dict[str, float]:
    """{accuracy, f1_macro: means over tasks} plus every `task/metric`."""
    flat = {name: sum(m[name] for m in per_task.values()) / len(per_task) for name in METRICS}
    for task, metrics in per_task.items():
        flat |= {f"{task}/{name}": value for name, value in metrics.items()}
    return flat
