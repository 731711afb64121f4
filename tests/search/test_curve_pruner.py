"""The learning-curve pruner on crafted curves and on a real in-memory Optuna study."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.study import StudyDirection

from open_autoglm.search.pruners.curve import LearningCurvePruner, _extrapolate, predict_final

# Accuracy of three finished trials over 4 epochs; they gain about 0.08 after epoch 2; the best ends at 0.83.
FINISHED = [
    {1: 0.60, 2: 0.72, 3: 0.78, 4: 0.80},
    {1: 0.62, 2: 0.75, 3: 0.81, 4: 0.83},
    {1: 0.58, 2: 0.70, 3: 0.77, 4: 0.79},
]
BEST = 0.83


def _jittered(n: int) -> list[dict[int, float]]:
    """`n` curves of one shape, ends alternately 0.01 above and below."""
    return [{1: 0.6, 2: 0.72, 3: 0.78 + d, 4: 0.80 + d} for d in (0.01 if i % 2 else -0.01 for i in range(n))]


def test_extrapolation_recovers_a_saturating_law_from_three_points() -> None:
    law = [(s, 0.9 - 0.5 * (s + 1) ** -2.0) for s in (1, 2, 3, 10)]
    assert _extrapolate(law[:3], 10) == pytest.approx(law[3][1], abs=1e-9)


def test_flat_hopeless_curve_is_forecast_low_with_bound_below_best() -> None:
    pred = predict_final([(1, 0.30), (2, 0.31)], 4, FINISHED, StudyDirection.MAXIMIZE)
    assert pred.basis == "curve+transfer" and pred.n_finished == 3
    assert 0.25 < pred.mean < 0.45
    assert pred.mean < pred.optimistic < BEST


def test_steep_good_curve_has_bound_above_best() -> None:
    pred = predict_final([(1, 0.70), (2, 0.84)], 4, FINISHED, StudyDirection.MAXIMIZE)
    assert pred.mean > 0.88  # the 0.84 it has already reached plus what finished curves still gained
    assert pred.optimistic > BEST


def test_uncertainty_shrinks_with_more_consistent_finished_curves() -> None:
    stds = [
        predict_final([(1, 0.6), (2, 0.71)], 4, _jittered(n), StudyDirection.MAXIMIZE).std for n in (2, 4, 8)
    ]
    assert stds[0] > stds[1] > stds[2] > 0
    assert stds[0] > 2 * stds[2]  # two curves say little: Student-t with one degree of freedom is wide


def test_uncertainty_grows_when_finished_curves_disagree() -> None:
    calm = [{1: 0.6, 2: 0.7, 4: 0.80}, {1: 0.6, 2: 0.7, 4: 0.82}, {1: 0.6, 2: 0.7, 4: 0.81}]
    wild = [{1: 0.6, 2: 0.7, 4: 0.72}, {1: 0.6, 2: 0.7, 4: 0.95}, {1: 0.6, 2: 0.7, 4: 0.81}]
    curve = [(1, 0.6), (2, 0.7)]
    assert (
        predict_final(curve, 4, wild, StudyDirection.MAXIMIZE).std
        > 3 * predict_final(curve, 4, calm, StudyDirection.MAXIMIZE).std
    )


def test_disagreement_between_own_curve_and_transfer_widens_the_forecast() -> None:
    # Both curves see the same finished curves; only the flat one's extrapolation disagrees with the transfer.
    agrees = predict_final([(1, 0.60), (2, 0.72)], 4, FINISHED, StudyDirection.MAXIMIZE)
    flat = predict_final([(1, 0.30), (2, 0.31)], 4, FINISHED, StudyDirection.MAXIMIZE)
    assert flat.std > 2 * agrees.std


def test_minimise_puts_the_optimistic_bound_below_the_mean() -> None:
    losses = [
        {1: 1.0, 2: 0.70, 3: 0.60, 4: 0.55},
        {1: 1.1, 2: 0.75, 3: 0.64, 4: 0.58},
        {1: 0.9, 2: 0.68, 4: 0.54},
    ]
    bad = predict_final([(1, 2.0), (2, 1.95)], 4, losses, StudyDirection.MINIMIZE)
    good = predict_final([(1, 0.8), (2, 0.55)], 4, losses, StudyDirection.MINIMIZE)
    assert bad.optimistic < bad.mean and bad.optimistic > 0.54
    assert good.optimistic < 0.54


def test_without_two_finished_curves_past_this_step_there_is_no_forecast() -> None:
    pred = predict_final([(1, 0.3), (2, 0.3)], 4, [FINISHED[0], {1: 0.5, 2: 0.6}], StudyDirection.MAXIMIZE)
    assert pred.basis == "none" and pred.n_finished == 1
    assert math.isinf(pred.std) and pred.optimistic == math.inf


def test_one_point_uses_transfer_only() -> None:
    pred = predict_final([(2, 0.5)], 4, FINISHED, StudyDirection.MAXIMIZE)
    assert pred.basis == "transfer"
    assert pred.mean == pytest.approx(0.5 + (0.08 + 0.08 + 0.09) / 3)


def _study(curves: list[dict[int, float]], direction: str = "maximize", **kwargs: float) -> optuna.Study:
    study = optuna.create_study(direction=direction, pruner=LearningCurvePruner(**kwargs))  # type: ignore[arg-type]
    for curve in curves:
        study.add_trial(optuna.trial.create_trial(value=curve[max(curve)], intermediate_values=curve))
    return study


def _run(study: optuna.Study, curve: list[float], **user_attrs: object) -> tuple[bool, str | None]:
    """Report `curve` at steps 1.. in a new trial; the pruner's decision after the last report."""
    trial = study.ask()
    for key, value in user_attrs.items():
        trial.set_user_attr(key, value)
    for step, value in enumerate(curve, start=1):
        trial.report(value, step)
    pruner = study.pruner
    assert isinstance(pruner, LearningCurvePruner)
    return trial.should_prune(), pruner.last_reason


