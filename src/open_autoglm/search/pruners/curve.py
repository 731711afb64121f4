"""Prune a fine-tuning trial when even an optimistic forecast of its final score cannot beat the best.

Median and percentile pruners compare a trial with others *at the same step*, so a slow starter that would
have won is stopped, and a hopeless trial runs on while it stays above the median. Here the forecast is the
trial's final score, and finished trials of the same study say how far to trust it: how much curves still
gained from this step on, and how wrong extrapolating their own early points would have been.
"""

# Hand-written: neither Optuna 5 (median, percentile, patient, threshold, successive halving, hyperband,
# wilcoxon) nor any well-kept library ships a pruner that extrapolates learning curves.

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from scipy import stats

# Candidate exponents b of y = c - a * (step + 1) ** -b, from slow (log-like) to fast saturation.
_EXPONENTS = (0.25, 0.5, 1.0, 2.0, 4.0)
_TINY_STD = 1e-12  # keeps inverse-variance weights finite when finished curves agree exactly


@dataclass(frozen=True)
class CurvePrediction:
    """A forecast of a trial's final score; `basis` says which estimates went into it."""

    mean: float
    std: float
    optimistic: float  # mean + z * std when maximising, mean - z * std when minimising
    n_finished: int  # finished curves that reach past the current step
    basis: str  # "curve+transfer", "transfer", or "none" (too little evidence: std is infinite)


def _nearest(curve: Mapping[int, float], step: int) -> int:
    return min(curve, key=lambda s: (abs(s - step), s))


def _extrapolate(points: Sequence[tuple[int, float]], to_step: int) -> float:
    """Fit y = c - a * (step + 1) ** -b to `points` and read it at `to_step`.

    Linear least squares in (c, a) over a grid of b rather than a nonlinear fit: curves have a handful of
    points, and a grid cannot fail to converge. With two points every b fits exactly, so b = 1 is assumed.
    The sign of a is free, so rising scores and falling losses fit alike; step + 1 allows a step 0.
    """
    x = np.array([s for s, _ in points], dtype=float) + 1.0
    y = np.array([v for _, v in points], dtype=float)
    best_sse, best_value = math.inf, math.nan
    for b in _EXPONENTS if len(points) > 2 else (1.0,):
        design = np.column_stack([np.ones_like(x), -(x**-b)])
        (c, a), *_ = np.linalg.lstsq(design, y, rcond=None)
        sse = float(np.sum((design @ np.array([c, a]) - y) ** 2))
        if sse < best_sse:
            best_sse, best_value = sse, float(c - a * (to_step + 1.0) ** -b)
    return best_value


def _predictive(samples: Sequence[float], confidence: float) -> tuple[float, float]:
    """Mean of `samples` and the std of one more draw, normal-equivalent so estimates combine.

    The Student-t predictive interval (n - 1 degrees of freedom) is rescaled so that mean + z * std gives the
    same bound: few or disagreeing samples mean a wide std, and it narrows as consistent samples accrue.
    """
    n = len(samples)
    spread = float(np.std(samples, ddof=1)) * math.sqrt(1.0 + 1.0 / n)
    ratio = float(stats.t.ppf(confidence, n - 1) / stats.norm.ppf(confidence))
    return float(np.mean(samples)), spread * ratio


