"""What a trial costs besides its quality (inference latency, measured the same way for all), and a plugin's
objective measured on the trained model."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from open_autoglm.search.objectives import TrialOutcome

LATENCY_EXAMPLES = 32


@contextmanager
def evaluating(model: Any) -> Iterator[None]:
    """The model in eval mode and without autograd for the block, then back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


def latency_ms(model: Any, examples: Sequence[Sequence[int]], device: torch.device | str) -> float:
    """Median milliseconds per example at batch size 1 (one warm-up pass first), as a server would see it."""
    timings = []
    with evaluating(model):
        for i, ids in enumerate([examples[0], *examples[:LATENCY_EXAMPLES]]):
            input_ids = torch.tensor([list(ids)], device=device)
            started = time.perf_counter()
            model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids))
            if i:  # the first pass warms kernels up
                timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return timings[len(timings) // 2]


def measure_plugin(name: str, measure: Callable[[TrialOutcome], float], outcome: TrialOutcome) -> float:
    """A plugin objective's value on the trained model, put in eval mode for it; anything but a finite number is
    refused with the objective's name (the trial fails with that reason)."""
    with evaluating(outcome.model):
        value = measure(outcome)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(
            f"objective {name!r} (a plugin) returned {value!r}; an objective must be a finite number"
        )
    return float(value)
