"""After the trials: the best one, its model into the run's model/ (copied, or retrained when search.refit)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from open_autoglm.atomic import staged_path
from open_autoglm.config import Config
from open_autoglm.data.splits import LoadedData
from open_autoglm.distributed import from_main
from open_autoglm.run_folder import ERROR, RunFolder
from open_autoglm.search.objectives import pareto_front
from open_autoglm.search.space import apply_overrides
from open_autoglm.search.storage import count_trials, worker_alive
from open_autoglm.search.trial import TrialOrder
from open_autoglm.train.job import fit, save_fitted


def pick_best(study: optuna.Study, config: Config) -> tuple[FrozenTrial, list[FrozenTrial]]:
    """The best trial (for a Pareto front: the front's best quality) and the front (empty for one value)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        counts = count_trials(study)
        raise RuntimeError(
            f"no trial completed ({counts['pruned']} pruned, {counts['failed']} failed); "
            f"see {RunFolder(config.run_dir).trials}/*/{ERROR} and the fail_reason of each trial"
        )
    if len(study.directions) == 1:
        return study.best_trial, []
    directions = [d.name.lower() for d in study.directions]
    front = [complete[i] for i in pareto_front([list(t.values) for t in complete], directions)]
    quality_index = config.search.objectives.index("quality")
    sign = 1 if directions[quality_index] == "maximize" else -1
    return max(front, key=lambda t: sign * t.values[quality_index]), front


def install_best_model(run_dir: Path, best: FrozenTrial) -> Path | None:
    """Copy the best trial's model to model/ and drop the other trials' saved models.

    With workers on several machines the best trial may have run elsewhere: its model is taken from where
    that worker saved it when this machine can see it (a shared file system), else None.
    """
    folder = RunFolder(run_dir)
    source = folder.trial(best.number).model
    if not source.exists():
        elsewhere = Path(best.user_attrs.get("model_dir") or source)
        if elsewhere.exists():
            source = elsewhere
        elif worker_alive(best.user_attrs.get("worker", "?:0:0")) is None:
            return None
        else:
            raise RuntimeError(f"the best trial's model is missing: {source}")
    target = folder.model
    with staged_path(
        target
    ) as partial:  # a kill half-way leaves the earlier model/ or none, never half of one
        shutil.copytree(source, partial, copy_function=_link_or_copy)  # hard links: no second copy on disk
    for other in folder.trial_files("model"):
        if other != source:
            shutil.rmtree(other, ignore_errors=True)
    return target


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def refit_best(config: Config, best: FrozenTrial, loaded: LoadedData) -> dict[str, Any]:
    """Retrain the best configuration on train+validation, evaluate on test, and make it the model."""
    best_config = apply_overrides(config, best.user_attrs.get("overrides", {}), source="refit")
    merged = LoadedData(
        splits={
            "train": loaded.splits["train"] + loaded.splits["validation"],
            "validation": loaded.splits["validation"],  # trained on: its score here is not a fair estimate
            **({"test": loaded.splits["test"]} if "test" in loaded.splits else {}),
        }
    )
    folder = RunFolder(config.run_dir)
    from_main(
        TrialOrder(best_config, folder.refit, baseline=False, loaded=merged)
    )  # the other ranks train too
    result = fit(best_config, folder.refit, resume=False, loaded=merged, checkpoints=False, baseline=False)
    save_fitted(result, folder.model, best_config)  # staged: whole or not at all
    return {"metrics": result.metrics.get("test", {}), "train_rows": len(merged.splits["train"])}