def predict_final(
    curve: Sequence[tuple[int, float]],
    final_step: int,
    finished: Sequence[Mapping[int, float]],
    direction: StudyDirection,
    confidence: float = 0.95,
) -> CurvePrediction:
    """Forecast the value at `final_step` of `curve` ([(step, value), ...]) from finished curves.

    Two estimates, each a point guess plus a correction learnt from finished curves that reach past the
    current step (at least two needed):
    - transfer: the current value plus the gains finished curves made from (nearest) this step to
      (nearest) `final_step`;
    - curve (needs >= 2 points): the trial's own saturating extrapolation, plus how far the same
      extrapolation from finished curves' early points missed their actual end.
    They are combined by inverse variance, with their squared disagreement added to the variance (they
    share data, so treating them as independent would be overconfident).
    """
    points = sorted(curve)
    now_step, now = points[-1]
    reaching = [c for c in finished if c and max(c) > now_step]
    z = float(stats.norm.ppf(confidence))
    sign = 1.0 if direction == StudyDirection.MAXIMIZE else -1.0
    if len(reaching) < 2:
        return CurvePrediction(now, math.inf, sign * math.inf, len(reaching), "none")

    gains = [c[_nearest(c, final_step)] - c[_nearest(c, now_step)] for c in reaching]
    gain, gain_std = _predictive(gains, confidence)
    estimates = [(now + gain, gain_std)]
    misses = []
    for c in reaching:
        seen = sorted((s, v) for s, v in c.items() if s <= now_step)
        if len(seen) >= 2:
            end = _nearest(c, final_step)
            misses.append(c[end] - _extrapolate(seen, end))
    if len(points) >= 2 and len(misses) >= 2:
        miss, miss_std = _predictive(misses, confidence)
        estimates.append((_extrapolate(points, final_step) + miss, miss_std))

    weights = np.array([1.0 / max(std, _TINY_STD) ** 2 for _, std in estimates])
    means = np.array([mean for mean, _ in estimates])
    mean = float(weights @ means / weights.sum())
    variance = 1.0 / weights.sum() + float(weights @ (means - mean) ** 2 / weights.sum())
    std = math.sqrt(variance)
    basis = "curve+transfer" if len(estimates) == 2 else "transfer"
    return CurvePrediction(mean, std, mean + sign * z * std, len(reaching), basis)


class LearningCurvePruner(optuna.pruners.BasePruner):
    """Stop a trial whose optimistic final score (see `predict_final`) falls short of the best finished one.

    A trial's end is its user attr `final_step`, else the longest finished curve. A trial with user attr
    `never_prune` set is never stopped. `last_reason` and `last_prediction` describe the latest decision.
    """

    def __init__(
        self, *, confidence: float = 0.95, min_points: int = 2, min_finished: int = 2, min_delta: float = 0.0
    ) -> None:
        if not 0.5 <= confidence < 1.0:
            raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
        if min_points < 1 or min_finished < 2:
            raise ValueError(
                "min_points must be >= 1 and min_finished >= 2 (uncertainty is learnt from them)"
            )
        if min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta}")
        self.confidence = confidence
        self.min_points = min_points
        self.min_finished = min_finished
        self.min_delta = min_delta
        self.last_reason: str | None = None
        self.last_prediction: CurvePrediction | None = None

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return self.explain(study, trial) is not None

    def explain(self, study: optuna.Study, trial: FrozenTrial) -> str | None:
        """Decide as `prune` does; return why the trial should stop, or None to keep it."""
        prediction, reason = self._judge(study, trial)
        self.last_prediction, self.last_reason = prediction, reason
        return reason  # the local, not the attribute: threads of one study share this pruner

    def _judge(self, study: optuna.Study, trial: FrozenTrial) -> tuple[CurvePrediction | None, str | None]:
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        finished = [t.intermediate_values for t in done if t.intermediate_values]
        too_early = (
            len(trial.intermediate_values) < self.min_points
        )  # min_points >= 1, so max() below has a step
        if trial.user_attrs.get("never_prune") or too_early or len(finished) < self.min_finished:
            return None, None
        step = max(trial.intermediate_values)
        final_step = int(trial.user_attrs.get("final_step") or max(max(c) for c in finished))
        if step >= final_step:
            return None, None
        curve = sorted(trial.intermediate_values.items())
        prediction = predict_final(curve, final_step, finished, study.direction, self.confidence)

        finals = [t.intermediate_values[t.last_step] if t.last_step is not None else t.value for t in done]
        maximise = study.direction == StudyDirection.MAXIMIZE
        best = (max if maximise else min)(v for v in finals if v is not None)
        target = best + self.min_delta if maximise else best - self.min_delta
        if (prediction.optimistic >= target) if maximise else (prediction.optimistic <= target):
            return prediction, None
        margin = f" by {self.min_delta:.4g}" if self.min_delta else ""
        return prediction, (
            f"learning curve: predicted final {prediction.mean:.4g} ± {prediction.std:.2g}"
            f" (optimistic {prediction.optimistic:.4g}) after {step} of {final_step} examples"
            f" cannot beat the best {best:.4g}{margin}"
        )
