"""Pruners by name: Optuna's median, ASHA and Hyperband, and our learning-curve predictor.

Each is an entry of `PRUNERS`: a function from the study's `Rungs` to an Optuna pruner, registered under its
name (the function's). A plugin's joins through the `open_autoglm.pruners` entry points with the same shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from optuna.pruners import BasePruner, HyperbandPruner, MedianPruner, SuccessiveHalvingPruner

from open_autoglm.registry import Registry
from open_autoglm.search.pruners.composite import CompositePruner
from open_autoglm.search.pruners.curve import LearningCurvePruner

__all__ = ["PRUNERS", "CompositePruner", "LearningCurvePruner", "Rungs", "build_pruner"]


@dataclass(frozen=True)
class Rungs:
    """What a pruner is built from. Resources are report steps: training examples seen (see search/reports.py)."""

    min_resource: int  # the first rung: the first report, a share of an epoch
    final_step: int  # the step a trial that runs to the end reports last
    startup_trials: int  # trials finished before a pruner judges
    epoch: int  # steps in one epoch (for the reasons a pruner gives)


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


def build_pruner(names: Sequence[str], metric: str, rungs: Rungs) -> CompositePruner:
    """The named pruners as one."""
    return CompositePruner([(name, PRUNERS.get(name)(rungs)) for name in names], metric, rungs.epoch)
