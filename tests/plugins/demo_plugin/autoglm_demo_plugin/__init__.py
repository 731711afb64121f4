"""What a third-party package adds to Open-AutoGLM through entry points (see pyproject.toml): `bias_only`, a
BitFit-style method (biases and the task head train), `pipe`, a reader of `label|text` lines, the cleaner
`mask_digits`, the metric `balanced_accuracy`, the exporter `label_list`, the search objective
`calibration_error`, and the task `topics`: classification judged by macro-F1 (a plugin task extends a built-in)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from transformers import DataCollatorWithPadding

from open_autoglm.config.base import StrictModel
from open_autoglm.data.readers.base import BaseReader, Malformed, ReadOptions, Record
from open_autoglm.methods.base import BaseMethod, MethodContext
from open_autoglm.search.objectives import Objective, TrialOutcome
from open_autoglm.tasks.classification import ClassificationTask


class BiasOnlyParams(StrictModel):
    pass


class BiasOnly(BaseMethod):
    name: ClassVar[str] = "bias_only"
    params_cls: ClassVar[type[StrictModel]] = BiasOnlyParams
    uses_peft: ClassVar[bool] = False

    def apply(self, model: nn.Module, params: BiasOnlyParams, ctx: MethodContext) -> nn.Module:
        for name, parameter in model.named_parameters():
            in_head = any(f".{head}." in f".{name}" for head in ctx.head_names)
            parameter.requires_grad = name.endswith(".bias") or in_head
        return model


class TopicsTask(ClassificationTask):
    """Topic labelling: rows, head and metrics of classification, but the best model is the best macro-F1 one."""

    name: ClassVar[str] = "topics"
    metric: ClassVar[str] = "f1_macro"


class PipeReader(BaseReader):
    name: ClassVar[str] = "pipe"
    tasks: ClassVar[frozenset[str]] = frozenset({"classification"})

    def iter_rows(self, path: Path, options: ReadOptions) -> Iterator[Record | Malformed]:
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                label, bar, text = line.rstrip("\n").partition("|")
                if not bar or not text.strip():
                    yield Malformed(str(path), number, "expected label|text", line)
                else:
                    yield Record({"text": text, "label": label}, str(path), number)


def mask_digits(text: str) -> str:
    """A cleaner: every digit becomes #."""
    return "".join("#" if ch.isdigit() else ch for ch in text)


def balanced_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """A metric: the mean of the per-class recalls."""
    classes = np.unique(truth)
    return float(np.mean([(predicted[truth == c] == c).mean() for c in classes]))


def label_list(merged_dir: Path, out_dir: Path) -> Path:
    """An exporter: the model's labels, one per line, for a downstream service."""
    labels = json.loads((merged_dir / "autoglm.json").read_text(encoding="utf-8"))["labels"]
    path = out_dir / "labels.txt"
    path.write_text("\n".join(labels) + "\n", encoding="utf-8")
    return path


def expected_calibration_error(outcome: TrialOutcome, bins: int = 10) -> float:
    """How far the model's confidence is from its accuracy on the validation rows: the row-weighted mean over
    equal-width confidence bins of |accuracy - mean confidence| (Guo et al., 2017)."""
    collate = DataCollatorWithPadding(outcome.tokenizer)
    rows = outcome.validation.select_columns(["input_ids", "attention_mask", "labels"])
    confidence, correct = [], []
    for start in range(0, len(rows), 32):
        batch = collate([rows[i] for i in range(start, min(start + 32, len(rows)))])
        truth = batch.pop("labels")
        probabilities = outcome.model(**batch.to(outcome.device)).logits.float().softmax(-1).cpu()
        top, predicted = probabilities.max(-1)
        confidence.append(top)
        correct.append((predicted == truth).float())
    confidences, corrects = torch.cat(confidence), torch.cat(correct)
    which = torch.clamp((confidences * bins).long(), max=bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            gap = corrects[members].mean() - confidences[members].mean()
            error += members.float().mean().item() * abs(gap.item())
    return error


calibration_error = Objective(
    "calibration_error",
    "minimize",
    "fraction",
    "expected calibration error of the classifier on validation",
    measure=expected_calibration_error,
)
