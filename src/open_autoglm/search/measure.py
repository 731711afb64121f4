"""What a trial costs besides its quality: inference latency and peak memory, measured the same way for all."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

LATENCY_EXAMPLES = 32


@torch.inference_mode()
def latency_ms(model: Any, examples: Sequence[Sequence[int]], device: torch.device | str) -> float:
    """Median milliseconds per example at batch size 1 (one warm-up pass first), as a server would see it."""
    was_training = model.training
    model.eval()
    timings = []
    try:
        for i, ids in enumerate([examples[0], *examples[:LATENCY_EXAMPLES]]):
            input_ids = torch.tensor([list(ids)], device=device)
            started = time.perf_counter()
            model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids))
            if i:  # the first pass warms kernels up
                timings.append((time.perf_counter() - started) * 1000)
    finally:
        model.train(was_training)
    timings.sort()
    return timings[len(timings) // 2]
