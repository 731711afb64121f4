"""The comparison table of exported variants: size, latency at batch 1 and 32, throughput, and quality against
the fp32 PyTorch model, with each variant's drop checked against the tolerance (`export_report.json`)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from open_autoglm.evaluate.metrics import classification_metrics

Logits = Callable[[Sequence[str]], np.ndarray]  # texts -> (N, num_labels) logits
LATENCY_BATCH = 32
WARMUP_CALLS = 3


@dataclass
class Variant:
    """One way of running the model, as the comparison sees it."""

    name: str
    format: str  # pytorch | onnx
    path: Path | None  # None: measured in memory, not saved
    size_mb: float
    logits: Logits


def torch_logits(model: nn.Module, tokenizer: PreTrainedTokenizerBase, max_length: int) -> Logits:
    def run(texts: Sequence[str]) -> np.ndarray:
        encoded = tokenizer(
            list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="pt"
        )
        with torch.inference_mode():
            return model(**encoded).logits.float().numpy()

    return run


def onnx_logits(path: Path, tokenizer: PreTrainedTokenizerBase, max_length: int) -> Logits:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(texts: Sequence[str]) -> np.ndarray:
        encoded = tokenizer(
            list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="np"
        )
        return session.run(["logits"], {n: encoded[n].astype(np.int64) for n in names})[0]

    return run


def measure(
    variant: Variant, texts: Sequence[str], truth: Sequence[int], labels: list[str], latency_rows: int
) -> dict[str, Any]:
    """One row of the table: latency per call at batch 1 (on `latency_rows` texts) and per batch of 32 (over all
    texts, whose predictions give the quality), each after warm-up calls that are not timed."""
    for _ in range(WARMUP_CALLS):
        variant.logits(texts[:1])
        variant.logits(texts[:LATENCY_BATCH])
    single = [_timed(variant.logits, [text])[1] for text in texts[:latency_rows]]
    predicted: list[int] = []
    batched: list[float] = []
    for start in range(0, len(texts), LATENCY_BATCH):
        logits, seconds = _timed(variant.logits, texts[start : start + LATENCY_BATCH])
        predicted += logits.argmax(-1).tolist()
        batched.append(seconds)
    metrics = classification_metrics(truth, predicted, labels)["metrics"]
    return {
        "name": variant.name,
        "format": variant.format,
        "path": str(variant.path) if variant.path else None,
        "size_mb": round(variant.size_mb, 3),
        "latency_ms_p50_b1": _ms(statistics.median(single)),
        "latency_ms_p95_b1": _ms(float(np.percentile(single, 95))),
        "latency_ms_p50_b32": _ms(statistics.median(batched)),
        "latency_ms_p95_b32": _ms(float(np.percentile(batched, 95))),
        "throughput_per_s": round(len(texts) / sum(batched), 2),
        **{name: float(value) for name, value in metrics.items()},
    }


def build_report(task: str, metric: str, tolerance: float, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The report: each row's drop against the first (the fp32 PyTorch reference), and the fastest row at batch 1
    among those within the tolerance."""
    reference = rows[0][metric]
    for row in rows:
        row["quality_drop"] = round(reference - row[metric], 6)
        row["within_tolerance"] = row["quality_drop"] <= tolerance + 1e-9
    within = [row for row in rows if row["within_tolerance"]]
    best = min(within, key=lambda row: row["latency_ms_p50_b1"])["name"] if within else None
    return {"task": task, "metric": metric, "tolerance": tolerance, "variants": rows, "best": best}


def _timed(logits: Logits, texts: Sequence[str]) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    out = logits(texts)
    return out, time.perf_counter() - started


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
