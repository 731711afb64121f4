"""Bootstrap intervals: they hold the estimate, narrow with more rows, match the binomial standard error,
and the paired difference resamples the same rows for both models."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from open_autoglm.evaluate.bootstrap import confidence_interval, paired_difference


def _accuracy(correct: np.ndarray):
    return lambda rows: float(correct[rows].mean())


def _correct(n: int, share: float, seed: int = 0) -> np.ndarray:
    """Exactly round(share * n) right answers, shuffled."""
    correct = np.zeros(n)
    correct[: round(share * n)] = 1.0
    return np.random.default_rng(seed).permutation(correct)


def test_interval_holds_the_estimate_and_matches_the_binomial_error() -> None:
    correct = _correct(400, 0.5)
    low, high = confidence_interval(_accuracy(correct), 400)
    assert low < 0.5 < high
    # normal approximation: 2 * 1.96 * sqrt(.5 * .5 / 400) = 0.098
    assert high - low == pytest.approx(0.098, rel=0.2)


def test_interval_narrows_as_rows_grow() -> None:
    small = confidence_interval(_accuracy(_correct(100, 0.7)), 100)
    large = confidence_interval(_accuracy(_correct(2000, 0.7)), 2000)
    assert large[1] - large[0] < (small[1] - small[0]) / 2  # width ~ 1/sqrt(n): sqrt(20) ~ 4.5 times narrower


def test_same_seed_same_interval() -> None:
    statistic = _accuracy(_correct(300, 0.6))
    assert confidence_interval(statistic, 300, seed=3) == confidence_interval(statistic, 300, seed=3)


def test_constant_statistic_and_tiny_samples_give_zero_width() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert confidence_interval(lambda rows: 0.25, 50) == (0.25, 0.25)
        assert confidence_interval(_accuracy(np.array([1.0])), 1) == (1.0, 1.0)
        one = paired_difference(_accuracy(np.array([1.0])), _accuracy(np.array([0.0])), 1)
    assert one == {"delta": 1.0, "ci_low": 1.0, "ci_high": 1.0, "significant": False}  # one row shows nothing
    with pytest.raises(ValueError, match="no evaluated rows"):
        confidence_interval(lambda rows: 0.0, 0)


def test_identical_models_differ_by_nothing() -> None:
    statistic = _accuracy(_correct(400, 0.8))
    assert paired_difference(statistic, statistic, 400) == {
        "delta": 0.0,
        "ci_low": 0.0,
        "ci_high": 0.0,
        "significant": False,
    }


def test_clearly_better_model_is_significant() -> None:
    result = paired_difference(_accuracy(_correct(400, 0.95, 1)), _accuracy(_correct(400, 0.5, 2)), 400)
    assert result["delta"] == pytest.approx(0.45)
    assert result["significant"]
    assert 0 < result["ci_low"] < 0.45 < result["ci_high"]


def test_pairing_detects_a_small_consistent_gain() -> None:
    # b is right on 280 rows; a on the same 280 plus 20 more. Apart, 0.70 and 0.75 on 400 rows have
    # overlapping intervals; resampled together, a never loses a row to b, so the gain is clear.
    b = _correct(400, 0.7)
    a = b.copy()
    a[np.flatnonzero(b == 0)[:20]] = 1.0
    low_a, _ = confidence_interval(_accuracy(a), 400)
    _, high_b = confidence_interval(_accuracy(b), 400)
    assert low_a < high_b
    result = paired_difference(_accuracy(a), _accuracy(b), 400)
    assert result["delta"] == pytest.approx(0.05)
    assert result["significant"]
    assert result["ci_low"] > 0
