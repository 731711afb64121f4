"""What a third-party package adds to Open-AutoGLM through entry points (see pyproject.toml): `bias_only`, a
BitFit-style method (biases and the task head train), `pipe`, a reader of `label|text` lines, the cleaner
`mask_digits`, the metric `balanced_accuracy` and the exporter `label_list`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
from torch import nn

from open_autoglm.config.base import StrictModel
from open_autoglm.data.readers.base import BaseReader, Malformed, ReadOptions, Record
from open_autoglm.methods.base import BaseMethod, MethodContext


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
