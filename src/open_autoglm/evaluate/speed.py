"""Latency, throughput and peak memory of an evaluation, from the same passes that produced the metrics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from open_autoglm.evaluate.predict import Pass


def _ms_percentiles(seconds: Sequence[float]) -> tuple[float, float]:
    values = np.asarray(seconds, dtype=float) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def speed_report(batched: Pass, single: Pass, batch_size: int, peak_memory_mb: float) -> dict[str, float]:
    """Per example at batch size 1 (what one request waits; the first, warm-up pass left out), per batch at
    the evaluation batch size, and throughput over the whole batched pass."""
    warm = single.batch_seconds[1:] or single.batch_seconds
    p50, p95 = _ms_percentiles(warm)
    batch_p50, batch_p95 = _ms_percentiles(batched.batch_seconds)
    total = sum(batched.batch_seconds)
    return {
        "latency_ms_p50": round(p50, 3),
        "latency_ms_p95": round(p95, 3),
        "latency_examples": len(warm),
        "batch_size": batch_size,
        "batch_latency_ms_p50": round(batch_p50, 3),
        "batch_latency_ms_p95": round(batch_p95, 3),
        "throughput_per_s": round(sum(batched.batch_sizes) / total, 2) if total else 0.0,
        "peak_memory_mb": round(peak_memory_mb, 1),
    }
