"""The configured pruners as one: each stops a crafted bad curve and says why; a default trial is never cut."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from open_autoglm.search.pruners import Rungs, build_pruner

E = 100  # one epoch in report steps (training examples seen)


def three_epochs(startup_trials: int = 2) -> Rungs:
    return Rungs(min_resource=E, final_step=3 * E, startup_trials=startup_trials, epoch=E)


GOOD_CURVES = [
    {E: 0.80, 2 * E: 0.86, 3 * E: 0.88},
    {E: 0.78, 2 * E: 0.85, 3 * E: 0.87},
    {E: 0.82, 2 * E: 0.87, 3 * E: 0.89},
    {E: 0.76, 2 * E: 0.83, 3 * E: 0.86},
    {E: 0.79, 2 * E: 0.84, 3 * E: 0.87},
]


def study_with(pruner_names: list[str]) -> tuple[optuna.Study, object]:
    pruner = build_pruner(pruner_names, "accuracy", three_epochs())
    study = optuna.create_study(direction="maximize", pruner=pruner, sampler=optuna.samplers.RandomSampler(0))
    for curve in GOOD_CURVES:  # reported live, so that successive halving records its rungs
        run_curve(study, list(curve.values()), never_prune=True)
    return study, pruner


def run_curve(study: optuna.Study, curve: list[float], **user_attrs: object) -> tuple[int | None, bool]:
    """Report the curve epoch by epoch; return the epoch it was stopped at (None: ran to the end)."""
    trial = study.ask()
    for key, value in user_attrs.items():
        trial.set_user_attr(key, value)
    for epoch, value in enumerate(curve, start=1):
        trial.report(value, epoch * E)
        if trial.should_prune():
            study.tell(trial, state=TrialState.PRUNED)
            return epoch, True
    study.tell(trial, curve[-1])
    return None, False


@pytest.mark.parametrize(
    ("names", "who"), [(["median"], "median"), (["asha"], "asha"), (["curve"], "learning curve")]
)
def test_each_pruner_stops_a_hopeless_curve_and_says_why(names: list[str], who: str) -> None:
    study, pruner = study_with(names)
    epoch, pruned = run_curve(study, [0.30, 0.32, 0.33])
    assert pruned and epoch is not None and epoch <= 2
    assert pruner.last_reason is not None and pruner.last_reason.startswith(who)
    assert "0.3" in pruner.last_reason  # the value it judged


@pytest.mark.parametrize("names", [["median"], ["asha"], ["curve"], ["asha", "curve"]])
def test_a_good_curve_runs_to_the_end(names: list[str]) -> None:
    study, _ = study_with(names)
    assert run_curve(study, [0.84, 0.89, 0.91]) == (None, False)


def test_the_default_trial_is_never_pruned() -> None:
    study, _ = study_with(["median", "asha", "curve"])
    assert run_curve(study, [0.30, 0.32, 0.33], never_prune=True) == (None, False)


def test_first_member_to_say_prune_gives_the_reason() -> None:
    study, pruner = study_with(["asha", "curve"])
    run_curve(study, [0.30, 0.32, 0.33])
    assert pruner.last_reason is not None and pruner.last_reason.startswith(
        "asha: accuracy 0.3 after 100 examples (epoch 1)"
    )


def test_rank_pruners_skip_an_epoch_that_does_not_rank_trials() -> None:
    """Every model sits at the majority class after epoch 1 (0.52), then some take off: epoch 1 says nothing,
    so ASHA must not cut a trial there; epoch 2 ranks them, so it may cut there."""
    pruner = build_pruner(["asha"], "accuracy", three_epochs())
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for curve in (
        [0.52, 0.80, 0.86],
        [0.52, 0.53, 0.53],
        [0.52, 0.78, 0.85],
        [0.52, 0.52, 0.54],
        [0.52, 0.81, 0.88],
    ):
        run_curve(study, curve, never_prune=True)
    assert run_curve(study, [0.52, 0.50, 0.51]) == (2, True)  # not cut at epoch 1, cut at epoch 2
    assert pruner.last_reason.startswith("asha: accuracy 0.5 after 200 examples (epoch 2)")
