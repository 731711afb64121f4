"""Bootstrap confidence intervals over the evaluated rows, for one model and for the difference of two.

scipy.stats.bootstrap resamples example indices rather than values, so any metric works, including
corpus-level ones (BLEU, pooled perplexity) that are not a mean over rows. We use the percentile interval:
BCa's jackknife would add n more evaluations of the statistic and returns NaN for a constant one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import bootstrap

Statistic = Callable[[np.ndarray], float]  # example indices -> the metric on those examples
RESAMPLED_INDICES_PER_BATCH = 2_000_000  # bounds the (resamples, n) index matrix scipy holds at once


def confidence_interval(
    statistic: Statistic, n: int, *, confidence: float = 0.95, n_resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Interval of `statistic` over `n` rows; zero width when there are fewer than two rows to resample."""
    if n < 2:
        point = _point(statistic, n)
        return point, point
    return _interval(statistic, n, confidence, n_resamples, seed)


def paired_difference(
    stat_a: Statistic,
    stat_b: Statistic,
    n: int,
    *,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """a - b, for two models scored on the same `n` rows, with the interval of the difference from resampling
    the rows once for both (paired): shared easy and hard rows cancel, so the interval is narrower than two
    separate ones. `significant` when the interval excludes 0; never with fewer than two rows."""
    delta = _point(stat_a, n) - _point(stat_b, n)
    if n < 2:
        return {"delta": delta, "ci_low": delta, "ci_high": delta, "significant": False}
    low, high = _interval(lambda rows: stat_a(rows) - stat_b(rows), n, confidence, n_resamples, seed)
    return {"delta": delta, "ci_low": low, "ci_high": high, "significant": not low <= 0.0 <= high}


def _point(statistic: Statistic, n: int) -> float:
    if n < 1:
        raise ValueError("no evaluated rows to compute a confidence interval on")
    return float(statistic(np.arange(n)))


def _interval(
    statistic: Statistic, n: int, confidence: float, n_resamples: int, seed: int
) -> tuple[float, float]:
    result = bootstrap(
        (np.arange(n),),
        statistic,
        vectorized=False,
        n_resamples=n_resamples,
        batch=max(1, RESAMPLED_INDICES_PER_BATCH // n),
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return float(interval.low), float(interval.high)
