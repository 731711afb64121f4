"""Pruners by name: Optuna's median, ASHA and Hyperband, and our learning-curve predictor.

Each is an entry of `PRUNERS`: a function from the study's `Rungs` to an Optuna pruner, registered under its
name (the function's). A plugin's joins through the `open_autoglm.pruners` entry points with the same shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from optuna.pruners import BasePruner, HyperbandPruner, MedianPruner, SuccessiveHalvingPruner

from open_autoglm.registry import Registry
from open_autoglm.search.pruners.composite import STEPS_PER_EPOCH, CompositePruner
from open_autoglm.search.pruners.curve import LearningCurvePruner

__all__ = ["PRUNERS", "STEPS_PER_EPOCH", "CompositePruner", "LearningCurvePruner", "Rungs", "build_pruner"]


@dataclass(frozen=True)
class Rungs:
    """What a pruner is built from. Resources are in report steps (STEPS_PER_EPOCH an epoch)."""

    min_resource: int  # the first rung: one epoch, or the whole run when it is shorter
    final_step: int  # the step a trial that runs to the end reports last
    startup_trials: int  # trials finished before a pruner judges


PRUNERS: Registry[Callable[[Rungs], BasePruner]] = Registry(
    "pruner", entry_point_group="open_autoglm.pruners"
)


@PRUNERS.register
def median(rungs: Rungs) -> BasePruner:
    return MedianPruner(n_startup_trials=rungs.startup_trials, n_min_trials=2)


@PRUNERS.register
def asha(rungs: Rungs) -> BasePruner:
    return SuccessiveHalvingPruner(min_resource=rungs.min_resource, reduction_factor=2)


@PRUNERS.register
def hyperband(rungs: Rungs) -> BasePruner:
    return HyperbandPruner(min_resource=rungs.min_resource, max_resource=rungs.final_step, reduction_factor=3)


@PRUNERS.register
def curve(rungs: Rungs) -> BasePruner:
    return LearningCurvePruner(min_finished=3)


def build_pruner(names: Sequence[str], metric: str, epochs: float, startup_trials: int) -> CompositePruner:
    """The named pruners as one. The first rung is one epoch."""
    final_step = max(1, math.ceil(epochs * STEPS_PER_EPOCH))
    rungs = Rungs(min(STEPS_PER_EPOCH, final_step), final_step, startup_trials)
    return CompositePruner([(name, PRUNERS.get(name)(rungs)) for name in names], metric)
