"""What a trial costs besides its quality: inference latency and peak memory, measured the same way for all."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import psutil
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


class PeakMemory:
    """Peak memory during a block: CUDA's allocator peak on a GPU, else resident memory sampled in a thread."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cuda = torch.cuda.is_available()

    def __enter__(self) -> PeakMemory:
        if self._cuda:
            torch.cuda.reset_peak_memory_stats()
        else:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._cuda:
            self.peak_bytes = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            assert self._thread is not None
            self._thread.join()

    def _sample(self) -> None:
        process = psutil.Process()
        while True:
            self.peak_bytes = max(self.peak_bytes, process.memory_info().rss)
            if self._stop.wait(self.interval):
                return

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / 2**20
