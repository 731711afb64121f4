"""When workers stop, how they share the cores, and that every sampler runs on the default space."""

from __future__ import annotations

import time

import optuna
import pytest
from optuna.trial import TrialState

from open_autoglm.config import validate_config
from open_autoglm.search.samplers import build_sampler
from open_autoglm.search.space import build_space
from open_autoglm.search.storage import count_trials
from open_autoglm.search.worker import running_elsewhere, should_stop, split_threads, trials_since_best


def study_with(values: list[float | None]) -> optuna.Study:
    """None: a failed trial."""
    study = optuna.create_study(direction="maximize")
    for value in values:
        trial = study.ask()
        study.tell(trial, value, state=TrialState.FAIL if value is None else TrialState.COMPLETE)
    return study


def test_waits_for_running_trials_and_stops_at_the_asked_number() -> None:
    study = study_with([0.5, None])
    assert should_stop(study, 3, None, None, False) is None
    assert not running_elsewhere(study, 3)
    trial = study.ask()  # a running trial of another worker: wait, do not start a fourth
    assert should_stop(study, 3, None, None, False) is None and running_elsewhere(study, 3)
    assert count_trials(study) == {"complete": 1, "pruned": 0, "failed": 1, "running": 1, "finished": 2}
    study.enqueue_trial({})  # a queued retry is work to take, not a reason to wait
    assert not running_elsewhere(study, 3)
    study.tell(trial, 0.7)
    assert "3 trials finished, 3 asked" in should_stop(study, 3, None, None, False)


def test_patience_and_timeout() -> None:
    study = study_with([0.5, 0.9, 0.7, None, 0.8])
    assert trials_since_best(study) == 3
    assert should_stop(study, 100, None, 4, False) is None
    assert "no improvement in the last 3" in should_stop(study, 100, None, 3, False)
    assert should_stop(study, 100, time.time() - 1, None, False) == "timeout reached"


def test_threads_are_split_between_workers() -> None:
    assert split_threads(2, 2) == 1
    assert split_threads(4, 16) == 4
    assert split_threads(3, 2) == 1  # never zero


@pytest.mark.parametrize("name", ["tpe", "random", "gp", "cmaes", "auto"])
def test_every_sampler_runs_on_the_default_conditional_space(name: str) -> None:
    config = validate_config({"task": "classification"}, "test")
    space = build_space(config)
    study = optuna.create_study(direction="maximize", sampler=build_sampler(name, 1, 3, seed=0, workers=2))
    for _ in range(6):
        trial = study.ask()
        sampled = space.sample(trial)
        study.tell(trial, sampled[next(k for k in sampled if k.startswith("lr_"))])
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 6


def test_nsga2_for_a_pareto_front() -> None:
    config = validate_config({"task": "classification"}, "test")
    space = build_space(config)
    sampler = build_sampler("auto", 2, 3, seed=0, workers=1)
    assert isinstance(sampler, optuna.samplers.NSGAIISampler)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    for _ in range(8):
        trial = study.ask()
        sampled = space.sample(trial)
        study.tell(trial, [sampled["train.batch_size"], sampled["train.scheduler.warmup_ratio"]])
    assert study.best_trials
