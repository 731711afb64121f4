"""Pruners by name: Optuna's median, ASHA and Hyperband, and our learning-curve predictor."""

from __future__ import annotations

import math
from collections.abc import Sequence

from optuna.pruners import BasePruner, HyperbandPruner, MedianPruner, SuccessiveHalvingPruner

from open_autoglm.search.pruners.composite import STEPS_PER_EPOCH, CompositePruner
from open_autoglm.search.pruners.curve import LearningCurvePruner

__all__ = ["STEPS_PER_EPOCH", "CompositePruner", "LearningCurvePruner", "build_pruner"]


def build_pruner(names: Sequence[str], metric: str, epochs: float, startup_trials: int) -> CompositePruner:
    """The configured pruners as one. Resources are in report steps; the first rung is one epoch."""
    final_step = max(1, math.ceil(epochs * STEPS_PER_EPOCH))
    min_resource = min(STEPS_PER_EPOCH, final_step)
    members: list[tuple[str, BasePruner]] = []
    for name in names:
        if name == "median":
            members.append((name, MedianPruner(n_startup_trials=startup_trials, n_min_trials=2)))
        elif name == "asha":
            members.append((name, SuccessiveHalvingPruner(min_resource=min_resource, reduction_factor=2)))
        elif name == "hyperband":
            members.append(
                (
                    name,
                    HyperbandPruner(min_resource=min_resource, max_resource=final_step, reduction_factor=3),
                )
            )
        elif name == "curve":
            members.append((name, LearningCurvePruner(min_finished=3)))
    return CompositePruner(members, metric)
