"""Several pruners as one, each decision with its reason.

A trial reports its primary validation metric with the training examples it has seen as the step
(search/reports.py), so steps mean the same amount of training for every trial whatever its batch size. The trial stops as soon as any pruner says so,
and the one that did says why (Optuna's pruners answer only yes or no, so their reasons are composed here from
the values they judged on).
"""

from __future__ import annotations

import statistics

import optuna
from optuna.pruners import BasePruner
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from scipy.stats import spearmanr

RANK_GATED = {"median", "asha", "hyperband"}  # members that judge a trial by its rank among others at a step
MIN_RANK_CORRELATION = 0.5
MIN_FINISHED_FOR_GATE = 5


class CompositePruner(BasePruner):
    """Prunes when any member does; `last_reason` says which member and why.

    Rank-based members (median, ASHA, Hyperband) judge only at steps that are informative: where the finished
    trials' values already rank them as their final values do (Spearman >= MIN_RANK_CORRELATION over at least
    MIN_FINISHED_FOR_GATE trials). When every model still sits at the majority class after its first epoch,
    as small classification sets often do, that epoch's ranking is noise, and cutting there stops the slow
    starters that end best. The learning-curve predictor needs no gate: its own uncertainty plays that part.
    """

    def __init__(self, members: list[tuple[str, BasePruner]], metric: str, epoch: int) -> None:
        self.members = members
        self.metric = metric
        self.epoch = epoch  # steps in one epoch
        self.last_reason: str | None = None

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        self.last_reason = None
        if trial.last_step is None:
            return False
        never = bool(trial.user_attrs.get("never_prune"))
        for name, pruner in self.members:
            # Every member sees every report, even of a trial that may not be cut: successive halving
            # records its rungs while it judges, and the default trial's values belong in them.
            if not pruner.prune(study, trial) or never:
                continue
            if name in RANK_GATED and not informative_step(study, trial.last_step):
                continue
            explain = getattr(pruner, "last_reason", None)
            self.last_reason = explain or _compare_with_others(name, self.metric, self.epoch, study, trial)
            return True
        return False


def informative_step(study: optuna.Study, step: int) -> bool:
    """Do the finished trials' values at `step` rank them as their final values do?"""
    pairs = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if step in t.intermediate_values and t.intermediate_values:
            pairs.append((t.intermediate_values[step], t.intermediate_values[max(t.intermediate_values)]))
    if len(pairs) < MIN_FINISHED_FOR_GATE:
        return False
    at_step, final = zip(*pairs, strict=True)
    if len(set(at_step)) == 1 or len(set(final)) == 1:
        return False  # all tied: no ranking at all
    correlation = spearmanr(at_step, final).statistic
    return bool(correlation >= MIN_RANK_CORRELATION)


def _compare_with_others(name: str, metric: str, epoch: int, study: optuna.Study, trial: FrozenTrial) -> str:
    """A reason for a built-in pruner: the trial's value beside the others' at the same step."""
    step = trial.last_step
    assert step is not None
    value = trial.intermediate_values[step]
    others = [
        t.intermediate_values[step]
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        if step in t.intermediate_values
    ]
    where = f"after {step} examples (epoch {step / epoch:.3g})"
    if not others:
        return f"{name}: {metric} {value:.4g} {where}"
    best = max(others) if study.direction == StudyDirection.MAXIMIZE else min(others)
    return (
        f"{name}: {metric} {value:.4g} {where}; other trials there: best {best:.4g}, "
        f"median {statistics.median(others):.4g} (n={len(others)})"
    )
