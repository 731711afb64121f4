"""Samplers by name, set up for conditional spaces and parallel workers."""

from __future__ import annotations

from optuna.samplers import (
    BaseSampler,
    CmaEsSampler,
    GPSampler,
    NSGAIISampler,
    RandomSampler,
    TPESampler,
)


def build_sampler(name: str, n_objectives: int, startup_trials: int, seed: int, workers: int) -> BaseSampler:
    """`auto` is TPE for one value and NSGA-II for a Pareto front.

    TPE is multivariate with `group` (the method's own parameters form their own group, which is what a
    conditional space needs) and `constant_liar` when workers run at once (so they do not all propose the
    point the same model likes best). Every worker gets its own seed for the same reason.
    """
    if name == "auto":
        name = "tpe" if n_objectives == 1 else "nsga2"
    if name == "tpe":
        return TPESampler(
            n_startup_trials=startup_trials,
            multivariate=True,
            group=True,
            constant_liar=workers > 1,
            seed=seed,
        )
    if name == "random":
        return RandomSampler(seed=seed)
    if name == "gp":
        return GPSampler(n_startup_trials=startup_trials, seed=seed, warn_independent_sampling=False)
    if name == "cmaes":  # categorical and conditional parameters fall back to random sampling
        return CmaEsSampler(n_startup_trials=startup_trials, seed=seed, warn_independent_sampling=False)
    if name == "nsga2":
        return NSGAIISampler(seed=seed, population_size=max(4, 2 * startup_trials))
    raise ValueError(f"search.sampler: unknown sampler {name!r}")
