"""Samplers by name, set up for conditional spaces and parallel workers.

Each is an entry of `SAMPLERS`: a function from `SamplerSettings` to an Optuna sampler, registered under its name
(the function's). A plugin's joins through the `open_autoglm.samplers` entry points with the same shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from optuna.samplers import (
    BaseSampler,
    CmaEsSampler,
    GPSampler,
    NSGAIISampler,
    RandomSampler,
    TPESampler,
)

from open_autoglm.registry import Registry


@dataclass(frozen=True)
class SamplerSettings:
    """What a sampler is built from."""

    n_objectives: int  # 1, or the size of the Pareto front's points
    startup_trials: int  # random trials before the sampler models
    seed: int  # this worker's own seed
    workers: int  # trials proposed at once


SAMPLERS: Registry[Callable[[SamplerSettings], BaseSampler]] = Registry(
    "sampler", entry_point_group="open_autoglm.samplers"
)


@SAMPLERS.register
def auto(settings: SamplerSettings) -> BaseSampler:
    """TPE for one value, NSGA-II for a Pareto front."""
    return SAMPLERS.get("tpe" if settings.n_objectives == 1 else "nsga2")(settings)


@SAMPLERS.register
def tpe(settings: SamplerSettings) -> BaseSampler:
    """Multivariate with `group` (the method's own parameters form their own group, which is what a conditional
    space needs) and `constant_liar` when workers run at once (so they do not all propose the point the same
    model likes best)."""
    return TPESampler(
        n_startup_trials=settings.startup_trials,
        multivariate=True,
        group=True,
        constant_liar=settings.workers > 1,
        seed=settings.seed,
    )


@SAMPLERS.register
def random(settings: SamplerSettings) -> BaseSampler:
    return RandomSampler(seed=settings.seed)


@SAMPLERS.register
def gp(settings: SamplerSettings) -> BaseSampler:
    return GPSampler(
        n_startup_trials=settings.startup_trials, seed=settings.seed, warn_independent_sampling=False
    )


@SAMPLERS.register
def cmaes(settings: SamplerSettings) -> BaseSampler:
    """Categorical and conditional parameters fall back to random sampling."""
    return CmaEsSampler(
        n_startup_trials=settings.startup_trials, seed=settings.seed, warn_independent_sampling=False
    )


@SAMPLERS.register
def nsga2(settings: SamplerSettings) -> BaseSampler:
    return NSGAIISampler(seed=settings.seed, population_size=max(4, 2 * settings.startup_trials))


def build_sampler(name: str, n_objectives: int, startup_trials: int, seed: int, workers: int) -> BaseSampler:
    """The named sampler for this worker; every worker gets its own seed, so that workers running at once do not
    all propose the same point."""
    return SAMPLERS.get(name)(SamplerSettings(n_objectives, startup_trials, seed, workers))
