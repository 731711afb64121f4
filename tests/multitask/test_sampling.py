"""Task sampling probabilities and the per-task batch streams."""

from __future__ import annotations

import numpy as np
import pytest

from open_autoglm.multitask.sampling import BatchStream, draw_tasks, task_probabilities


def test_proportional_follows_sizes() -> None:
    assert task_probabilities([100, 300], "proportional") == pytest.approx([0.25, 0.75])


def test_temperature_flattens_towards_uniform() -> None:
    sizes = [100, 900]
    t2 = task_probabilities(sizes, "temperature", 2.0)
    assert t2 == pytest.approx([10 / 40, 30 / 40])  # sqrt(100)=10, sqrt(900)=30
    assert task_probabilities(sizes, "temperature", 1.0) == pytest.approx(
        task_probabilities(sizes, "proportional")
    )
    hot = task_probabilities(sizes, "temperature", 50.0)
    assert 0.1 < t2[0] < hot[0] < 0.5


def test_uniform_ignores_sizes() -> None:
    assert task_probabilities([5, 50, 500], "uniform") == pytest.approx([1 / 3] * 3)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="training rows"):
        task_probabilities([10, 0], "uniform")
    with pytest.raises(ValueError, match="unknown sampling"):
        task_probabilities([10, 20], "round_robin")


def test_draws_match_probabilities_and_seed() -> None:
    draws = draw_tasks([0.2, 0.8], steps=5_000, per_step=2, seed=1)
    assert draws.shape == (5_000, 2)
    assert np.mean(draws == 1) == pytest.approx(0.8, abs=0.02)
    assert (draws == draw_tasks([0.2, 0.8], steps=5_000, per_step=2, seed=1)).all()


def test_batch_stream_covers_every_row_each_pass() -> None:
    stream = BatchStream(rows=10, batch_size=5, seed=0)
    first_pass = stream.next_batch() + stream.next_batch()
    assert sorted(first_pass) == list(range(10))
    small = BatchStream(rows=3, batch_size=8, seed=0)  # fewer rows than a batch: rows repeat
    assert len(small.next_batch()) == 8
