"""Which task the next batch comes from: by size (proportional), by size^(1/T) (temperature), or evenly."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def task_probabilities(sizes: Sequence[int], sampling: str, temperature: float = 1.0) -> list[float]:
    """The chance of drawing each task's next batch, from the tasks' training-set sizes.

    Proportional sampling starves small tasks; uniform oversamples them until they overfit; a temperature
    T > 1 (p_i ∝ n_i^(1/T)) sits between the two (T = 1 is proportional, T → ∞ uniform).
    """
    if not sizes or min(sizes) <= 0:
        raise ValueError(f"every task needs training rows, got sizes {list(sizes)}")
    n = np.asarray(sizes, dtype=np.float64)
    if sampling == "proportional":
        weights = n
    elif sampling == "temperature":
        if temperature < 1.0:
            raise ValueError(f"temperature must be at least 1, got {temperature}")
        weights = n ** (1.0 / temperature)
    elif sampling == "uniform":
        weights = np.ones_like(n)
    else:
        raise ValueError(f"unknown sampling {sampling!r}; allowed: proportional, temperature, uniform")
    return [float(w) for w in weights / weights.sum()]


def draw_tasks(probabilities: Sequence[float], steps: int, per_step: int, seed: int) -> np.ndarray:
    """The task index of every batch of `steps` steps, `per_step` batches a step: shape (steps, per_step)."""
    rng = np.random.default_rng(seed)
    return rng.choice(len(probabilities), size=(steps, per_step), p=np.asarray(probabilities))


class BatchStream:
    """Endless seeded batches of row positions for one task: each pass over its rows is a fresh shuffle."""

    def __init__(self, rows: int, batch_size: int, seed: int) -> None:
        self.rows, self.batch_size = rows, batch_size
        self.rng = np.random.default_rng(seed)
        self._order: list[int] = []

    def next_batch(self) -> list[int]:
        while len(self._order) < self.batch_size:  # too few left for a full batch: top up with a new shuffle
            self._order += [int(i) for i in self.rng.permutation(self.rows)]
        batch, self._order = self._order[: self.batch_size], self._order[self.batch_size :]
        return batch