def test_pruner_stops_a_hopeless_trial_and_says_why() -> None:
    pruned, reason = _run(_study(FINISHED), [0.30, 0.31])
    assert pruned
    assert reason is not None
    assert reason.startswith("learning curve: predicted final 0.3")
    assert "after 2 of 4 examples cannot beat the best 0.83" in reason


def test_pruner_keeps_a_good_trial() -> None:
    study = _study(FINISHED)
    assert _run(study, [0.70, 0.84]) == (False, None)
    pruner = study.pruner
    assert isinstance(pruner, LearningCurvePruner) and pruner.last_prediction is not None


def test_explain_returns_the_reason_and_none_when_kept() -> None:
    study = _study(FINISHED)
    pruner = study.pruner
    assert isinstance(pruner, LearningCurvePruner)
    trial = study.ask()
    trial.report(0.30, 1)
    trial.report(0.31, 2)
    reason = pruner.explain(study, study._storage.get_trial(trial._trial_id))
    assert reason is not None and "cannot beat the best" in reason
    trial.report(0.95, 3)
    assert pruner.explain(study, study._storage.get_trial(trial._trial_id)) is None


def test_pruner_keeps_everything_before_min_points_and_min_finished() -> None:
    assert _run(_study(FINISHED), [0.01]) == (False, None)
    assert _run(_study(FINISHED[:1]), [0.01, 0.01]) == (False, None)
    assert _run(_study(FINISHED[:2], min_finished=3), [0.01, 0.01]) == (False, None)
    assert _run(_study(FINISHED, min_finished=3), [0.01, 0.01])[0]
    assert _run(_study(FINISHED, min_points=3), [0.01, 0.01]) == (False, None)
    assert _run(_study(FINISHED, min_points=3), [0.01, 0.01, 0.01])[0]


def test_pruner_respects_never_prune_and_the_final_step() -> None:
    study = _study(FINISHED)
    assert _run(study, [0.30, 0.31], never_prune=True) == (False, None)
    assert _run(study, [0.30, 0.31], final_step=2) == (False, None)
    assert _run(study, [0.30, 0.31, 0.31, 0.31]) == (False, None)
    assert _run(study, [0.30, 0.31], final_step=3)[0]


def test_pruner_minimises_loss() -> None:
    losses = [{1: 1.0, 2: 0.70, 3: 0.60, 4: 0.55}, {1: 1.1, 2: 0.75, 3: 0.64, 4: 0.58}]
    study = _study(losses, direction="minimize")
    pruned, reason = _run(study, [2.0, 1.95])
    assert pruned and reason is not None and "the best 0.55" in reason
    assert _run(study, [0.8, 0.55]) == (False, None)


def test_min_delta_demands_a_margin_over_the_best() -> None:
    curve = [0.70, 0.80]  # forecast about 0.88, just above the best
    assert not _run(_study(FINISHED), curve)[0]
    pruned, reason = _run(_study(FINISHED, min_delta=0.2), curve)
    assert pruned and reason is not None and reason.endswith("by 0.2")


@pytest.mark.parametrize(
    "kwargs", [{"confidence": 1.0}, {"min_finished": 1}, {"min_points": 0}, {"min_delta": -1}]
)
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        LearningCurvePruner(**kwargs)  # type: ignore[arg-type]
