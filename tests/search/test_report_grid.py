"""Trials report at shares of an epoch counted in training examples: the same steps whatever the batch size, so
the pruners can stop a one-epoch trial inside its epoch."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from open_autoglm.config import ConfigError, validate_config
from open_autoglm.run_folder import RunFolder
from open_autoglm.search.job import run_tune
from open_autoglm.search.pruners import build_pruner
from open_autoglm.search.reports import ReportGrid, report_grid
from open_autoglm.tasks import TASKS


def test_trials_with_different_batch_sizes_report_at_the_same_examples_seen(
    tmp_path: Path, tiny_decoder: Path, sft_file: Path
) -> None:
    config = validate_config(
        {
            "name": "grid",
            "output_dir": str(tmp_path),
            "task": "sft",
            "model": {"name": str(tiny_decoder)},
            "data": {
                "train": str(sft_file),
                "max_length": 32,
                "val_ratio": 0.2,
                "test_ratio": 0.0,
                "dedup": {"exact": False, "near": False},
            },
            "train": {"epochs": 1, "lr": 1e-3, "batch_size": 8},
            "search": {
                "n_trials": 3,
                "seed_default": False,
                "seeds": [{"train.batch_size": 2}, {"train.batch_size": 4}, {"train.batch_size": 8}],
                "space": {"train.batch_size": [2, 4, 8]},
                "pruner": "median",  # never with 3 trials: reporting only
            },
            "quiet": True,
        }
    )
    run_tune(config)
    study = optuna.load_study(study_name="grid", storage=f"sqlite:///{RunFolder(config.run_dir).study_db}")
    trials = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert sorted(t.params["train.batch_size"] for t in trials) == [2, 4, 8]
    rows = max(trials[0].intermediate_values)  # one epoch ends at the training rows
    # sft evaluates 4 times an epoch; the pruners need no other study, so the steps are read from this one
    assert all(sorted(t.intermediate_values) == [round(k * rows / 4) for k in range(1, 5)] for t in trials)
    assert {t.user_attrs["train_steps"] for t in trials} == {-(-rows // 2), -(-rows // 4), -(-rows // 8)}


def test_eval_every_steps_becomes_shares_of_an_epoch_of_the_configured_batch() -> None:
    config = validate_config(
        {"task": "classification", "data": {"train": "x.csv"}, "train": {"batch_size": 10, "eval_every": 5}}
    )
    grid = report_grid(config, TASKS.get("classification")(), train_rows=100)
    assert grid == ReportGrid(per_epoch=2, epoch_examples=100, epochs=3.0)
    assert grid.rungs(startup_trials=4).min_resource == 50


def test_evals_per_epoch_and_eval_every_steps_are_refused_together() -> None:
    with pytest.raises(ConfigError, match="evals_per_epoch"):
        validate_config(
            {"task": "sft", "data": {"train": "x.jsonl"}, "train": {"evals_per_epoch": 4, "eval_every": 10}}
        )


def test_asha_stops_a_one_epoch_trial_at_its_first_quarter() -> None:
    """Five finished trials whose quarter-epoch values already rank them as their ends do; a sixth far behind
    them a quarter of the way in is stopped there, with the examples seen in its reason."""
    grid = ReportGrid(per_epoch=4, epoch_examples=400, epochs=1.0)
    pruner = build_pruner(["asha"], "accuracy", grid.rungs(startup_trials=2))
    study = optuna.create_study(direction="maximize", pruner=pruner, sampler=optuna.samplers.RandomSampler(0))
    for start in (0.60, 0.62, 0.64, 0.66, 0.68):
        trial = study.ask()
        trial.set_user_attr("never_prune", True)
        for k in range(1, 5):
            trial.report(start + 0.05 * k, grid.step_at(k / 4))
            assert not trial.should_prune()  # judged, so that successive halving records its rungs
        study.tell(trial, start + 0.2)
    trial = study.ask()
    trial.report(0.30, grid.step_at(0.25))
    assert trial.should_prune()
    assert pruner.last_reason is not None
    assert pruner.last_reason.startswith("asha: accuracy 0.3 after 100 examples (epoch 0.25)")
