"""summary.json after a search: the best trial, the default it had to beat, the trial counts and the compute."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from open_autoglm.config import Config
from open_autoglm.run_folder import RunSummary
from open_autoglm.search.storage import count_trials
from open_autoglm.tasks import BaseTask
from open_autoglm.versions import versions


def build_tune_summary(
    config: Config,
    task: BaseTask,
    study: optuna.Study,
    best: FrozenTrial,
    front: list[FrozenTrial],
    refit: dict[str, Any] | None,
    seconds: float,
) -> RunSummary:
    """summary.json after a search."""
    metric, greater_is_better = task.search_metric(config.search.metric, config.train)
    trials = study.get_trials(deepcopy=False)
    default = next(
        (t for t in trials if t.user_attrs.get("role") == "default" and t.state == TrialState.COMPLETE), None
    )
    return RunSummary(
        task=config.task,
        metric=metric,
        greater_is_better=greater_is_better,
        model=config.model.name,
        best={
            "trial": best.number,
            "params": best.params,
            "config": best.user_attrs.get("overrides", {}),
            "metrics": _test_or_validation(best),
            "validation": best.user_attrs.get("metrics", {}).get("validation"),
            "test": best.user_attrs.get("metrics", {}).get("test"),
            "objectives": best.user_attrs.get("objectives"),
            "values": best.values,
        },
        baseline={"metrics": default.user_attrs.get("baseline", {}) if default else {}},
        trials={k: v for k, v in count_trials(study).items() if k != "running"},
        compute={
            "train_steps": sum(t.user_attrs.get("train_steps", 0) for t in trials),
            "train_examples": sum(t.user_attrs.get("train_examples", 0) for t in trials),
            "epochs": round(sum(t.user_attrs.get("epochs_trained", 0) for t in trials), 2),
            "seconds": round(seconds, 2),
        },
        versions=versions(),
        sections={
            "objectives": config.search.objectives,
            "mode": config.search.mode,
            "default": {
                "trial": default.number if default else None,
                "config": default.user_attrs.get("overrides", {}) if default else None,
                "metrics": _test_or_validation(default) if default else {},
                "validation": default.user_attrs.get("metrics", {}).get("validation") if default else None,
            },
            "pareto": [{"trial": t.number, "values": t.values, "params": t.params} for t in front],
            "refit": refit,
            "pruned": {
                t.number: t.user_attrs.get("prune_reason") for t in trials if t.state == TrialState.PRUNED
            },
            "failed": {
                t.number: t.user_attrs.get("fail_reason", "failed")
                for t in trials
                if t.state == TrialState.FAIL
            },
        },
    )


def _test_or_validation(trial: FrozenTrial) -> dict[str, float]:
    metrics = trial.user_attrs.get("metrics", {})
    return metrics.get("test") or metrics.get("validation") or {}
