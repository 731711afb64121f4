"""The regression gate behind `autoglm eval --fail-on-regression`: the metrics that moved in their worse
direction by more than a tolerance against a baseline (the pretrained model, or an earlier run)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from open_autoglm.evaluate.metrics import metric_is_higher_better
from open_autoglm.run_folder import read_summary


@dataclass
class Regression:
    baseline: str  # which baseline: "pretrained", "previous", ...
    metric: str
    baseline_value: float
    value: float
    change: float  # value - baseline_value
    tolerance: float  # the worsening allowed: absolute, or a share of baseline_value when relative
    relative: bool = False

    def describe(self) -> str:
        """One line for the console and CI logs."""
        allowed = (
            f"{self.tolerance:.1%} of {self.baseline_value:.3f}" if self.relative else f"{self.tolerance:.3f}"
        )
        if math.isnan(self.value):
            return f"{self.metric} is not a number (was {self.baseline_value:.3f}) against {self.baseline}"
        verb = "fell" if self.change < 0 else "rose"
        return (
            f"{self.metric} {verb} from {self.baseline_value:.3f} to {self.value:.3f} "
            f"({self.change:+.3f}, tolerance {allowed}) against {self.baseline}"
        )


def find_regressions(
    current: Mapping[str, float],
    baseline: Mapping[str, float],
    baseline_name: str,
    *,
    metrics: Sequence[str],
    tolerance: float = 0.01,
    relative: bool = False,
) -> list[Regression]:
    """The gated `metrics` that got worse than `baseline` by more than `tolerance` (absolute, or relative to
    the baseline value). A gated metric missing on either side is an error, never a silent pass; a current
    value that is NaN counts as a regression."""
    if not metrics:
        raise ValueError("no metrics to gate on")
    if tolerance < 0:
        raise ValueError(f"the regression tolerance must be >= 0, got {tolerance}")
    _require(metrics, current, "this evaluation")
    _require(metrics, baseline, f"baseline {baseline_name!r}")
    found = []
    for name in metrics:
        before, after = float(baseline[name]), float(current[name])
        if math.isnan(before):
            raise ValueError(
                f"baseline {baseline_name!r} has {name} = nan: there is nothing to compare against"
            )
        worsening = before - after if metric_is_higher_better(name) else after - before
        allowed = tolerance * abs(before) if relative else tolerance
        # isclose: a change of exactly the tolerance passes, whatever the rounding of the subtraction.
        if math.isnan(worsening) or (worsening > allowed and not math.isclose(worsening, allowed)):
            found.append(Regression(baseline_name, name, before, after, after - before, tolerance, relative))
    return found


def read_baseline_summary(path: Path) -> dict[str, float]:
    """The best model's metrics in an earlier run's summary.json: on its test split when it was scored there
    (best.test), else best.metrics."""
    try:
        summary = read_summary(path, "a run summary to compare with")
    except FileNotFoundError:
        raise FileNotFoundError(f"baseline summary {path} does not exist") from None
    chosen = summary.test or summary.best.get("metrics")
    numbers = {
        name: float(value)
        for name, value in (chosen.items() if isinstance(chosen, dict) else ())
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    if not numbers:
        raise ValueError(f"baseline summary {path} has no metrics under best.test or best.metrics")
    return numbers


def _require(metrics: Sequence[str], values: Mapping[str, float], whose: str) -> None:
    missing = [name for name in metrics if name not in values]
    if missing:
        present = ", ".join(sorted(values)) or "none"
        raise ValueError(f"{whose} has no {', '.join(missing)} to gate on; its metrics: {present}")
