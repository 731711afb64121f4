"""Teacher and student measured the same way on the same rows: quality, parameters, size and batch-1 latency.

Plain data only; the CLI draws the table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import nn
from transformers import PreTrainedTokenizerBase

from open_autoglm.evaluate.scoring import ScoringOptions, score
from open_autoglm.evaluate.speed import speed_report
from open_autoglm.train.method_setup import count_parameters

LATENCY_EXAMPLES = 32  # rows timed one at a time


@dataclass
class ModelMeasure:
    name: str  # teacher or student
    path: str
    metrics: dict[str, float]  # the evaluation's metrics (accuracy, f1_macro / perplexity ...)
    parameters: int
    size_mb: (
        float  # what the weights take stored in their dtype: the safetensors size (adapters: with the base)
    )
    latency_ms_p50: float  # one example at a time, warm


def measure(
    name: str,
    path: str | Path,
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    task: str,
    rows: list[dict[str, Any]],
    options: ScoringOptions,
) -> ModelMeasure:
    scored = score(task, model, tokenizer, rows, options)
    speed = speed_report(scored.batched, scored.single, options.batch_size, 0.0)
    return ModelMeasure(
        name=name,
        path=str(path),
        metrics={k: float(v) for k, v in scored.metrics.items()},
        parameters=count_parameters(model)[1],
        size_mb=round(weights_mb(model), 3),
        latency_ms_p50=speed["latency_ms_p50"],
    )


def weights_mb(model: nn.Module) -> float:
    """Bytes of the parameters and buffers in MB, tied weights (one storage) counted once, as safetensors stores them."""
    seen: set[int] = set()
    total = 0
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
    return total / 2**20


def comparison(teacher: ModelMeasure, student: ModelMeasure, metric: str) -> dict[str, float]:
    """The student against the teacher: quality difference, and how much smaller and faster it is."""
    return {
        "quality_delta": student.metrics[metric] - teacher.metrics[metric],
        "parameter_ratio": student.parameters / teacher.parameters,
        "size_ratio": student.size_mb / teacher.size_mb,
        "speedup": teacher.latency_ms_p50 / student.latency_ms_p50 if student.latency_ms_p50 else 0.0,
    }


def as_rows(*measures: ModelMeasure) -> list[dict[str, Any]]:
    return [asdict(m) for m in measures]
